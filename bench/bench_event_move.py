"""Moving an event with 50,000 confirmed registrants: how long the organiser's save takes.

Run: ``.venv/bin/python bench/bench_event_move.py`` (SQLite and a throwaway PostgreSQL, about a minute;
``--database sqlite`` or ``postgresql`` for one). Calls the service the edit form calls, in this process,
for the part that grows with the registrants: every confirmed registration's SEQUENCE goes up and one
"the event has changed" email per registrant goes into the outbox, in the one transaction of the save.
Target: at most 5 s for 50,000 (it took 20 to 26 s when each outbox row was an ORM object).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from app_server import exit_cleanly_on_sigterm
from bench_export import ADMIN, create_event_and_admin, registration_row
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from events_app.db import migrate
from events_app.db.models import Event, OutboxMessage, Registration, RegistrationStatus, User
from events_app.domain.accounts.permissions import Principal
from events_app.domain.events.manage_services import EventManagementService
from events_app.domain.registrations.services import TokenSettings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.postgres import PostgresCluster

CONFIRMED = 50_000


async def fill(engine: AsyncEngine, count: int) -> None:
    event_id = await create_event_and_admin(engine)
    async with engine.begin() as connection:
        for first in range(0, count, 5000):
            rows = [
                {**registration_row(event_id, index), "status": RegistrationStatus.CONFIRMED.value}
                for index in range(first, min(first + 5000, count))
            ]
            await connection.execute(sa.insert(Registration), rows)


async def move(engine: AsyncEngine) -> tuple[float, int, int]:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as session:
        user = (await session.execute(sa.select(User).where(User.email == ADMIN))).unique().scalar_one()
        principal = Principal.of(user)
        event = (await session.execute(sa.select(Event))).scalar_one()
        service = EventManagementService(session, TokenSettings("bench-secret", "bench.example.org"))
        started = time.perf_counter()
        sent = await service._update_invites(principal, event, ["time"])
        await session.commit()
        seconds = time.perf_counter() - started
    async with engine.connect() as connection:
        queued = await connection.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    return seconds, sent, int(queued or 0)


async def run(url: str, label: str, count: int) -> None:
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_async_engine(url)
    try:
        await fill(engine, count)
        seconds, _, queued = await move(engine)
    finally:
        await engine.dispose()
    verdict = "met" if seconds <= 5 and queued == count else "NOT MET"
    print(
        f"{label:<11} {count:,} confirmed: moved in {seconds:.2f} s "
        f"({count / seconds:,.0f} emails queued/s); {queued:,} outbox rows; "
        f"{verdict} (target <= 5 s, one row each)"
    )


async def main(database: str, count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-move-") as folder:
        if database in ("sqlite", "both"):
            await run(f"sqlite+aiosqlite:///{folder}/bench.sqlite3", "SQLite", count)
        if database in ("postgresql", "both"):
            with PostgresCluster(Path(folder) / "pg") as cluster:
                cluster.create_database("bench")
                await run(cluster.url("bench"), "PostgreSQL", count)


if __name__ == "__main__":
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--confirmed", type=int, default=CONFIRMED)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.database, arguments.confirmed))
