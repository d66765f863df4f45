"""Attendee list and export speed with 1k, 10k and 50k registrations on one event.

Run: ``.venv/bin/python bench/bench_export.py`` (SQLite, about a minute; ``--database postgresql`` or
``both`` for PostgreSQL, in a throwaway cluster like the tests'). The app runs in a real uvicorn
subprocess; requests go over loopback with httpx. The server's peak memory during each export is read
from /proc (``VmHWM``, reset before each export through ``clear_refs``), so it includes everything the
process holds, not only Python objects.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from app_server import AppServer, exit_cleanly_on_sigterm
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from uuid_utils.compat import uuid7

from events_app.db import migrate
from events_app.db.models import Event, EventKind, EventStatus, Registration, RegistrationStatus, Role
from events_app.domain.accounts.services import AccountService
from events_app.domain.attendees.schemas import Cursor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.postgres import PostgresCluster

SIZES = (1_000, 10_000, 50_000)
PASSWORD = "bench password that is long enough"
ADMIN = "bench@example.org"
STATUSES = list(RegistrationStatus)
COUNTRIES = ["AR", "BO", "BR", "CL", "CO", "CR", "EC", "ES", "MX", "PE", "PT", "UY"]
SECTORS = ["police", "prosecution", "judiciary", "customs", "ministry", "other"]
LANGUAGES = ["es", "pt_BR", "en", "fr"]
FIRST_NAMES = ["María", "João", "Ana", "José", "Conceição", "Ōkubo", "Núñez", "Luis", "Camila", "Pedro"]
PAGE_RUNS = 5
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


# --- data -----------------------------------------------------------------------------------------


async def create_event_and_admin(engine: AsyncEngine) -> uuid.UUID:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as session:
        now = datetime.now(UTC)
        event = Event(
            slug="bench",
            kind=EventKind.IN_PERSON,
            status=EventStatus.PUBLISHED,
            base_language="en",
            texts={"en": {"title": "Benchmark event"}},
            starts_at=now + timedelta(days=30),
            ends_at=now + timedelta(days=30, hours=2),
            timezone="America/Bogota",
            contact_email="bench@example.org",
        )
        session.add(event)
        await session.flush()
        await AccountService(session=session).create_user(ADMIN, PASSWORD, Role.ADMIN, "Bench")
        await session.commit()
        return event.id


def registration_row(event_id: uuid.UUID, index: int) -> dict[str, Any]:
    moment = BASE_TIME + timedelta(seconds=index)
    status = STATUSES[index % len(STATUSES)]
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    return {
        "id": uuid7(),
        "event_id": event_id,
        "full_name": f"{first} Person {index:05d}",
        "email": f"person{index}@example.org",
        "email_normalized": f"person{index}@example.org",
        "country": COUNTRIES[index % len(COUNTRIES)],
        "institution": f"Institution {index % 300}",
        "position": "Analyst",
        "sector": SECTORS[index % len(SECTORS)],
        "language": LANGUAGES[index % len(LANGUAGES)],
        "status": status,
        "ticket_version": 1,
        "ticket_hash": uuid.uuid4().hex * 2,
        "manage_token_version": 1,
        "manage_token_hash": uuid.uuid4().hex * 2,
        "invite_sequence": 0,
        "privacy_notice_version": "2026-11",
        "consent_given_at": moment,
        "waitlisted_at": moment if status is RegistrationStatus.WAITLISTED else None,
        "created_at": moment,
        "updated_at": moment,
    }


async def grow_to(engine: AsyncEngine, event_id: uuid.UUID, start: int, stop: int) -> None:
    """Bulk-insert registrations ``start`` .. ``stop - 1`` with Core, in one transaction."""
    async with engine.begin() as connection:
        for first in range(start, stop, 5000):
            rows = [registration_row(event_id, index) for index in range(first, min(first + 5000, stop))]
            await connection.execute(sa.insert(Registration), rows)
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Move the bulk insert out of the WAL into the database file, as SQLite's automatic
            # checkpoints do when data arrives at a normal pace, and refresh the planner's statistics.
            await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            await connection.exec_driver_sql("ANALYZE")
        else:  # what autovacuum does after a bulk load: statistics and the visibility map
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            # The cluster commits asynchronously (synchronous_commit=off): until the WAL is flushed,
            # VACUUM cannot see the rows as committed to everyone and leaves the visibility map empty.
            await autocommit.exec_driver_sql("CHECKPOINT")
            await autocommit.exec_driver_sql("VACUUM ANALYZE registrations")


async def middle_cursor(engine: AsyncEngine, event_id: uuid.UUID, size: int) -> str:
    """A cursor at the middle of the list in registration order (a deep page)."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(Registration.created_at, Registration.id)
                .where(Registration.event_id == event_id)
                .order_by(Registration.created_at, Registration.id)
                .offset(size // 2)
                .limit(1)
            )
        ).one()
    created_at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return Cursor(sort="created_at", value=created_at.isoformat(), id=row.id).encode()


# --- the server -----------------------------------------------------------------------------------


async def login(http: httpx.AsyncClient) -> None:
    page = await http.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert token, "no CSRF token on the login page"
    response = await http.post(
        "/login", data={"_csrf_token": token.group(1), "email": ADMIN, "password": PASSWORD}
    )
    assert response.status_code in (302, 303), response.status_code


# --- measures -------------------------------------------------------------------------------------


@dataclass
class Export:
    seconds: float
    megabytes: float
    #: Peak resident memory of the server during the export, and how far it rose above the start.
    peak_mb: float
    peak_delta_mb: float
    lines: int


