"""The schema comes only from migrations, and migrations match the models."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from support.postgres import PostgresCluster

from events_app.db import migrate
from events_app.db.migrate import compare_type, include_object_on
from events_app.db.models import metadata
from events_app.db.models.registration import SQLITE_SEARCH_TABLES

EXPECTED_TABLES = {*metadata.tables, "alembic_version"}
#: The revision before the attendee search and filter indexes.
SEARCH_MIGRATION_PARENT = "8e2b9aab7673"


def _differences(connection: Connection) -> list[Any]:
    opts = {
        "compare_type": compare_type,
        "target_metadata": metadata,
        "include_object": include_object_on(connection.dialect.name),
    }
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


async def _check(url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            search_tables = SQLITE_SEARCH_TABLES if connection.dialect.name == "sqlite" else set()
            assert await connection.run_sync(_tables) == EXPECTED_TABLES | search_tables
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == [], f"models and migrations differ: {differences}"


async def test_upgrade_head_on_empty_sqlite_matches_the_models(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")


@pytest.mark.postgres
async def test_upgrade_head_on_empty_postgresql_matches_the_models(postgres_cluster: PostgresCluster) -> None:
    postgres_cluster.create_database("migrations_empty")
    try:
        await _check(postgres_cluster.url("migrations_empty"))
    finally:
        postgres_cluster.drop_database("migrations_empty")


async def _down_and_up_again(url: str) -> None:
    """The attendee search migration goes back to the schema before it, then forward again."""
    config = migrate.alembic_config(url)
    await asyncio.to_thread(migrate.upgrade, url)
    await asyncio.to_thread(command.downgrade, config, SEARCH_MIGRATION_PARENT)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == EXPECTED_TABLES
    finally:
        await engine.dispose()
    await _check(url)


async def test_search_migration_goes_down_and_up_on_sqlite(tmp_path: Path) -> None:
    await _down_and_up_again(f"sqlite+aiosqlite:///{tmp_path / 'down.sqlite3'}")


@pytest.mark.postgres
async def test_search_migration_goes_down_and_up_on_postgresql(postgres_cluster: PostgresCluster) -> None:
    postgres_cluster.create_database("migrations_down")
    try:
        await _down_and_up_again(postgres_cluster.url("migrations_down"))
    finally:
        postgres_cluster.drop_database("migrations_down")


def test_drift_is_detected(tmp_path: Path) -> None:
    """The comparison above would notice a model change that has no migration."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'drift.sqlite3'}"
    migrate.upgrade(url)
    drifted = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["events"].append_column(sa.Column("not_migrated", sa.Integer))

    async def compare() -> list[Any]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: list(compare_metadata(MigrationContext.configure(sync), drifted))
                )
        finally:
            await engine.dispose()

    differences = asyncio.run(compare())
    assert any(diff[0] == "add_column" and diff[3].name == "not_migrated" for diff in differences)
