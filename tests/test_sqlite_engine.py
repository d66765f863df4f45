"""events_app.db.engine on SQLite: a request cancelled while waiting for the write lock leaves none held."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import make_settings
from sqlalchemy.ext.asyncio import async_sessionmaker

from events_app.db.engine import make_sqlalchemy_config
from events_app.db.models import Event


def take_write_lock(path: str, timeout: float) -> sqlite3.Connection:
    writer = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    return writer


async def test_a_cancelled_begin_does_not_keep_the_write_lock_in_the_pool(
    tmp_path: Path, sqlite_url: str
) -> None:
    path = sqlite_url.removeprefix("sqlite+aiosqlite:///")
    engine = make_sqlalchemy_config(make_settings(tmp_path, sqlite_url)).get_engine()
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def read_events() -> None:
        async with sessions() as session:
            await session.execute(sa.select(sa.func.count()).select_from(Event))

    try:
        await read_events()  # the pool now holds one connection, as on a running server
        blocker = take_write_lock(path, timeout=1)
        waiting = asyncio.create_task(read_events())
        await asyncio.sleep(0.5)  # its BEGIN IMMEDIATE now waits on aiosqlite's thread for the lock
        waiting.cancel()
        await asyncio.sleep(0.3)  # the cancelled request hands its connection back to the pool
        blocker.execute("COMMIT")
        blocker.close()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, timeout=10)
        await asyncio.sleep(0.3)  # the queued BEGIN runs, and what follows it on that thread

        # Another process's writer gets the lock, and the pooled connection serves the next request.
        other = await asyncio.to_thread(take_write_lock, path, 5)
        other.execute("COMMIT")
        other.close()
        await read_events()
    finally:
        await engine.dispose()
