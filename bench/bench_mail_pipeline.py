"""Mail pipeline: confirmation emails built and delivered per second, against sending pre-built ones.

Run: ``.venv/bin/python bench/bench_mail_pipeline.py`` (SQLite, about a minute). An SMTP server (aiosmtpd,
discarding what it receives) runs in its own process on loopback. The same run measures:

- ``raw send``: the messages, built and serialised beforehand, sent with aiosmtplib over one reused
  connection (the ceiling: nothing but SMTP);
- ``pipeline``: the outbox worker of the app (``events_app.app.make_worker``, the production settings
  for batch size and transport) claiming the queued confirmations, building each one in the
  registrant's language with the calendar invite (VTIMEZONE), the QR ticket and both text and HTML
  bodies, sending it and marking it sent.

Raw runs before and after the pipeline; the ratio uses their mean. Target: pipeline >= 30% of raw.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiosmtplib
import sqlalchemy as sa
from app_server import BENCH_SECRET, exit_cleanly_on_sigterm, free_port
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from uuid_utils.compat import uuid7

from events_app.app import make_worker
from events_app.db import migrate
from events_app.db.engine import configure_sqlite
from events_app.db.models import (
    Event,
    EventKind,
    EventStatus,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
)
from events_app.domain.registrations.notifications import make_composer, message_id_domain
from events_app.domain.registrations.services import MailKind
from events_app.lib import outbox
from events_app.lib.security import TokenPurpose, derive_token, hash_token
from events_app.lib.templating import make_environment
from events_app.settings import Settings

MESSAGES = 600
TARGET = 0.30
LANGUAGES = ["es", "pt_BR", "en", "fr"]
ZONES = ["America/Bogota", "Europe/Madrid", "America/Sao_Paulo"]


def start_smtp_server(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "aiosmtpd",
        "-n",
        "-l",
        f"127.0.0.1:{port}",
        "-c",
        "aiosmtpd.handlers.Sink",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_for_port(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError("the SMTP server did not start")


async def fill(engine: AsyncEngine, settings: Settings, count: int) -> None:
    """Three published events in three zones and ``count`` confirmed registrants with a queued email each."""
    now = datetime.now(UTC)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as session:
        events = [
            Event(
                slug=f"bench-{index}",
                kind=EventKind.HYBRID,
                status=EventStatus.PUBLISHED,
                base_language="es",
                texts={
                    "es": {"title": "Lanzamiento de la red", "summary": "Presentación pública"},
                    "en": {"title": "Network launch", "summary": "Public presentation"},
                    "fr": {"title": "Lancement du réseau"},
                },
                starts_at=now + timedelta(days=30 + index),
                ends_at=now + timedelta(days=30 + index, hours=3),
                timezone=zone,
                venue_name="Casa de América",
                venue_address="Plaza de Cibeles 2",
                venue_city="Madrid",
                venue_country="ES",
                join_url="https://meet.example.org/launch",
                contact_email="events@programme.example.org",
            )
            for index, zone in enumerate(ZONES)
        ]
        session.add_all(events)
        await session.flush()
        rows: list[dict[str, Any]] = []
        for index in range(count):
            registration_id = uuid7()
            rows.append(
                {
                    "id": registration_id,
                    "event_id": events[index % len(events)].id,
                    "full_name": f"María José Núñez {index:04d}",
                    "email": f"person{index}@example.org",
                    "email_normalized": f"person{index}@example.org",
                    "country": "CO",
                    "institution": "Fiscalía General de la Nación",
                    "position": "Fiscal",
                    "sector": "prosecution",
                    "language": LANGUAGES[index % len(LANGUAGES)],
                    "status": RegistrationStatus.CONFIRMED.value,
                    "ticket_version": 1,
                    "ticket_hash": hash_token(
                        derive_token(BENCH_SECRET, TokenPurpose.TICKET, registration_id, 1)
                    ),
                    "manage_token_version": 1,
                    "manage_token_hash": hash_token(
                        derive_token(BENCH_SECRET, TokenPurpose.MANAGE, registration_id, 1)
                    ),
                    "join_token_hash": hash_token(
                        derive_token(BENCH_SECRET, TokenPurpose.JOIN, registration_id, 1)
                    ),
                    "invite_sequence": 0,
                    "privacy_notice_version": "bench",
                    "consent_given_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        await session.execute(sa.insert(cast(sa.Table, Registration.__table__)), rows)
        await outbox.enqueue_many(
            session,
            [
                {
                    "kind": MailKind.CONFIRMED.value,
                    "recipient": row["email"],
                    "language": row["language"],
                    "registration_id": row["id"],
                    "payload": {"sequence": 0},
                }
                for row in rows
            ],
            message_id_domain=message_id_domain(settings),
        )
        await session.commit()


async def prebuild(engine: AsyncEngine, settings: Settings) -> tuple[list[tuple[str, bytes]], float]:
    """Every queued email built and serialised once (not sent, not marked), and the seconds it took."""
    composer = make_composer(settings, make_environment())
    maker = async_sessionmaker(engine, expire_on_commit=False)
    built: list[tuple[str, bytes]] = []
    async with maker() as session:
        messages = (
            (await session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.id))).scalars().all()
        )
        started = time.perf_counter()
        await composer.preload(session, messages)  # as the worker does for each batch
        for message in messages:
            mail = await composer.render(session, message)
            built.append((message.recipient, mail.data))
        seconds = time.perf_counter() - started
        await session.rollback()
    return built, seconds


async def raw_send(port: int, sender: str, built: list[tuple[str, bytes]]) -> float:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await client.connect()
    started = time.perf_counter()
    for recipient, data in built:
        await client.sendmail(sender, [recipient], data)
    seconds = time.perf_counter() - started
    await client.quit()
    return seconds


async def pipeline(engine: AsyncEngine, settings: Settings) -> tuple[float, int]:
    worker = make_worker(settings, async_sessionmaker(engine, expire_on_commit=False), name="bench")
    started = time.perf_counter()
    await worker.drain()
    seconds = time.perf_counter() - started
    async with engine.connect() as connection:
        sent = await connection.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.SENT)
        )
    return seconds, int(sent or 0)


async def main(count: int) -> None:
    port = free_port()
    smtp = start_smtp_server(port)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-mail-") as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench-{uuid.uuid4().hex[:6]}.sqlite3"
            await asyncio.to_thread(migrate.upgrade, url)
            settings = Settings(
                var_dir=Path(folder),
                database_url=url,
                secret_key=BENCH_SECRET,
                base_url="https://events.example.org",
                mail_from="events@programme.example.org",
                smtp_host="127.0.0.1",
                smtp_port=port,
                run_worker_in_app=False,
            )
            engine = create_async_engine(url)
            configure_sqlite(engine)  # as the app does: WAL, BEGIN IMMEDIATE
            await wait_for_port(port)
            await fill(engine, settings, count)
            built, build_seconds = await prebuild(engine, settings)
            raw_before = await raw_send(port, settings.mail_from, built)
            pipeline_seconds, sent = await pipeline(engine, settings)
            raw_after = await raw_send(port, settings.mail_from, built)
            await engine.dispose()
    finally:
        smtp.terminate()
        smtp.wait(timeout=10)
    raw_rate = count / statistics.mean([raw_before, raw_after])
    pipeline_rate = count / pipeline_seconds
    size = statistics.mean(len(data) for _, data in built) / 1024
    print(
        f"{count} confirmation emails ({size:.0f} KB each on average; 4 languages, 3 time zones, invite + QR)"
    )
    print(f"build only (compose + serialise, no DB writes, no SMTP): {count / build_seconds:>7.0f} msg/s")
    print(f"raw send, before:  {count / raw_before:>7.0f} msg/s   after: {count / raw_after:>7.0f} msg/s")
    print(
        f"pipeline (worker: claim, build, send, mark sent):       {pipeline_rate:>7.0f} msg/s ({sent} sent)"
    )
    ratio = pipeline_rate / raw_rate
    verdict = "met" if ratio >= TARGET and sent == count else "NOT MET"
    print(f"  {verdict:>7}  pipeline / raw {ratio:.0%} (target >= {TARGET:.0%}), {sent} of {count} delivered")


if __name__ == "__main__":
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=MESSAGES)
    asyncio.run(main(parser.parse_args().messages))