async def median_ms(call: Callable[[], Awaitable[httpx.Response]]) -> float:
    timings = []
    for _ in range(PAGE_RUNS):
        started = time.perf_counter()
        response = await call()
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return statistics.median(timings)


async def measure_export(http: httpx.AsyncClient, server: AppServer, path: str) -> Export:
    server.reset_peak()
    baseline = server.rss_kb()
    size = lines = 0
    started = time.perf_counter()
    async with http.stream("GET", path) as response:
        assert response.status_code == 200, response.status_code
        async for piece in response.aiter_bytes():
            size += len(piece)
            lines += piece.count(b"\n")
    seconds = time.perf_counter() - started
    peak = server.peak_kb()
    return Export(seconds, size / 1e6, peak / 1024, (peak - baseline) / 1024, max(lines - 1, 0))


async def measure(
    http: httpx.AsyncClient, server: AppServer, engine: AsyncEngine, event_id: uuid.UUID, size: int
) -> dict[str, Any]:
    base = f"/manage/events/{event_id}/attendees"
    cursor = await middle_cursor(engine, event_id, size)
    return {
        "size": size,
        "first_ms": await median_ms(lambda: http.get(base)),
        "deep_ms": await median_ms(lambda: http.get(base, params={"cursor": cursor})),
        "by_name_ms": await median_ms(lambda: http.get(base, params={"sort": "full_name", "order": "desc"})),
        "search_ms": await median_ms(lambda: http.get(base, params={"q": "person 0042"})),
        "filter_ms": await median_ms(
            lambda: http.get(base, params={"status": "confirmed", "country": ["CO", "PE"]})
        ),
        "csv": await measure_export(http, server, f"{base}.csv"),
        "xlsx": await measure_export(http, server, f"{base}.xlsx"),
    }


def report(results: list[dict[str, Any]]) -> None:
    pages = f"{'rows':>7} | {'page 1':>8} | {'deep':>8} | {'by name':>8} | {'search':>8} | {'filter':>8}"
    print("attendee list page (median of 5, ms)")
    print(pages)
    print("-" * len(pages))
    for r in results:
        cells = [f"{r[key]:>8.1f}" for key in ("first_ms", "deep_ms", "by_name_ms", "search_ms", "filter_ms")]
        print(f"{r['size']:>7} | " + " | ".join(cells))
    files = (
        f"{'rows':>7} | {'format':>6} | {'seconds':>7} | {'rows/s':>8} | {'MB':>6} | "
        f"{'peak RSS':>9} | {'RSS rise':>8}"
    )
    print("\nexports (server process memory from /proc: VmHWM, and its rise above the RSS before the export)")
    print(files)
    print("-" * len(files))
    for r in results:
        for fmt in ("csv", "xlsx"):
            export = r[fmt]
            print(
                f"{r['size']:>7} | {fmt:>6} | {export.seconds:>7.2f} | {r['size'] / export.seconds:>8,.0f} | "
                f"{export.megabytes:>6.1f} | {export.peak_mb:>6.1f} MB | {export.peak_delta_mb:>5.1f} MB"
            )
    first, last = results[0], results[-1]
    growth = last["size"] / first["size"]
    print(f"\nratios {last['size']} rows / {first['size']} rows (the data grew {growth:.0f}x):")
    for key, label in [
        ("first_ms", "page 1"),
        ("deep_ms", "deep page"),
        ("by_name_ms", "sorted by name"),
        ("search_ms", "search"),
        ("filter_ms", "filters"),
    ]:
        print(f"  {label:<15} {last[key] / first[key]:>6.1f}x")
    for fmt in ("csv", "xlsx"):
        a, b = first[fmt], last[fmt]
        print(
            f"  {fmt.upper() + ' time':<15} {b.seconds / a.seconds:>6.1f}x   "
            f"(peak RSS {a.peak_mb:.0f} MB -> {b.peak_mb:.0f} MB, "
            f"rise {a.peak_delta_mb:.1f} -> {b.peak_delta_mb:.1f} MB)"
        )
    for r in results:
        assert r["csv"].lines == r["size"], (r["csv"].lines, r["size"])


async def main(database: str, sizes: tuple[int, ...]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-export-") as workdir:
        if database in ("sqlite", "both"):
            print("SQLite", flush=True)
            await run(f"sqlite+aiosqlite:///{workdir}/bench.sqlite3", Path(workdir), sizes)
        if database in ("postgresql", "both"):
            print("PostgreSQL", flush=True)
            with PostgresCluster(Path(workdir) / "pg") as cluster:
                cluster.create_database("bench")
                await run(cluster.url("bench"), Path(workdir), sizes)


async def run(database_url: str, workdir: Path, sizes: tuple[int, ...]) -> None:
    await asyncio.to_thread(migrate.upgrade, database_url)
    engine = create_async_engine(database_url)
    event_id = await create_event_and_admin(engine)
    server = AppServer(workdir, database_url)
    try:
        await server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as http:
            await login(http)
            results, inserted = [], 0
            for size in sizes:
                started = time.perf_counter()
                await grow_to(engine, event_id, inserted, size)
                print(
                    f"inserted {size - inserted} rows in {time.perf_counter() - started:.1f} s",
                    flush=True,
                )
                inserted = size
                results.append(await measure(http, server, engine, event_id, size))
        print()
        report(results)
    finally:
        server.stop()
        await engine.dispose()


if __name__ == "__main__":
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="registration counts")
    parser.add_argument("--database", choices=["postgresql", "sqlite", "both"], default="sqlite")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.database, tuple(arguments.sizes)))
