"""Engine and session configuration for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import time
from typing import Any, cast

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event, exc
from sqlalchemy.engine import AdaptedConnection, Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState
from sqlalchemy.pool import PoolProxiedConnection as PoolProxied

from events_app.db.models import metadata
from events_app.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: A pooled PostgreSQL connection idle longer than this is pinged before use (see :func:`ping_when_idle`).
PING_AFTER_IDLE_SECONDS = 10.0
#: Session listeners of advanced-alchemy we do not use (file objects, its cache): off, so a commit does not
#: look them up (about 0.1 ms a request).
SESSION_INFO = {"enable_file_object_listener": False, "enable_cache_listener": False}


def make_sqlalchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    engine_config = EngineConfig(pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    if settings.is_sqlite:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        engine_config = EngineConfig(
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            # No rollback on every return to the pool; rollback_if_open (below) rolls back what is open.
            pool_reset_on_return=None,  # type: ignore[arg-type]  # SQLAlchemy accepts None
        )
    config = SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        engine_config=engine_config,
        session_config=AsyncSessionConfig(expire_on_commit=False, info=dict(SESSION_INFO)),
        metadata=metadata,
        enable_file_object_listener=False,
        before_send_handler="autocommit",
        session_dependency_key="db_session",
        create_all=False,
    )
    if settings.is_sqlite:
        configure_sqlite(config.get_engine())
        rollback_if_open(config.get_engine())
    else:
        ping_when_idle(config.get_engine())
    return config


def ping_when_idle(engine: AsyncEngine, after_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Check a pooled connection before use only when it has been idle for a while.

    ``pool_pre_ping`` pings on every checkout, and asyncpg's ping is three round trips (BEGIN, a query,
    ROLLBACK) before every request's own statements. A connection back in the pool within the last
    ``after_seconds`` is used as it is unless asyncpg saw the server close it (no round trip: what a
    restart does to every pooled connection); an older one (the database may have restarted
    meanwhile) is pinged, and a dead one is replaced (the pool retries the checkout). A connection that
    breaks while busy is still detected by SQLAlchemy, which then replaces the pool's older connections.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxied) -> None:
        # A connection the server closed meanwhile (a restart ends every backend) is known to asyncpg
        # without a round trip: replaced even when it was in use a moment ago.
        if dbapi_connection.driver_connection.is_closed():
            raise exc.DisconnectionError()
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < after_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError() from error


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
        # Straight to aiosqlite in one call on its thread (a statement through SQLAlchemy is three: make
        # a cursor, execute, close it; each hand-off to aiosqlite's thread costs ~50 us of CPU).
        driver = cast(AdaptedConnection, connection.connection.dbapi_connection)
        connection.connection.info[_BEGIN_SENT] = True
        driver.run_async(lambda aiosqlite: aiosqlite.execute_fetchall("BEGIN IMMEDIATE"))


#: Set when BEGIN is handed to aiosqlite's thread, cleared when the transaction ends through SQLAlchemy.
_BEGIN_SENT = "sqlite_begin_sent"


def rollback_if_open(engine: AsyncEngine) -> None:
    """A connection back in the pool is rolled back only when a transaction may still be open (the engine
    has ``pool_reset_on_return=None``): after a commit there is nothing to roll back, and the rollback
    SQLAlchemy would send anyway is one more hand-off to aiosqlite's thread on every request.

    "May be open" includes a BEGIN IMMEDIATE still waiting for the write lock on aiosqlite's thread when
    its task was cancelled: the connection does not know it is in a transaction yet, but will be once the
    lock comes. The rollback queued behind it on that thread releases the lock at once.
    """

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _on_end(connection: Connection) -> None:
        connection.connection.info.pop(_BEGIN_SENT, None)

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState) -> None:
        begin_sent = record.info.pop(_BEGIN_SENT, False)
        if state.asyncio_safe and (begin_sent or dbapi_connection.driver_connection.in_transaction):
            dbapi_connection.rollback()
