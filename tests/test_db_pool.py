"""The PostgreSQL pool checks a connection before use only after it has been idle (no ping per request)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from events_app.db.engine import ping_when_idle

pytestmark = pytest.mark.postgres

BACKEND = sa.text("select pg_backend_pid()")


async def test_an_idle_connection_killed_by_the_server_is_replaced(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, after_seconds=0.0)
    other = create_async_engine(postgres_url, poolclass=sa.NullPool)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(BACKEND)
        async with other.connect() as killer:  # the server ends the pooled connection while it is idle
            assert await killer.scalar(sa.text("select pg_terminate_backend(:pid)"), {"pid": first})
        async with engine.connect() as connection:
            second = await connection.scalar(BACKEND)
        assert second is not None
        assert second != first
    finally:
        await engine.dispose()
        await other.dispose()


async def test_a_connection_back_in_the_pool_recently_is_used_without_a_ping(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, after_seconds=3600.0)
    other = create_async_engine(postgres_url, poolclass=sa.NullPool)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(BACKEND)
        async with other.connect() as killer:
            assert await killer.scalar(sa.text("select pg_terminate_backend(:pid)"), {"pid": first})
        # Not pinged: the dead connection is only found out by the statement that uses it ...
        with pytest.raises(sa.exc.DBAPIError):
            async with engine.connect() as connection:
                await connection.scalar(BACKEND)
        # ... and then replaced.
        async with engine.connect() as connection:
            assert await connection.scalar(BACKEND) not in (None, first)
    finally:
        await engine.dispose()
        await other.dispose()
