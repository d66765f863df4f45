"""The mail outbox: rows written with the change that caused them, delivered later by workers.

Guarantees:
- a message exists iff the transaction that wrote it committed (it is a row in that transaction);
- two workers never hold the same row: a claim sets ``status=sending`` with a lease, taken under
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and under SQLite's single writer lock;
- a worker that dies mid-send loses nothing: its lease runs out and another worker sends the row
  again, with the same Message-ID; each row is marked sent as soon as it is delivered, so at most
  the one message in flight is repeated (a worker builds the next message while it sends and marks
  one, but sends it only once the one before is marked);
- a live worker does not let its lease run out under it: it renews the rest of its batch before
  half of the lease is gone (keep the lease well above twice the SMTP time-out);
- temporary failures (no connection, time-outs, 4xx) are retried with growing delays; permanent
  ones (5xx, or too many tries) leave the row ``failed`` with the error kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

from events_app.db.models import OutboxMessage, OutboxStatus
from events_app.lib.mail import DeliveryError, RenderedMail, Transport

logger = logging.getLogger(__name__)

#: Callbacks run after a commit that wrote outbox rows (an in-process worker's wake-up).
_wakeup_callbacks: set[Callable[[], None]] = set()
_SESSION_FLAG = "events_app.outbox_written"
MAX_RETRY_DELAY = timedelta(hours=6)
#: Messages built ahead of the one being sent: enough for building to fill every wait of a send and
#: its mark (the composer yields between its steps), so the worker's thread is never idle.
BUILT_AHEAD = 2
_TABLE = cast(sa.Table, OutboxMessage.__table__)


def add_wakeup_callback(callback: Callable[[], None]) -> None:
    _wakeup_callbacks.add(callback)


def remove_wakeup_callback(callback: Callable[[], None]) -> None:
    _wakeup_callbacks.discard(callback)


@sa_event.listens_for(Session, "after_commit")
def _wake_workers(session: Session) -> None:
    if session.info.pop(_SESSION_FLAG, False):
        for callback in list(_wakeup_callbacks):
            callback()


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_message_id(domain: str) -> str:
    return f"<{uuid7()}@{domain}>"


def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    recipient: str,
    language: str,
    message_id_domain: str,
    registration_id: UUID | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    mass_message_id: UUID | None = None,
) -> OutboxMessage:
    """Add a message to the session's transaction; it is sent only if that transaction commits."""
    message = OutboxMessage(
        id=uuid7(),
        kind=kind,
        recipient=recipient,
        language=language,
        registration_id=registration_id,
        payload=payload or {},
        message_id=make_message_id(message_id_domain),
        dedupe_key=dedupe_key,
        mass_message_id=mass_message_id,
        status=OutboxStatus.QUEUED,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(message)
    session.sync_session.info[_SESSION_FLAG] = True
    return message


async def enqueue_many(
    session: AsyncSession, messages: Sequence[Mapping[str, Any]], *, message_id_domain: str
) -> int:
    """Add many messages in one multi-row INSERT, without ORM objects (fan-outs to whole events).

    Each mapping holds ``kind``, ``recipient``, ``language`` and optionally ``registration_id`` and
    ``payload``; every other column is filled as :func:`enqueue` fills it. Same transaction rules.
    """
    if not messages:
        return 0
    now = utcnow()
    rows = [
        {
            "id": uuid7(),
            "kind": message["kind"],
            "recipient": message["recipient"],
            "language": message["language"],
            "registration_id": message.get("registration_id"),
            "payload": message.get("payload") or {},
            "message_id": make_message_id(message_id_domain),
            "dedupe_key": None,
            "mass_message_id": None,
            "status": OutboxStatus.QUEUED,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for message in messages
    ]
    await session.execute(sa.insert(cast(sa.Table, OutboxMessage.__table__)), rows)
    mark_written(session)
    return len(rows)


def mark_written(session: AsyncSession) -> None:
    """Tell the in-process workers to look once this transaction commits (for rows written by SQL)."""
    session.sync_session.info[_SESSION_FLAG] = True


async def backlog(session: AsyncSession) -> int:
    pending = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
    result = await session.execute(
        sa.select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.status.in_(pending))
    )
    return int(result.scalar_one())


PeriodicJob = Callable[[AsyncSession], Awaitable[int]]


class SkipMessage(Exception):
    """Raised by a composer when a queued message no longer applies; the row is marked skipped.

    With ``forget_recipient`` the skipped row keeps no address (one typed by a stranger, say).
    """

    def __init__(self, reason: str, *, forget_recipient: bool = False) -> None:
        super().__init__(reason)
        self.forget_recipient = forget_recipient


class Composer(Protocol):
    """Builds the message of an outbox row."""

    async def preload(self, session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        """Load in a few queries what the batch's messages need (rendering then finds it in the session)."""

    async def render(self, session: AsyncSession, message: OutboxMessage) -> RenderedMail:
        """The message, ready to send; raises :class:`SkipMessage` when it no longer applies."""

    async def __call__(self, session: AsyncSession, message: OutboxMessage) -> EmailMessage:
        """The same message as an ``EmailMessage`` (for callers that read its headers, not for sending)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    max_attempts: int
    lease_seconds: float

    def delay_after(self, attempts: int) -> timedelta:
        delay = timedelta(seconds=self.base_seconds * (2 ** max(attempts - 1, 0)))
        return min(delay, MAX_RETRY_DELAY)


class OutboxWorker:
    """Claims due rows, builds each message with ``composer`` and hands it to the transport."""

    def __init__(
        self,
        session_maker: Callable[[], AsyncSession],
        composer: Composer,
        transport_factory: Callable[[], Transport],
        policy: RetryPolicy,
        *,
        batch_size: int = 50,
        poll_seconds: float = 2.0,
        name: str | None = None,
        periodic_jobs: list[PeriodicJob] | None = None,
        periodic_seconds: float = 30.0,
    ) -> None:
        self._session_maker = session_maker
        self._periodic_jobs = list(periodic_jobs or [])
        self._periodic_seconds = periodic_seconds
        self._periodic_due_at = 0.0
        self._composer = composer
        self._transport_factory = transport_factory
        self._policy = policy
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid7().hex[:8]}"
        self._wakeup = asyncio.Event()
        self._statements: dict[tuple[str, ...], _DriverStatement] = {}

    def wake(self) -> None:
        self._wakeup.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        add_wakeup_callback(self.wake)
        try:
            while not stop.is_set():
                try:
                    processed = await self.run_once()
                except Exception:  # a database hiccup must not kill the worker: log, wait, go on
                    logger.exception("outbox worker %s: batch failed", self.name)
                    processed = 0
                if processed == 0:
                    await self._sleep(stop)
        finally:
            remove_wakeup_callback(self.wake)

    async def _sleep(self, stop: asyncio.Event) -> None:
        self._wakeup.clear()
        waiters = {asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(stop.wait())}
        _, pending = await asyncio.wait(
            waiters, timeout=self._poll_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()

    async def run_periodic_jobs(self) -> int:
        """Run the jobs that write outbox rows on a schedule (reminders, retention); returns rows written.

        Each job must be idempotent and safe with several workers running it at once (e.g. by writing
        rows with a ``dedupe_key``): every worker runs them.
        """
        written = 0
        for job in self._periodic_jobs:
            async with self._session_maker() as session:
                written += await job(session)
                await session.commit()
        return written

    async def _maybe_run_periodic_jobs(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._periodic_jobs and now >= self._periodic_due_at:
            self._periodic_due_at = now + self._periodic_seconds
            await self.run_periodic_jobs()

    async def run_once(self) -> int:
        """Deliver one batch of due messages; returns how many rows were claimed."""
        await self._maybe_run_periodic_jobs()
        claimed, held_until = await self._claim()
        if not claimed:
            return 0
        # One session for the whole batch: the rows, their registrations and events are loaded in a
        # couple of queries up front, and each message is then marked by one UPDATE of its own.
        async with (
            self._session_maker() as session,
            _settler(session, self._statements) as marks,
            self._transport_factory() as transport,
        ):
            session.sync_session.expire_on_commit = False  # the loaded rows outlive each commit
            lease = _Lease(claimed, held_until)
            # The next messages are built while this one is sent and marked (on its own connection),
            # when building and marking do not share one. Building has no effect outside the session,
            # and a message is still sent only once the one before it is marked.
            built = self._build_all(session, claimed)
            if marks.uses_session:
                try:
                    async for one in built:
                        await self._deliver(marks, transport, one, lease)
                finally:
                    await built.aclose()
                return len(claimed)
            ready: asyncio.Queue[_Built | Exception | None] = asyncio.Queue(maxsize=BUILT_AHEAD)
            builder = asyncio.ensure_future(_build_into(built, ready))
            try:
                while (item := await ready.get()) is not None:
                    if isinstance(item, Exception):
                        raise item
                    await self._deliver(marks, transport, item, lease)
            finally:
                builder.cancel()  # when an error stops the batch (done otherwise)
                await asyncio.gather(builder, return_exceptions=True)
                await built.aclose()
        return len(claimed)

    async def _build_all(self, session: AsyncSession, claimed: list[UUID]) -> AsyncGenerator[_Built]:
        """Each row this worker holds, built in the order claimed (nothing is sent or marked here)."""
        messages = await self._load(session, claimed)
        for index, message_id in enumerate(claimed):
            message = messages.get(message_id)
            if message is None:
                continue
            built = await self._build(session, message)
            yield built
            if built.status is OutboxStatus.FAILED:
                # A failed build rolled the session back, which expires what it had loaded.
                messages = await self._load(session, claimed[index + 1 :])

    async def _load(self, session: AsyncSession, ids: list[UUID]) -> dict[UUID, OutboxMessage]:
        """The rows this worker holds among `ids`, with what the composer needs to build them."""
        if not ids:
            return {}
        result = await session.execute(sa.select(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        rows = [row for row in result.scalars() if row.locked_by == self.name]
        await self._composer.preload(session, rows)
        await session.commit()  # no transaction stays open (SQLite's BEGIN IMMEDIATE takes the write lock)
        return {row.id: row for row in rows}

    async def drain(self, max_batches: int = 1000) -> int:
        """Run batches until nothing is due (for tests and the CLI)."""
        total = 0
        for _ in range(max_batches):
            processed = await self.run_once()
            if processed == 0:
                break
            total += processed
        return total

    async def _claim(self) -> tuple[list[UUID], float]:
        """Take due rows; returns their ids and when the lease runs out (event-loop clock)."""
        held_until = asyncio.get_running_loop().time() + self._policy.lease_seconds
        now = utcnow()
        due = sa.or_(
            sa.and_(OutboxMessage.status == OutboxStatus.QUEUED, OutboxMessage.next_attempt_at <= now),
            sa.and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.locked_until < now),
        )
        async with self._session_maker() as session, session.begin():
            rows = await session.execute(
                sa.select(OutboxMessage.id)
                .where(due)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            )
            ids = list(rows.scalars())
            if ids:
                await session.execute(
                    sa.update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids))
                    .values(
                        status=OutboxStatus.SENDING,
                        locked_by=self.name,
                        locked_until=now + timedelta(seconds=self._policy.lease_seconds),
                        attempts=OutboxMessage.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        return ids, held_until

    async def _renew(self, ids: list[UUID]) -> tuple[set[UUID], float]:
        """Extend the lease of those rows this worker still holds; returns them and the new end."""
        held_until = asyncio.get_running_loop().time() + self._policy.lease_seconds
        locked_until = utcnow() + timedelta(seconds=self._policy.lease_seconds)
        async with self._session_maker() as session, session.begin():
            rows = await session.execute(
                sa.update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(ids),
                    OutboxMessage.status == OutboxStatus.SENDING,
                    OutboxMessage.locked_by == self.name,
                )
                .values(locked_until=locked_until)
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
            return set(rows.scalars()), held_until

    async def _build(self, session: AsyncSession, message: OutboxMessage) -> _Built:
        """The message of one row, or how to settle the row when there is none to send."""
        message_id, attempts = message.id, message.attempts
        try:
            mail = await self._composer.render(session, message)
            if session.in_transaction():  # end whatever a context hook read: nothing is held meanwhile
                await session.commit()
        except SkipMessage as skip:
            # End what the composer read first: on SQLite that transaction holds the write lock the
            # marking connection needs.
            if session.in_transaction():
                await session.commit()
            return _Built(message_id, attempts, None, OutboxStatus.SKIPPED, str(skip), skip.forget_recipient)
        except Exception as exc:  # a message that cannot be built will never be: park it
            logger.exception("outbox %s: cannot build message %s", self.name, message_id)
            await session.rollback()
            return _Built(message_id, attempts, None, OutboxStatus.FAILED, f"build: {exc!r}")
        return _Built(message_id, attempts, mail)

    async def _deliver(self, marks: _Settler, transport: Transport, built: _Built, lease: _Lease) -> None:
        """Send one built message and settle its row (or settle a row that has nothing to send)."""
        # The lease covers the whole batch. A batch that takes longer than the lease (a slow SMTP
        # server) would let another worker take over rows this one is about to send, and both would
        # send them: so never start a send with less than half of the lease left. Renew the rest of
        # the batch instead, and drop any row another worker took meanwhile.
        if asyncio.get_running_loop().time() > lease.held_until - self._policy.lease_seconds / 2:
            lease.held, lease.held_until = await self._renew(lease.rest_from(built.message_id))
        if built.message_id not in lease.held:
            return
        if built.mail is None:
            assert built.status is not None
            await self._finish(
                marks, built.message_id, built.status, built.error, forget_recipient=built.forget_recipient
            )
            return
        try:
            await transport.send(built.mail)
        except DeliveryError as exc:
            await self._record_failure(marks, built.message_id, built.attempts, exc)
            return
        # Marked sent at once, in its own commit, before the next message is sent: a worker killed
        # later repeats none of the batch's delivered messages, only the one in flight.
        await self._finish(marks, built.message_id, OutboxStatus.SENT, None)

    async def _record_failure(
        self, marks: _Settler, message_id: UUID, attempts: int, exc: DeliveryError
    ) -> None:
        if exc.permanent or attempts >= self._policy.max_attempts:
            await self._finish(marks, message_id, OutboxStatus.FAILED, str(exc))
            return
        retry_at = utcnow() + self._policy.delay_after(attempts)
        await self._finish(marks, message_id, OutboxStatus.QUEUED, str(exc), retry_at=retry_at)

    async def _finish(
        self,
        marks: _Settler,
        message_id: UUID,
        status: OutboxStatus,
        error: str | None,
        *,
        retry_at: datetime | None = None,
        forget_recipient: bool = False,
    ) -> None:
        values: dict[str, Any] = {"status": status, "locked_until": None, "locked_by": None}
        if error is not None:
            values["last_error"] = error[:4000]
        if status is OutboxStatus.SENT:
            values["sent_at"] = values["updated_at"] = utcnow()
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        if forget_recipient:
            values["recipient"] = ""
        # Only the holder of the lease may settle the row: a worker whose lease ran out (and whose row
        # another worker took over) must not overwrite the newer outcome.
        await marks.settle(message_id, self.name, values)


async def _build_into(built: AsyncGenerator[_Built], ready: asyncio.Queue[_Built | Exception | None]) -> None:
    """Hand the built messages over in order; an error in building is handed over in turn too."""
    try:
        async for item in built:
            await ready.put(item)
    except Exception as exc:
        await ready.put(exc)
        return
    await ready.put(None)


#: The drivers whose connection runs one UPDATE on its own (see :class:`_Settler`).
_SINGLE_STATEMENT_DRIVERS = {("sqlite", "aiosqlite"), ("postgresql", "asyncpg")}


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    """A settling UPDATE compiled for one driver: its SQL, and each parameter's name and bind processor."""

    sql: str
    parameters: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    positional_list: bool  # aiosqlite takes the parameters as one sequence, asyncpg as arguments


class _Settler:
    """Where a batch's rows are marked (sent, skipped, failed, queued again): one UPDATE a row.

    Through SQLAlchemy a mark is BEGIN, UPDATE and COMMIT: three round trips to PostgreSQL, or seven hops
    to aiosqlite's thread (the cursor, the statement and the cursor's closing each take one), which
    cost the worker more than anything but building the message. On those two drivers the UPDATE,
    compiled by SQLAlchemy once per shape with its types' bind processors, runs instead as a single
    statement on the driver's own connection, held for the batch: one round trip, or one hop. A
    single statement outside a transaction commits by itself, so a row is still marked, durably, by
    the time this returns. Any other connection, or a session without an engine of its own, goes
    through SQLAlchemy.
    """

    def __init__(
        self,
        executor: AsyncConnection | AsyncSession,
        driver: Any,
        statements: dict[tuple[str, ...], _DriverStatement],
    ) -> None:
        self._executor = executor
        self._driver = driver
        self._dialect = executor.dialect if isinstance(executor, AsyncConnection) else None
        self._statements = statements
        self.uses_session = isinstance(executor, AsyncSession)

    async def settle(self, message_id: UUID, holder: str, values: dict[str, Any]) -> None:
        if self._driver is None:
            # A Core UPDATE of the table: nothing to synchronise with the session's objects.
            statement = _TABLE.update().where(_TABLE.c.id == message_id, _TABLE.c.locked_by == holder)
            await self._executor.execute(statement.values(**values))
            await self._executor.commit()
            return
        values = {"updated_at": utcnow(), **values}  # the column's onupdate, which SQLAlchemy would add
        compiled = self._compiled(tuple(sorted(values)))
        arguments = {f"v_{name}": value for name, value in values.items()}
        arguments.update(id=message_id, holder=holder)
        parameters = [
            arguments[name] if process is None else process(arguments[name])
            for name, process in compiled.parameters
        ]
        try:
            if compiled.positional_list:  # aiosqlite: a sequence of parameters
                await self._driver.execute(compiled.sql, parameters)
            else:
                await self._driver.execute(compiled.sql, *parameters)
        except Exception:
            # Past SQLAlchemy, which would otherwise not know: the pool must not hand this
            # connection out again when the failure was the connection's.
            assert isinstance(self._executor, AsyncConnection)
            await self._executor.invalidate()
            raise

    def _compiled(self, columns: tuple[str, ...]) -> _DriverStatement:
        dialect = self._dialect
        assert dialect is not None  # only a connection has a driver
        found = self._statements.get((dialect.name, *columns))
        if found is None:
            statement = (
                _TABLE.update()
                .where(_TABLE.c.id == sa.bindparam("id"), _TABLE.c.locked_by == sa.bindparam("holder"))
                .values({column: sa.bindparam(f"v_{column}") for column in columns})
            )
            compiled = statement.compile(dialect=dialect)
            assert compiled.positiontup is not None  # both drivers take positional parameters
            parameters = tuple(
                (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in compiled.positiontup
            )
            found = _DriverStatement(str(compiled), parameters, dialect.name == "sqlite")
            self._statements[(dialect.name, *columns)] = found
        return found


@asynccontextmanager
async def _settler(
    session: AsyncSession, statements: dict[tuple[str, ...], _DriverStatement]
) -> AsyncIterator[_Settler]:
    """A connection held for the batch (which spares each row the pool's checkout and reset), or the
    session itself when it has no engine of its own."""
    if not isinstance(session.bind, AsyncEngine):
        yield _Settler(session, None, statements)
        return
    async with session.bind.connect() as connection:
        driver: Any = None
        if (connection.dialect.name, connection.dialect.driver) in _SINGLE_STATEMENT_DRIVERS:
            driver = (await connection.get_raw_connection()).driver_connection
            if connection.dialect.name == "sqlite" and driver.isolation_level is not None:
                driver = None  # sqlite3 would open a transaction of its own around the UPDATE
        yield _Settler(connection, driver, statements)


@dataclass(slots=True)
class _Built:
    """One claimed row after building: its message to send, or the status to settle it with."""

    message_id: UUID
    attempts: int
    mail: RenderedMail | None
    status: OutboxStatus | None = None
    error: str | None = None
    forget_recipient: bool = False


class _Lease:
    """The rows of a batch this worker still holds, and until when (event-loop clock)."""

    def __init__(self, claimed: list[UUID], held_until: float) -> None:
        self._position = {message_id: index for index, message_id in enumerate(claimed)}
        self._claimed = claimed
        self.held = set(claimed)
        self.held_until = held_until

    def rest_from(self, message_id: UUID) -> list[UUID]:
        """The claimed rows from this one to the end of the batch."""
        return self._claimed[self._position[message_id] :]


def retry_policy_from(base_seconds: float, max_attempts: int, lease_seconds: float) -> RetryPolicy:
    return RetryPolicy(base_seconds=base_seconds, max_attempts=max_attempts, lease_seconds=lease_seconds)
