"""Engine and session configuration for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from typing import Any

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from events_app.db.models import metadata
from events_app.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_sqlalchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    engine_config = EngineConfig(
        pool_pre_ping=True, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    if settings.is_sqlite:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        engine_config = EngineConfig(connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    config = SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        engine_config=engine_config,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        metadata=metadata,
        before_send_handler="autocommit",
        session_dependency_key="db_session",
        create_all=False,
    )
    if settings.is_sqlite:
        configure_sqlite(config.get_engine())
    return config


def configure_sqlite(engine: AsyncEngine) -> None:
    """Serialise SQLite writers instead of failing them.

    pysqlite's own transaction handling starts a deferred transaction, which fails with "database is
    locked" when two transactions try to upgrade to writers. We take the write lock at BEGIN
    (``BEGIN IMMEDIATE``) and let the busy timeout queue the others; WAL keeps readers unblocked.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
