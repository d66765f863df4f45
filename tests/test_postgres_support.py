"""The throwaway PostgreSQL cluster from tests/support/postgres.py works end to end."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from support.postgres import PostgresCluster

pytestmark = pytest.mark.postgres


async def test_cluster_creates_database_from_template_and_serves_queries(tmp_path: Path) -> None:
    cluster = PostgresCluster(tmp_path / "pg")
    cluster.start()
    try:
        assert cluster.url("events") == f"postgresql+asyncpg://postgres@127.0.0.1:{cluster.port}/events"

        # Called from inside the running pytest-asyncio loop on purpose.
        cluster.create_database("events_template")
        conn = await asyncpg.connect(
            host="127.0.0.1", port=cluster.port, user="postgres", database="events_template"
        )
        try:
            await conn.execute("create table marker (id int primary key)")
            await conn.execute("insert into marker values (42)")
        finally:
            await conn.close()

        cluster.create_database("events", template="events_template")

        conn = await asyncpg.connect(cluster.url("events", driver=""))
        try:
            assert await conn.fetchval("select 1") == 1
            assert await conn.fetchval("select id from marker") == 42
        finally:
            await conn.close()

        cluster.drop_database("events")
        cluster.drop_database("events")  # IF EXISTS: dropping twice is fine
    finally:
        data_dir = cluster.cluster_dir
        cluster.stop()
    assert not data_dir.exists()
