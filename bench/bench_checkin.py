"""Door check-in latency: ``POST /api/checkin`` from 20 scanners at once against uvicorn on loopback.

Run: ``.venv/bin/python bench/bench_checkin.py`` (SQLite, about 20 s), or with
``--database-url postgresql+asyncpg://...`` against an empty, migrated PostgreSQL database. The app runs
in a real uvicorn subprocess (one worker). 2,000 scans of 1,000 tickets: every ticket is scanned twice,
by two different devices, so half the answers are ``ok`` and half ``already_checked_in``. Prints p50,
p90, p99 and the maximum latency, and the throughput. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import sqlalchemy as sa
from app_server import BENCH_SECRET, AppServer
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from uuid_utils.compat import uuid7

from events_app.db import migrate
from events_app.db.models import Event, EventKind, EventStatus, Registration, RegistrationStatus, Role
from events_app.domain.accounts.services import AccountService
from events_app.lib.security import TokenPurpose, derive_token, hash_token

SECRET = BENCH_SECRET
TICKETS = 1_000
SCANNERS = 20
REQUESTS = 2 * TICKETS


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
        for index in range(TICKETS):
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


def scan_plan(codes: list[str]) -> list[list[str]]:
    """Each ticket twice, by two different scanners, spread over the run."""
    scans = [(code, turn) for turn in range(2) for code in codes]
    random.Random(7).shuffle(scans)
    plan: list[list[str]] = [[] for _ in range(SCANNERS)]
    for index, (code, _) in enumerate(scans):
        plan[index % SCANNERS].append(code)
    return plan


async def scanner(
    http: httpx.AsyncClient, event_id: uuid.UUID, device: str, codes: list[str], results: Counter[str]
) -> list[float]:
    latencies = []
    for code in codes:
        body = {"event_id": str(event_id), "code": code, "nonce": str(uuid.uuid4()), "device": device}
        started = time.perf_counter()
        response = await http.post("/api/checkin", json=body)
        latencies.append((time.perf_counter() - started) * 1000)
        results[
            response.json().get("result", str(response.status_code))
            if response.is_success
            else str(response.status_code)
        ] += 1
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def run(database_url: str, workdir: Path) -> None:
    if database_url.startswith("sqlite"):
        await asyncio.to_thread(migrate.upgrade, database_url)
    engine = create_async_engine(database_url)
    event_id, codes, token = await create_event(engine)
    server = AppServer(workdir, database_url)
    try:
        await server.wait_ready()
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=SCANNERS, max_keepalive_connections=SCANNERS)
        async with httpx.AsyncClient(base_url=server.url, headers=headers, limits=limits, timeout=60) as http:
            results: Counter[str] = Counter()
            started = time.perf_counter()
            lists = await asyncio.gather(
                *(
                    scanner(http, event_id, f"Scanner {n}", part, results)
                    for n, part in enumerate(scan_plan(codes))
                )
            )
            elapsed = time.perf_counter() - started
        latencies = [value for part in lists for value in part]
        print(f"database: {database_url.split(':', 1)[0]}; {len(latencies)} scans by {SCANNERS} scanners")
        print(f"results: {dict(results)}")
        print(
            f"latency ms: p50 {statistics.median(latencies):.1f}  p90 {percentile(latencies, 0.9):.1f}  "
            f"p99 {percentile(latencies, 0.99):.1f}  max {max(latencies):.1f}"
        )
        print(f"throughput: {len(latencies) / elapsed:.0f} scans/s over {elapsed:.1f} s")
        assert results == Counter({"ok": TICKETS, "already_checked_in": TICKETS}), results
    finally:
        server.stop()
        await engine.dispose()


async def main(database_url: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-checkin-") as workdir:
        await run(database_url or f"sqlite+aiosqlite:///{workdir}/bench.sqlite3", Path(workdir))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a migrated, empty database (default: a new SQLite file)")
    asyncio.run(main(parser.parse_args().database_url))
