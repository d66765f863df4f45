"""Door check-in latency: ``POST /api/checkin`` from 20 scanners at once against uvicorn on loopback.

Run: ``.venv/bin/python bench/bench_checkin.py`` (SQLite then PostgreSQL, about a minute);
``--database sqlite|postgresql``; ``--pause-ms 500`` for scanners that wait between scans (a door's
pace); ``--workers 2`` (or ``--workers 1 2`` for both, side by side) for uvicorn worker processes, the
README's production set-up, instead of one process. The app runs in a real uvicorn subprocess. After a
warm-up (100 other tickets scanned once, not measured), 2,000 scans of 1,000 tickets: every ticket is
scanned twice, by two different devices, so half the answers are ``ok`` and half ``already_checked_in``.
Prints p50, p90, p99 and the maximum latency, the throughput, the server's CPU time per scan (all its
processes) and the load average. The PostgreSQL pool holds one
connection per scanner (``EVENTS_DB_POOL_SIZE=20``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from app_server import BENCH_SECRET, AppServer, exit_cleanly_on_sigterm
from loadgen import Request, run_load
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from uuid_utils.compat import uuid7

from events_app.db import migrate
from events_app.db.models import (
    CheckIn,
    Event,
    EventKind,
    EventStatus,
    Registration,
    RegistrationStatus,
    Role,
)
from events_app.domain.accounts.services import AccountService
from events_app.lib.security import TokenPurpose, derive_token, hash_token

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.postgres import PostgresCluster

SECRET = BENCH_SECRET
TICKETS = 1_000
SCANNERS = 20
REQUESTS = 2 * TICKETS
#: Tickets scanned once each before the measured scans: every scanner's connection and the server's
#: pool connections are open and warm (as at a door that opened a while ago), and not counted.
WARM_UP_TICKETS = 5 * SCANNERS
TARGET_P99_MS = 50
#: PostgreSQL: a pooled connection for each scanner, as the README advises (connections beyond the pool's
#: size are opened and closed again on every request that needs one: a new backend process each time).
SERVER_ENV = {"EVENTS_DB_POOL_SIZE": str(SCANNERS), "EVENTS_DB_MAX_OVERFLOW": "10"}


async def create_event(engine: AsyncEngine) -> tuple[uuid.UUID, list[str], str]:
    """An event with TICKETS confirmed registrations, and a check-in staff member's API token."""
    maker = async_sessionmaker(engine, expire_on_commit=False)
    now = datetime.now(UTC)
    async with maker() as session:
        event = Event(
            slug="bench",
            kind=EventKind.IN_PERSON,
            status=EventStatus.PUBLISHED,
            base_language="en",
            texts={"en": {"title": "Benchmark event"}},
            starts_at=now + timedelta(hours=1),
            ends_at=now + timedelta(hours=4),
            timezone="America/Bogota",
            contact_email="bench@example.org",
        )
        session.add(event)
        await session.flush()
        rows, codes = [], []
        for index in range(TICKETS + WARM_UP_TICKETS):
            registration_id = uuid7()
            code = derive_token(SECRET, TokenPurpose.TICKET, registration_id, 1)
            codes.append(code)
            rows.append(registration_row(event.id, registration_id, index, code, now))
        await session.execute(sa.insert(cast(sa.Table, Registration.__table__)), rows)
        accounts = AccountService(session=session)
        user = await accounts.create_user(
            "door@example.org", "bench password long enough", Role.CHECKIN_STAFF, ""
        )
        await accounts.assign_event(user, event.id)
        _, token = await accounts.create_api_token(user, "bench", created_by=None)
        await session.commit()
        return event.id, codes, token


def registration_row(
    event_id: uuid.UUID, registration_id: uuid.UUID, index: int, code: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": registration_id,
        "event_id": event_id,
        "full_name": f"Person {index:05d}",
        "email": f"person{index}@example.org",
        "email_normalized": f"person{index}@example.org",
        "country": "CO",
        "institution": "Bench institution",
        "position": "",
        "sector": "police",
        "language": "es",
        "status": RegistrationStatus.CONFIRMED.value,
        "ticket_version": 1,
        "ticket_hash": hash_token(code),
        "manage_token_version": 1,
        "manage_token_hash": hash_token(f"manage-{registration_id}"),
        "invite_sequence": 0,
        "privacy_notice_version": "bench",
        "consent_given_at": now,
        "created_at": now,
        "updated_at": now,
    }


