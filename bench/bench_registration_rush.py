"""Registration rush: 5,000 people register for one event with 1,000 seats over 64 connections at once.

Run: ``.venv/bin/python bench/bench_registration_rush.py`` (a throwaway PostgreSQL cluster, one to two
minutes), ``--database sqlite`` or ``--database both``; ``--workers 2`` serves it with two uvicorn worker
processes (the README's production set-up). Needs the PostgreSQL server binaries, like the tests.

Three endpoints of the same app (one uvicorn worker unless ``--workers``), measured in the same run and
interleaved in ten rounds so a noisy neighbour hits all three alike (the ratios judged are the medians of
the rounds'):

- ``registration``: the public ``POST /api/events/{slug}/registrations`` on an event with 1,000 seats
  and a waiting list (so the first 1,000 are confirmed and the next 4,000 waitlisted, all answered 201);
  each one writes its registration, status change and confirmation email (an outbox row) in one
  transaction;
- ``registration without mail``: the same steps with no outbox row (``/api/bench/...``, only routed
  when ``EVENTS_BENCH_ENDPOINTS=true``);
- ``bare insert``: one INSERT of a registration row and a commit through the same session machinery.

The load comes from ``loadgen.py`` in its own process. The registration rate limits are turned off
for the server (their counters would refuse a rush from one address, which is their job), and its
PostgreSQL pool holds a connection for each of the 64 (``EVENTS_DB_POOL_SIZE``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from app_server import AppServer, exit_cleanly_on_sigterm
from loadgen import LoadResult, Request, run_load
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from events_app.db import migrate
from events_app.db.models import Event, EventKind, EventStatus, OutboxMessage, Registration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.postgres import PostgresCluster

SEATS = 1_000
REGISTRANTS = 5_000
CONNECTIONS = 64
ROUNDS = 10
WARM_UP = 300
COUNTRIES = ["AR", "BR", "CL", "CO", "CR", "EC", "ES", "MX", "PE", "PT", "UY"]
LANGUAGES = ["es", "pt_BR", "en", "fr"]
SERVER_ENV = {
    "EVENTS_BENCH_ENDPOINTS": "true",
    "EVENTS_REGISTRATION_LIMIT_PER_IP": "0",
    "EVENTS_REGISTRATION_LIMIT_PER_EMAIL": "0",
    # One pooled PostgreSQL connection per client connection: requests that wait for a pooled connection
    # are not served in order, which stretches p99 to 20-30x p50 (bench/RESULTS.md), and connections
    # beyond the pool's size are opened and closed again per request (a new backend each time).
    "EVENTS_DB_POOL_SIZE": str(CONNECTIONS),
    "EVENTS_DB_MAX_OVERFLOW": "10",
}


@dataclass
class Phase:
    label: str
    slug: str
    path: str
    results: list[LoadResult]

    def merged(self) -> LoadResult:
        statuses: Counter[str] = Counter()
        for result in self.results:
            statuses.update(result.statuses)
        return LoadResult(
            self.label,
            sum(r.seconds for r in self.results),
            [latency for r in self.results for latency in r.latencies_ms],
            statuses,
            sum(r.transport_errors for r in self.results),
        )


async def create_events(engine: AsyncEngine, slugs: dict[str, int | None]) -> None:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    now = datetime.now(UTC)
    async with maker() as session:
        for slug, capacity in slugs.items():
            session.add(
                Event(
                    slug=slug,
                    kind=EventKind.IN_PERSON,
                    status=EventStatus.PUBLISHED,
                    base_language="es",
                    texts={"es": {"title": f"Evento {slug}"}, "en": {"title": f"Event {slug}"}},
                    starts_at=now + timedelta(days=30),
                    ends_at=now + timedelta(days=30, hours=3),
                    timezone="America/Bogota",
                    contact_email="bench@example.org",
                    capacity=capacity,
                    waitlist_enabled=True,
                )
            )
        await session.commit()


def registrations(path: str, prefix: str, count: int) -> list[Request]:
    return [
        Request.json(
            path,
            {
                "full_name": f"Persona {prefix} {index:05d}",
                "email": f"{prefix}{index}@example.org",
                "country": COUNTRIES[index % len(COUNTRIES)],
                "institution": "Fiscalía General",
                "position": "Analista",
                "sector": "prosecution",
                "language": LANGUAGES[index % len(LANGUAGES)],
                "consent": True,
            },
        )
        for index in range(count)
    ]


async def counts(engine: AsyncEngine, slug: str) -> dict[str, int]:
    async with engine.connect() as connection:
        event_id = (await connection.execute(sa.select(Event.id).where(Event.slug == slug))).scalar_one()
        rows = await connection.execute(
            sa.select(Registration.status, sa.func.count())
            .where(Registration.event_id == event_id)
            .group_by(Registration.status)
        )
        found = {str(getattr(status, "value", status)): int(n) for status, n in rows}
        seats = (
            await connection.execute(sa.select(Event.seats_taken).where(Event.id == event_id))
        ).scalar_one()
        mails = await connection.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .join(Registration, Registration.id == OutboxMessage.registration_id)
            .where(Registration.event_id == event_id)
        )
    return {**found, "seats_taken": int(seats), "outbox": int(mails or 0)}


def _median_ratio(numerator: Phase, denominator: Phase) -> float:
    return statistics.median(
        a.throughput / b.throughput for a, b in zip(numerator.results, denominator.results, strict=True)
    )


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


async def run(database_url: str, workdir: Path, label: str, workers: int = 1) -> bool:
    engine = create_async_engine(database_url)
    phases = [
        Phase("bare insert", "bare", "/api/bench/events/bare/bare", []),
        Phase("registration (mail queued)", "rush", "/api/events/rush/registrations/", []),
        Phase(
            "registration without mail",
            "rush-nomail",
            "/api/bench/events/rush-nomail/registrations-without-mail",
            [],
        ),
    ]
    await create_events(engine, {"bare": None, "rush": SEATS, "rush-nomail": SEATS, "warm-up": None})
    # The client connections are shared out among the processes, and so are the pooled connections.
    pool = {"EVENTS_DB_POOL_SIZE": str(-(-CONNECTIONS // workers))}
    server = AppServer(workdir, database_url, extra_env={**SERVER_ENV, **pool}, workers=workers)
    try:
        await server.wait_ready()
        # Warm-up (compiled-statement caches, pools, templates) on other rows than the measured ones.
        for path, prefix in [
            ("/api/bench/events/warm-up/bare", "wb"),
            ("/api/events/warm-up/registrations/", "wr"),
            ("/api/bench/events/warm-up/registrations-without-mail", "wn"),
        ]:
            await asyncio.to_thread(
                run_load, server.url, registrations(path, prefix, WARM_UP), CONNECTIONS, ""
            )
        plans = {phase.label: registrations(phase.path, phase.slug, REGISTRANTS) for phase in phases}
        share = REGISTRANTS // ROUNDS
        for round_index in range(ROUNDS):
            for phase in phases:
                chunk = plans[phase.label][round_index * share : (round_index + 1) * share]
                phase.results.append(
                    await asyncio.to_thread(run_load, server.url, chunk, CONNECTIONS, phase.label)
                )
        bare, full, mailless = (phase.merged() for phase in phases)
        rush, rush_nomail = await counts(engine, "rush"), await counts(engine, "rush-nomail")
    finally:
        server.stop()
        await engine.dispose()

    shape = f"{workers} uvicorn workers" if workers > 1 else "one process"
    print(
        f"\n== {label}, {shape}: {REGISTRANTS} registrants per endpoint, {CONNECTIONS} connections, "
        f"{ROUNDS} rounds"
    )
    for result in (bare, full, mailless):
        print(result.line())
    for phase in phases:
        rounds = "  ".join(f"{r.throughput:>5.0f}/s p99 {r.p99:>6.0f}" for r in phase.results)
        print(f"  per round, {phase.label:<28} {rounds}")
    print(f"rush event:        {rush}")
    print(f"rush-nomail event: {rush_nomail}")
    # Judged on the median of the per-round ratios: a neighbour's burst in one round moves the totals.
    bare_phase, full_phase, mailless_phase = phases
    throughput_ratio = _median_ratio(full_phase, bare_phase)
    tail_ratio = full.p99 / full.p50
    mail_ratio = _median_ratio(full_phase, mailless_phase)
    print(
        f"ratios over the whole run: vs bare {full.throughput / bare.throughput:.0%}, "
        f"with mail vs without {full.throughput / mailless.throughput:.0%}; medians of the rounds below"
    )
    errors = full.errors({201}) + mailless.errors({201}) + bare.errors({201})
    exact = (
        rush.get("confirmed") == SEATS
        and rush["seats_taken"] == SEATS
        and rush.get("waitlisted") == REGISTRANTS - SEATS
        and rush["outbox"] == REGISTRANTS
        and rush_nomail.get("confirmed") == SEATS
        and rush_nomail["outbox"] == 0
    )
    checks = [
        (f"throughput vs bare insert {throughput_ratio:.0%} (target >= 50%)", throughput_ratio >= 0.5),
        (f"registration p99 / p50 {tail_ratio:.1f}x (target <= 3x)", tail_ratio <= 3),
        (f"errors {errors} (target 0)", errors == 0),
        (
            f"confirmed {rush.get('confirmed')} of {SEATS} seats, "
            f"{rush.get('waitlisted')} waitlisted, {rush['outbox']} emails queued (target exactly {SEATS})",
            exact,
        ),
        (f"with mail vs without {mail_ratio:.0%} (target >= 95%)", mail_ratio >= 0.95),
        (
            f"registrations per minute {full.throughput * 60:,.0f} (aim > 30,000)",
            full.throughput * 60 > 30_000,
        ),
    ]
    for text, met in checks:
        print(f"  {verdict(met):>7}  {text}")
    return all(met for _, met in checks)


async def main(database: str, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-rush-") as folder:
        workdir = Path(folder)
        if database in ("postgresql", "both"):
            with PostgresCluster(workdir / "pg") as cluster:
                cluster.create_database("bench")
                url = cluster.url("bench")
                await asyncio.to_thread(migrate.upgrade, url)
                await run(url, workdir, "PostgreSQL", workers)
        if database in ("sqlite", "both"):
            url = f"sqlite+aiosqlite:///{workdir}/bench-{uuid.uuid4().hex[:8]}.sqlite3"
            await asyncio.to_thread(migrate.upgrade, url)
            await run(url, workdir, "SQLite", workers)


if __name__ == "__main__":
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite", "both"], default="postgresql")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink seats and registrants (a quick try)")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (the README's production set-up)"
    )
    arguments = parser.parse_args()
    SEATS, REGISTRANTS = round(SEATS * arguments.scale), round(REGISTRANTS * arguments.scale)
    started = time.perf_counter()
    asyncio.run(main(arguments.database, arguments.workers))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
