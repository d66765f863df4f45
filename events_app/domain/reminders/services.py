"""Reminders before an event starts ("starts in 1 day", "starts in 1 hour"), each sent exactly once.

Every outbox worker runs :func:`enqueue_due_reminders` on a schedule, so it must be idempotent and safe
with several workers at once. Each reminder row carries ``dedupe_key = reminder:<registration>:<offset>``
(a unique column) and is written with ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING``: a second worker,
or the same one after a restart, adds nothing. PostgreSQL makes the second inserter wait for the first's
commit and then skip; SQLite runs the whole job under its single writer lock (``BEGIN IMMEDIATE``).

Which reminder is due, for a published event that has not started: the one of the *smallest* offset whose
time (``starts_at - offset``) has come. Larger offsets whose time has also passed are stale ("starts in 1
day" half an hour before the start would be wrong) and are never sent. A registration gets a reminder when
it is confirmed and was created at or before that reminder's time: who registers later already has the
details in their confirmation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from events_app.db.models import (
    Event,
    EventStatus,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
)
from events_app.domain.registrations.notifications import message_id_domain
from events_app.domain.registrations.services import MailKind
from events_app.lib.outbox import PeriodicJob, make_message_id, utcnow
from events_app.settings import Settings

#: Rows per INSERT statement when many recipients are queued at once.
INSERT_CHUNK = 1000
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_HOUR = 60


@dataclass(frozen=True, slots=True)
class OutboxRecipient:
    """The columns of a registration that an outbox row needs (read in bulk, never as ORM objects)."""

    registration_id: UUID
    email: str
    language: str
    invite_sequence: int


RECIPIENT_COLUMNS = (Registration.id, Registration.email, Registration.language, Registration.invite_sequence)


def recipients_from(rows: Sequence[sa.Row[Any]]) -> list[OutboxRecipient]:
    return [OutboxRecipient(row[0], row[1], row[2], int(row[3])) for row in rows]


def outbox_row(
    kind: MailKind,
    recipient: OutboxRecipient,
    *,
    domain: str,
    now: datetime,
    dedupe_key: str,
    mass_message_id: UUID | None = None,
    **payload: object,
) -> dict[str, Any]:
    """One outbox row as :func:`events_app.lib.outbox.enqueue` would write it, as INSERT parameters."""
    return {
        "id": uuid7(),
        "kind": kind.value,
        "recipient": recipient.email,
        "language": recipient.language,
        "registration_id": recipient.registration_id,
        "mass_message_id": mass_message_id,
        "payload": {"sequence": recipient.invite_sequence, **payload},
        "message_id": make_message_id(domain),
        "dedupe_key": dedupe_key,
        "status": OutboxStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _insert_for(session: AsyncSession) -> Callable[..., Any]:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def insert_outbox_rows(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows in chunks, skipping any whose ``dedupe_key`` exists already; returns rows written."""
    table = OutboxMessage.__table__
    statement = (
        _insert_for(session)(table)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(sa.literal_column("1"))
    )
    written = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        result = await session.execute(statement, list(rows[start : start + INSERT_CHUNK]))
        written += len(result.all())
    return written


# --- which reminder is due ------------------------------------------------------------------------------


def valid_offsets(value: object) -> list[int]:
    """The event's offsets as positive whole minutes (the JSON column could hold anything)."""
    if not isinstance(value, list):
        return []
    offsets = {item for item in value if isinstance(item, int) and not isinstance(item, bool) and item > 0}
    return sorted(offsets)


def due_offset(starts_at: datetime, offsets: list[int], now: datetime) -> int | None:
    """The offset whose reminder is due now (the most recent one that has come), if any."""
    if now >= starts_at:
        return None
    come = [offset for offset in offsets if starts_at - timedelta(minutes=offset) <= now]
    return min(come) if come else None


def reminder_key(registration_id: UUID, offset: int) -> str:
    return f"reminder:{registration_id}:{offset}"


async def _upcoming_events(session: AsyncSession, now: datetime) -> Sequence[sa.Row[Any]]:
    result = await session.execute(
        sa.select(Event.id, Event.starts_at, Event.reminder_offsets_minutes)
        .where(Event.status == EventStatus.PUBLISHED, Event.starts_at > now)
        .order_by(Event.id)
    )
    return result.all()


async def _unreminded(
    session: AsyncSession, event_id: UUID, offset: int, reminder_at: datetime
) -> list[OutboxRecipient]:
    """Confirmed registrations from before the reminder's time that do not have this reminder yet."""
    already = sa.exists().where(
        OutboxMessage.registration_id == Registration.id,
        OutboxMessage.kind == MailKind.REMINDER.value,
        OutboxMessage.dedupe_key.like(f"reminder:%:{offset}"),
    )
    result = await session.execute(
        sa.select(*RECIPIENT_COLUMNS)
        .where(
            Registration.event_id == event_id,
            Registration.status == RegistrationStatus.CONFIRMED,
            Registration.anonymised_at.is_(None),
            Registration.created_at <= reminder_at,
            ~already,
        )
        .order_by(Registration.id)
    )
    return recipients_from(result.all())


async def enqueue_due_reminders(
    session: AsyncSession, now: datetime | None = None, *, domain: str = "events-app.invalid"
) -> int:
    """Queue every reminder that is due and not queued yet; returns how many rows were written.

    In the caller's transaction (the worker commits). ``now`` decides what is due (rows are always
    written as due at once); ``domain`` is the right-hand side of their Message-IDs.
    """
    written_at = utcnow()
    moment = now or written_at
    written = 0
    for event_id, starts_at, offsets in await _upcoming_events(session, moment):
        offset = due_offset(starts_at, valid_offsets(offsets), moment)
        if offset is None:
            continue
        recipients = await _unreminded(session, event_id, offset, starts_at - timedelta(minutes=offset))
        rows = [
            outbox_row(
                MailKind.REMINDER,
                recipient,
                domain=domain,
                now=written_at,
                dedupe_key=reminder_key(recipient.registration_id, offset),
                offset_minutes=offset,
            )
            for recipient in recipients
        ]
        written += await insert_outbox_rows(session, rows)
    return written


def reminder_job(settings: Settings) -> PeriodicJob:
    """The periodic job the outbox workers run (see ``make_worker``)."""
    domain = message_id_domain(settings)

    async def job(session: AsyncSession) -> int:
        return await enqueue_due_reminders(session, domain=domain)

    return job


# --- the email ------------------------------------------------------------------------------------------


def starts_in(offset_minutes: int) -> tuple[str, int]:
    """("days", 1) for 1440 minutes, ("hours", 2) for 120, ("minutes", 45) for 45."""
    if offset_minutes % MINUTES_PER_DAY == 0:
        return "days", offset_minutes // MINUTES_PER_DAY
    if offset_minutes % MINUTES_PER_HOUR == 0:
        return "hours", offset_minutes // MINUTES_PER_HOUR
    return "minutes", offset_minutes


async def reminder_context(
    session: AsyncSession, message: OutboxMessage, registration: Registration
) -> dict[str, Any]:
    """Composer hook for ``MailKind.REMINDER``: how long before the start, in the unit people say."""
    unit, count = starts_in(int(message.payload.get("offset_minutes", 0)))
    return {"reminder_unit": unit, "reminder_count": count}
