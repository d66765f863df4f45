"""Reminders before an event: each due reminder reaches each confirmed registrant exactly once.

What is due (see ``events_app/domain/reminders/services.py``): for a published event that has not
started, the reminder of the smallest offset whose time has come; a larger offset whose time has also
passed is stale and never sent. Only confirmed registrations created at or before the reminder's time get it.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa
import zxingcpp
from conftest import SmtpServer, add_event, make_settings, registration_form
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.app import make_worker
from events_app.db.models import Event, EventKind, OutboxMessage, OutboxStatus, Registration
from events_app.domain.events.schemas import describe_when
from events_app.domain.registrations.notifications import join_link, message_id_domain
from events_app.domain.registrations.services import MailKind, RegistrationService, TokenSettings
from events_app.domain.reminders.services import enqueue_due_reminders
from events_app.lib.i18n import force_locale
from events_app.lib.outbox import OutboxWorker
from events_app.lib.security import hash_token
from events_app.settings import Settings

SPANISH_TITLE = "Creación de la red contra la trata de personas"


def soon(**delta: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(**delta)


async def add_timed_event(
    session_maker: async_sessionmaker[AsyncSession], slug: str, starts_in: timedelta, **fields: object
) -> Event:
    starts_at = soon() + starts_in
    return await add_event(
        session_maker,
        slug=slug,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=2),
        registration_opens_at=starts_at - timedelta(days=10),
        reminder_offsets_minutes=[1440, 60],
        **fields,
    )


async def register(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    slug: str,
    email: str,
    created_at: datetime,
    language: str = "en",
) -> Registration:
    """Register through the public API, then date the registration back to ``created_at``."""
    body = {**registration_form(email=email, language=language), "consent": True}
    response = await client.post(f"/api/events/{slug}/registrations", json=body)
    assert response.status_code == 201, response.text
    async with session_maker() as session:
        await session.execute(
            sa.update(Registration).where(Registration.email == email).values(created_at=created_at)
        )
        await session.commit()
        registration = (
            await session.execute(sa.select(Registration).where(Registration.email == email))
        ).scalar_one()
        return registration


async def cancel(session_maker: async_sessionmaker[AsyncSession], settings: Settings, email: str) -> None:
    tokens = TokenSettings(secret_key=settings.secret_key, message_id_domain=message_id_domain(settings))
    async with session_maker() as session:
        service = RegistrationService(session=session, tokens=tokens)
        registration = (
            await session.execute(sa.select(Registration).where(Registration.email == email))
        ).scalar_one()
        assert await service.cancel(registration)


async def reminder_rows(session_maker: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with session_maker() as session:
        result = await session.execute(
            sa.select(OutboxMessage).where(OutboxMessage.kind == MailKind.REMINDER.value)
        )
        return list(result.scalars())


async def delivered_reminders(
    session_maker: async_sessionmaker[AsyncSession], smtp_server: SmtpServer
) -> Counter[tuple[str, int]]:
    """(recipient, offset) of every reminder the SMTP server received, counted."""
    rows = {row.message_id: row for row in await reminder_rows(session_maker)}
    received: Counter[tuple[str, int]] = Counter()
    for message in smtp_server.messages:
        row = rows.get(message["Message-ID"])
        if row is not None:
            received[(row.recipient, int(row.payload["offset_minutes"]))] += 1
    return received


async def test_two_workers_send_each_due_reminder_exactly_once(
    client: AsyncTestClient[Litestar],
    settings: Settings,
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    # Starts in 30 minutes: the one-hour reminder is due; the one-day reminder is stale.
    starting = await add_timed_event(session_maker, "starting", timedelta(minutes=30))
    # Starts in 23 h 30: the one-day reminder is due; the one-hour reminder is not yet.
    tomorrow = await add_timed_event(session_maker, "tomorrow", timedelta(hours=23, minutes=30))
    two_days_ago = soon(days=-2)
    early = [f"early{index}@example.org" for index in range(5)]
    for email in early:
        await register(client, session_maker, "starting", email, two_days_ago)
    await register(client, session_maker, "starting", "cancelled@example.org", two_days_ago)
    await cancel(session_maker, settings, "cancelled@example.org")
    # Registered 10 minutes ago, after the one-hour reminder's time (30 minutes before that).
    await register(client, session_maker, "starting", "late@example.org", soon(minutes=-10))
    guests = [f"guest{index}@example.org" for index in range(3)]
    for email in guests:
        await register(client, session_maker, "tomorrow", email, two_days_ago)

    workers = [make_worker(settings, session_maker, name=f"worker-{index}") for index in range(2)]
    rounds = []
    for _ in range(3):  # both workers run the job at the same moment, several times
        rounds.append(sum(await asyncio.gather(*(worker.run_periodic_jobs() for worker in workers))))
    assert rounds == [len(early) + len(guests), 0, 0]
    await asyncio.gather(*(worker.drain() for worker in workers))

    expected = {(email, 60): 1 for email in early} | {(email, 1440): 1 for email in guests}
    assert await delivered_reminders(session_maker, smtp_server) == Counter(expected)
    message_ids = Counter(message["Message-ID"] for message in smtp_server.messages)
    assert max(message_ids.values()) == 1

    # A restart later that day: the job finds nothing more to send.
    restarted = make_worker(settings, session_maker, name="restarted")
    assert await restarted.run_periodic_jobs() == 0
    assert await restarted.drain() == 0

    # The next day, half an hour before the second event: its one-hour reminder, once, with two workers.
    later = tomorrow.starts_at - timedelta(minutes=30)
    domain = message_id_domain(settings)

    async def job() -> int:
        async with session_maker() as session:
            written = await enqueue_due_reminders(session, later, domain=domain)
            await session.commit()
            return written

    assert sorted(await asyncio.gather(job(), job())) == [0, len(guests)]
    assert await job() == 0
    await asyncio.gather(*(worker.drain() for worker in workers))
    expected |= {(email, 60): 1 for email in guests}
    assert await delivered_reminders(session_maker, smtp_server) == Counter(expected)
    assert {row.status for row in await reminder_rows(session_maker)} == {OutboxStatus.SENT}
    assert starting.id != tomorrow.id


async def test_workers_running_forever_queue_reminders_once(
    tmp_path: Path,
    database_url: str,
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """The job as wired into ``make_worker``, run by the workers' own loop every few milliseconds."""
    await add_timed_event(session_maker, "starting", timedelta(minutes=30))
    for index in range(5):
        await register(client, session_maker, "starting", f"early{index}@example.org", soon(days=-2))
    settings = make_settings(tmp_path, database_url, smtp_server.port)
    workers = [make_worker(settings, session_maker, name=f"loop-{index}") for index in range(2)]
    for worker in workers:
        worker._periodic_seconds = 0.01  # make_worker keeps the default schedule; run it often here
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run_forever(stop)) for worker in workers]
    try:
        for _ in range(500):
            if len(await reminder_rows(session_maker)) >= 5 and len(smtp_server.messages) >= 10:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # several more rounds of the job on both workers
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    received = await delivered_reminders(session_maker, smtp_server)
    assert received == Counter({(f"early{index}@example.org", 60): 1 for index in range(5)})


