"""Pooled PostgreSQL connections that the server closed (a restart) are replaced, not handed out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from conftest import make_settings
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from events_app.db.engine import make_sqlalchemy_config


async def _pool_of(engine: AsyncEngine, size: int) -> set[int]:
    """Check out ``size`` connections at once (so the pool keeps that many); their backend pids."""

    async def backend_pid() -> int:
        async with engine.connect() as connection:
            pid = int((await connection.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())
            await asyncio.sleep(0.05)  # hold it while the others are checked out
            return pid

    return set(await asyncio.gather(*(backend_pid() for _ in range(size))))


async def test_connections_closed_by_the_server_are_replaced_at_checkout(
    tmp_path: Path, postgres_url: str
) -> None:
    engine = make_sqlalchemy_config(make_settings(tmp_path, postgres_url)).get_engine()
    try:
        before = await _pool_of(engine, 4)
        assert len(before) == 4
        # What a restart does to them: the server ends every backend and closes its socket.
        admin = create_async_engine(postgres_url)
        async with admin.connect() as connection:
            await connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": list(before)},
            )
        await admin.dispose()
        await asyncio.sleep(0.5)  # the closed sockets are noticed by the event loop meanwhile

        after = await _pool_of(engine, 4)  # no request gets a dead connection

        assert len(after) == 4
        assert not after & before
    finally:
        await engine.dispose()