def scan_requests(event_id: uuid.UUID, token: str, codes: list[str], times: int = 2) -> list[Request]:
    """Each ticket ``times`` times, by different scanners, in a shuffled order (with two: half ok, half
    already in)."""
    scans = [code for _ in range(times) for code in codes]
    random.Random(7).shuffle(scans)
    headers = {"Authorization": f"Bearer {token}"}
    return [
        Request.json(
            "/api/checkin/",
            {
                "event_id": str(event_id),
                "code": code,
                "nonce": str(uuid.uuid4()),
                "device": f"Scanner {index % SCANNERS}",
            },
            headers,
        )
        for index, code in enumerate(scans)
    ]


async def run(database_url: str, workdir: Path, label: str, pause_ms: float, workers: int) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url)
    engine = create_async_engine(database_url)
    event_id, codes, token = await create_event(engine)
    server = AppServer(workdir, database_url, extra_env=SERVER_ENV, workers=workers)
    load = os.getloadavg()[0]
    try:
        await server.wait_ready()
        warm_up, codes = scan_requests(event_id, token, codes[TICKETS:], times=1), codes[:TICKETS]
        warmed = await asyncio.to_thread(run_load, server.url, warm_up, SCANNERS, "warm-up", pause_ms)
        assert warmed.errors({200}) == 0, server.log_tail(20)
        requests = scan_requests(event_id, token, codes)
        cpu_before = server.cpu_seconds()
        result = await asyncio.to_thread(
            run_load, server.url, requests, SCANNERS, "POST /api/checkin", pause_ms
        )
        cpu = server.cpu_seconds() - cpu_before
        async with engine.connect() as connection:
            checked_in = await connection.scalar(sa.select(sa.func.count()).select_from(CheckIn))
    finally:
        server.stop()
        await engine.dispose()
    pace = f"each scanner waits {pause_ms:.0f} ms between scans" if pause_ms else "no pause between scans"
    shape = f"{workers} uvicorn workers" if workers > 1 else "one uvicorn process"
    print(f"\n== {label}, {shape}: {result.count} scans by {SCANNERS} scanners at once ({pace})")
    print(f"load average {load:.2f} at the start")
    print(result.line())
    print(f"server CPU {cpu * 1000 / result.count:.1f} ms per scan; {checked_in} check-ins recorded")
    if result.errors({200}):
        print(f"server log (last lines):\n{server.log_tail(20)}")
    all_in = checked_in == TICKETS + WARM_UP_TICKETS
    met = result.p99 < TARGET_P99_MS and result.errors({200}) == 0 and all_in
    print(
        f"  {'met' if met else 'NOT MET':>7}  p99 {result.p99:.1f} ms (target < {TARGET_P99_MS} ms), "
        f"{result.errors({200})} errors (target 0)"
    )


async def main(database: str, pause_ms: float, shapes: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-checkin-") as folder:
        workdir = Path(folder)
        if database in ("sqlite", "both"):
            for workers in shapes:
                url = f"sqlite+aiosqlite:///{workdir}/bench-{workers}.sqlite3"
                await run(url, workdir, "SQLite", pause_ms, workers)
        if database in ("postgresql", "both"):
            with PostgresCluster(workdir / "pg") as cluster:
                for workers in shapes:
                    cluster.create_database(f"bench{workers}")
                    await run(cluster.url(f"bench{workers}"), workdir, "PostgreSQL", pause_ms, workers)


if __name__ == "__main__":
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument(
        "--pause-ms", type=float, default=0.0, help="each scanner's pause between scans (default: none)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="uvicorn worker processes; several values run one after the other (default: 1)",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.database, arguments.pause_ms, arguments.workers))