def png_parts(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.walk() if part.get_content_type() == "image/png"]  # type: ignore[misc]


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


async def test_reminder_emails_carry_the_join_link_or_the_ticket_in_the_registrants_language(
    client: AsyncTestClient[Litestar],
    settings: Settings,
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    worker: OutboxWorker,
) -> None:
    join_url = "https://meet.example.org/j/123456?pwd=abc"
    webinar = await add_timed_event(
        session_maker, "webinar", timedelta(minutes=50), kind=EventKind.ONLINE, join_url=join_url
    )
    await add_timed_event(session_maker, "meeting", timedelta(hours=20))
    online = await register(client, session_maker, "webinar", "online@example.org", soon(days=-2), "es")
    in_person = await register(client, session_maker, "meeting", "venue@example.org", soon(days=-2), "en")
    assert await worker.run_periodic_jobs() == 2
    await worker.drain()  # the confirmations and the reminders
    reminder_ids = {row.message_id for row in await reminder_rows(session_maker)}
    by_recipient = {
        message["To"].addresses[0].addr_spec: message
        for message in smtp_server.messages
        if message["Message-ID"] in reminder_ids
    }
    assert set(by_recipient) == {online.email, in_person.email}

    spanish = by_recipient[online.email]
    assert '<html lang="es">' in body(spanish, "html")
    assert SPANISH_TITLE in spanish["Subject"]
    with force_locale("es"):
        spanish_time = describe_when(webinar).event_text  # e.g. "martes, 14 de abril de 2027, 10:00 – 12:00"
    assert spanish_time in body(spanish, "plain")
    personal_join = join_link(settings, online)  # the person's own link that leads to the meeting
    assert personal_join
    assert personal_join in body(spanish, "plain")
    assert f'href="{personal_join}"' in body(spanish, "html")
    assert "/my/" in body(spanish, "plain")
    assert "cid:" not in body(spanish, "html")  # no ticket to show for an online event

    english = by_recipient[in_person.email]
    assert '<html lang="en">' in body(english, "html")
    assert "starts in 1 day" in english["Subject"]
    assert "the event starts in 1 day." in body(english, "plain")
    assert "/j/" not in body(english, "plain")
    assert "cid:ticket-qr@events-app" in body(english, "html")
    [code] = {
        str(
            zxingcpp.read_barcodes(
                Image.open(io.BytesIO(part.get_content())), formats=zxingcpp.BarcodeFormat.QRCode
            )[0].text
        )
        for part in png_parts(english)
    }
    assert hash_token(code) == in_person.ticket_hash
