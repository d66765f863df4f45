"""The outbox never loses a message and never sends one twice."""

from __future__ import annotations

import asyncio
import mailbox
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from conftest import SmtpHandler, SmtpServer, add_event, free_port, make_settings, registration_form, wait_for
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from uuid_utils.compat import uuid7

from events_app.app import create_app, make_mail_composer, make_worker
from events_app.db.models import OutboxMessage, OutboxStatus, Registration, RegistrationStatus, Sector
from events_app.domain.registrations.services import (
    MailKind,
    RegistrationService,
    TokenSettings,
    queue_registration_mail,
)
from events_app.lib import outbox
from events_app.lib.mail import MaildirTransport, RenderedMail, SmtpTransport
from events_app.lib.outbox import OutboxWorker, RetryPolicy, utcnow
from events_app.settings import Settings


async def register_many(client: AsyncTestClient[Litestar] | httpx.AsyncClient, count: int) -> None:
    for index in range(count):
        body = {**registration_form(email=f"person{index}@example.org"), "consent": True}
        response = await client.post("/api/events/launch/registrations", json=body)
        assert response.status_code == 201, response.text


async def outbox_rows(session_maker: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with session_maker() as session:
        return list((await session.execute(sa.select(OutboxMessage))).scalars())


async def test_smtp_down_then_up_delivers_each_message_exactly_once(
    tmp_path: Path, database_url: str, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    port = free_port()  # nothing listens here yet
    settings = make_settings(tmp_path, database_url, port, outbox_retry_base_seconds=600)
    await add_event(session_maker)
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        await register_many(client, 10)
    worker = make_worker(settings, session_maker)

    assert await worker.run_once() == 10
    rows = await outbox_rows(session_maker)
    assert {row.status for row in rows} == {OutboxStatus.QUEUED}
    assert all("Connect" in (row.last_error or "") or "refused" in (row.last_error or "") for row in rows)
    assert await worker.run_once() == 0  # nothing is due before the retry delay

    assert all(row.next_attempt_at > utcnow() + timedelta(minutes=9) for row in rows)

    server = SmtpServer(port)
    server.start()
    try:
        await _let_retry_delays_pass(session_maker)
        assert await worker.drain() == 10
        assert await worker.drain() == 0
    finally:
        server.stop()

    message_ids = [message["Message-ID"] for message in server.messages]
    assert len(message_ids) == 10
    assert len(set(message_ids)) == 10
    rows = await outbox_rows(session_maker)
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    assert {row.message_id for row in rows} == set(message_ids)
    assert all(row.attempts == 2 for row in rows)


async def test_two_workers_never_send_a_message_twice(
    client: AsyncTestClient[Litestar],
    settings: Settings,
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker)
    await register_many(client, 60)
    small_batches = settings.model_copy(update={"outbox_batch_size": 4})
    workers = [make_worker(small_batches, session_maker, name=f"worker-{index}") for index in range(2)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run_forever(stop)) for worker in workers]
    try:
        for _ in range(500):
            if len(smtp_server.messages) >= 60:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # give a duplicate, if there were one, time to arrive
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    counts = Counter(message["Message-ID"] for message in smtp_server.messages)
    assert len(counts) == 60
    assert max(counts.values()) == 1
    rows = await outbox_rows(session_maker)
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    assert {row.attempts for row in rows} == {1}


async def test_permanent_smtp_failure_leaves_the_row_failed_with_its_error(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    worker: OutboxWorker,
) -> None:
    smtp_server.handler.reject["nobody@"] = "550 5.1.1 <nobody@example.org>: mailbox unavailable"
    await add_event(session_maker)
    for email in ("nobody@example.org", "somebody@example.org"):
        body = {**registration_form(email=email), "consent": True}
        assert (await client.post("/api/events/launch/registrations", json=body)).status_code == 201

    await worker.drain()

    rows = {row.recipient: row for row in await outbox_rows(session_maker)}
    failed = rows["nobody@example.org"]
    assert failed.status is OutboxStatus.FAILED
    assert failed.last_error is not None
    assert "550" in failed.last_error
    assert failed.attempts == 1  # a permanent failure is not retried
    assert rows["somebody@example.org"].status is OutboxStatus.SENT
    assert [str(message["To"]) for message in smtp_server.messages] == [
        "José Álvarez Gutiérrez <somebody@example.org>"
    ]


async def test_temporary_failures_give_up_after_the_last_attempt(
    tmp_path: Path, database_url: str, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    settings = make_settings(tmp_path, database_url, free_port(), outbox_max_attempts=3)
    await add_event(session_maker)
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        await register_many(client, 1)
    worker = make_worker(settings, session_maker)

    await worker.drain()

    [row] = await outbox_rows(session_maker)
    assert row.status is OutboxStatus.FAILED
    assert row.attempts == 3


async def test_a_rolled_back_registration_sends_nothing(
    session_maker: async_sessionmaker[AsyncSession], worker: OutboxWorker, smtp_server: SmtpServer
) -> None:
    event = await add_event(session_maker)
    async with session_maker() as session:
        registration = _registration(event.id, "rolled.back@example.org", ticket_hash="a" * 64)
        session.add(registration)
        await session.flush()
        outbox.enqueue(
            session,
            kind="registration_confirmed",
            recipient=registration.email,
            language="en",
            registration_id=registration.id,
            message_id_domain="test",
        )
        await session.rollback()

    # A transaction that fails at commit (here: a duplicate ticket hash) takes its mail with it.
    async with session_maker() as session:
        session.add(_registration(event.id, "first@example.org", ticket_hash="b" * 64))
        await session.commit()
    async with session_maker() as session:
        duplicate = _registration(event.id, "second@example.org", ticket_hash="b" * 64)
        session.add(duplicate)
        outbox.enqueue(
            session,
            kind="registration_confirmed",
            recipient=duplicate.email,
            language="en",
            registration_id=duplicate.id,
            message_id_domain="test",
        )
        with pytest.raises(IntegrityError):
            await session.commit()

    assert await outbox_rows(session_maker) == []
    assert await worker.drain() == 0
    assert smtp_server.messages == []


async def test_a_message_held_by_a_dead_worker_is_sent_after_its_lease(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    worker: OutboxWorker,
) -> None:
    await add_event(session_maker)
    await register_many(client, 1)
    async with session_maker() as session:
        await session.execute(
            sa.update(OutboxMessage).values(
                status=OutboxStatus.SENDING,
                locked_by="dead-worker",
                locked_until=utcnow() + timedelta(minutes=5),
            )
        )
        await session.commit()
    assert await worker.drain() == 0  # still leased

    async with session_maker() as session:
        await session.execute(sa.update(OutboxMessage).values(locked_until=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert await worker.drain() == 1
    assert len(smtp_server.messages) == 1
    [row] = await outbox_rows(session_maker)
    assert row.status is OutboxStatus.SENT
    assert smtp_server.messages[0]["Message-ID"] == row.message_id


async def test_without_smtp_settings_mail_goes_to_the_local_maildir(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    assert not settings.uses_smtp
    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        engine = create_async_engine(sqlite_url)
        maker = async_sessionmaker(engine, expire_on_commit=False)
        await add_event(maker)
        await register_many(client, 2)
        assert await make_worker(settings, maker).drain() == 2
        await engine.dispose()

    assert settings.maildir is not None
    delivered = list(mailbox.Maildir(str(settings.maildir), create=False))
    assert len(delivered) == 2
    assert {str(message["To"]).split("<")[-1].rstrip(">") for message in delivered} == {
        "person0@example.org",
        "person1@example.org",
    }


def _registration(event_id: UUID, email: str, ticket_hash: str) -> Registration:
    return Registration(
        id=uuid7(),
        event_id=event_id,
        full_name="Test Person",
        email=email,
        email_normalized=email,
        country="CO",
        institution="Test",
        position="",
        sector=Sector.POLICE,
        language="en",
        status=RegistrationStatus.CONFIRMED,
        ticket_hash=ticket_hash,
        manage_token_hash=email.ljust(64, "x"),
        privacy_notice_version="test",
        consent_given_at=datetime.now(UTC),
    )


async def test_the_worker_started_with_the_app_delivers_without_help(
    tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer
) -> None:
    settings = make_settings(
        tmp_path, sqlite_url, smtp_server.port, run_worker_in_app=True, outbox_poll_seconds=30
    )
    engine = create_async_engine(sqlite_url)
    await add_event(async_sessionmaker(engine, expire_on_commit=False))
    await engine.dispose()
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        await register_many(client, 3)
        # Shorter than the 30 s poll (with room for a loaded CI machine): the commit wakes the worker.
        await wait_for(lambda: len(smtp_server.messages) == 3, timeout=15)


async def _let_retry_delays_pass(session_maker: async_sessionmaker[AsyncSession]) -> None:
    """Stand-in for waiting ten minutes: make every queued row due now."""
    async with session_maker() as session:
        await session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.QUEUED)
            .values(next_attempt_at=utcnow())
        )
        await session.commit()


async def test_a_reminder_queued_before_a_cancellation_is_skipped(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    worker: OutboxWorker,
    settings: Settings,
) -> None:
    await add_event(session_maker)
    await register_many(client, 1)
    await worker.drain()
    tokens = TokenSettings(secret_key=settings.secret_key, message_id_domain="test")
    async with session_maker() as session:
        registration = (await session.execute(sa.select(Registration))).unique().scalar_one()
        queue_registration_mail(session, tokens, registration, MailKind.REMINDER, offset_minutes=60)
        await session.commit()
        await RegistrationService(session=session, tokens=tokens).cancel(registration)

    await worker.drain()

    kinds = {row.kind: row for row in await outbox_rows(session_maker)}
    assert kinds["event_reminder"].status is OutboxStatus.SKIPPED
    assert kinds["registration_cancelled"].status is OutboxStatus.SENT
    subjects = [message["Subject"] for message in smtp_server.messages]
    assert len(subjects) == 2  # the confirmation and the cancellation, no reminder


class SlowSmtpHandler(SmtpHandler):
    """Accepts every message, but only after a pause: a slow SMTP server."""

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.2)
        return await super().handle_DATA(server, session, envelope)


async def test_a_batch_slower_than_the_lease_is_not_taken_over_by_another_worker(
    client: AsyncTestClient[Litestar],
    settings: Settings,
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    # Ten messages at 0.2 s each take 2 s; the lease is 1 s. Without renewal, the second worker would
    # take over the end of the first one's batch while it is still sending, and both would send it.
    smtp_server.handler = SlowSmtpHandler()
    smtp_server.stop()
    smtp_server.start()
    await add_event(session_maker)
    await register_many(client, 10)
    short_lease = settings.model_copy(update={"outbox_lease_seconds": 1.0, "outbox_batch_size": 10})
    first = make_worker(short_lease, session_maker, name="worker-first")
    second = make_worker(short_lease, session_maker, name="worker-second")
    stop = asyncio.Event()
    first_run = asyncio.create_task(first.run_once())
    await wait_for(lambda: len(smtp_server.messages) >= 1)  # the first worker holds the whole batch
    second_run = asyncio.create_task(second.run_forever(stop))
    try:
        assert await first_run == 10
        await asyncio.sleep(0.5)  # give a duplicate, if there were one, time to arrive
    finally:
        stop.set()
        await second_run

    counts = Counter(message["Message-ID"] for message in smtp_server.messages)
    assert len(counts) == 10
    assert max(counts.values()) == 1
    rows = await outbox_rows(session_maker)
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    assert {row.attempts for row in rows} == {1}


class ReadThenSkip:
    """A composer that reads the database while deciding, then finds the message no longer applies."""

    async def preload(self, session: AsyncSession, messages: object) -> None:
        return None

    async def render(self, session: AsyncSession, message: OutboxMessage) -> RenderedMail:
        await session.execute(sa.select(OutboxMessage.id).limit(1))
        raise outbox.SkipMessage("no longer applies")

    async def __call__(self, session: AsyncSession, message: OutboxMessage) -> EmailMessage:
        raise NotImplementedError


async def test_a_composer_that_reads_before_skipping_does_not_block_the_worker(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """The read opens a transaction (on SQLite it holds the write lock): it must end before the row
    is marked skipped on the worker's other connection, or the worker waits on itself."""
    await add_event(session_maker)
    await register_many(client, 2)
    worker = OutboxWorker(
        session_maker,
        ReadThenSkip(),
        lambda: MaildirTransport(tmp_path),
        RetryPolicy(base_seconds=1, max_attempts=2, lease_seconds=60),
    )

    await asyncio.wait_for(worker.drain(), timeout=10)

    assert {row.status for row in await outbox_rows(session_maker)} == {OutboxStatus.SKIPPED}


class CheckedSmtpTransport(SmtpTransport):
    """The app's SMTP transport, which first counts the rows marked sent: every message it delivered
    before must be marked by the time the next one is sent (the worker builds ahead, but never sends
    ahead of its marks)."""

    def __init__(self, settings: Settings, session_maker: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(settings)
        self._session_maker = session_maker
        self.delivered = 0
        self.marked_before_each: list[tuple[int, int]] = []

    async def send(self, message: RenderedMail) -> None:
        async with self._session_maker() as session:
            marked = await session.scalar(
                sa.select(sa.func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.SENT)
            )
        self.marked_before_each.append((self.delivered, int(marked or 0)))
        await super().send(message)
        self.delivered += 1


async def test_each_message_is_marked_sent_before_the_next_is_sent(
    client: AsyncTestClient[Litestar],
    settings: Settings,
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """A worker killed mid-batch repeats at most the one message in flight."""
    await add_event(session_maker)
    await register_many(client, 6)
    transport = CheckedSmtpTransport(settings, session_maker)
    worker = OutboxWorker(
        session_maker,
        make_mail_composer(settings),
        lambda: transport,
        RetryPolicy(base_seconds=1, max_attempts=2, lease_seconds=60),
    )

    assert await worker.drain() == 6

    assert transport.marked_before_each == [(count, count) for count in range(6)]
    assert len(smtp_server.messages) == 6
    assert {row.status for row in await outbox_rows(session_maker)} == {OutboxStatus.SENT}


class FailsOnSecond:
    """The app's composer, except that the second message of a batch cannot be built."""

    def __init__(self, settings: Settings) -> None:
        self._composer = make_mail_composer(settings)
        self.calls = 0

    async def preload(self, session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        await self._composer.preload(session, messages)

    async def render(self, session: AsyncSession, message: OutboxMessage) -> RenderedMail:
        self.calls += 1
        if self.calls == 2:
            await session.execute(sa.select(OutboxMessage.id).limit(1))  # a transaction to roll back
            raise ValueError("no template for this one")
        return await self._composer.render(session, message)

    async def __call__(self, session: AsyncSession, message: OutboxMessage) -> EmailMessage:
        raise NotImplementedError


async def test_a_message_that_cannot_be_built_fails_alone_and_the_batch_goes_on(
    client: AsyncTestClient[Litestar],
    settings: Settings,
    session_maker: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker)
    await register_many(client, 5)
    worker = OutboxWorker(
        session_maker,
        FailsOnSecond(settings),
        lambda: SmtpTransport(settings),
        RetryPolicy(base_seconds=1, max_attempts=2, lease_seconds=60),
    )

    assert await asyncio.wait_for(worker.drain(), timeout=30) == 5

    rows = await outbox_rows(session_maker)
    assert Counter(row.status for row in rows) == {OutboxStatus.SENT: 4, OutboxStatus.FAILED: 1}
    [failed] = [row for row in rows if row.status is OutboxStatus.FAILED]
    assert (failed.last_error or "").startswith("build: ValueError")
    counts = Counter(message["Message-ID"] for message in smtp_server.messages)
    assert set(counts) == {row.message_id for row in rows if row.status is OutboxStatus.SENT}
    assert max(counts.values()) == 1
