"""The retention job (run by the outbox workers) and what organisers see of it: personal data of
registrations is anonymised a configurable number of days after their event ends."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.db.models import (
    Event,
    Registration,
)
from events_app.domain.accounts.permissions import Principal
from events_app.domain.audit.services import record
from events_app.domain.privacy.services import (
    Person,
    Reason,
    anonymise_people,
    merge_search_index,
    scrub_delivered_erasures,
)
from events_app.lib.outbox import PeriodicJob
from events_app.settings import Settings

#: Registrations (of one event) anonymised per transaction by the retention job.
RETENTION_BATCH = 500
#: How long one run of the retention job may go on before the worker goes back to sending mail.
RETENTION_BUDGET_SECONDS = 2.0


def purge_date(event: Event, retention_days: int) -> datetime:
    """When the personal data of the event's registrations is anonymised."""
    return event.ends_at + timedelta(days=retention_days)


async def anonymise_expired(
    session: AsyncSession,
    retention_days: int,
    now: datetime | None = None,
    *,
    budget_seconds: float | None = None,
    batch_size: int = RETENTION_BATCH,
) -> int:
    """Anonymise the registrations whose event ended ``retention_days`` ago or more, a batch of one
    event at a time with a commit after each; returns how many were anonymised.

    With ``budget_seconds`` it stops after the batch that used it up (the worker's job goes back to
    sending mail, and the next run goes on). Idempotent (anonymised rows are skipped) and safe with
    several workers (rows are claimed with ``SKIP LOCKED`` on PostgreSQL; SQLite has one writer).
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    moment = now or datetime.now(UTC)
    total = await _anonymise_batches(
        session, moment - timedelta(days=retention_days), moment, budget_seconds, batch_size
    )
    if total:
        await merge_search_index(session)
        await session.commit()
    return total


async def _anonymise_batches(
    session: AsyncSession, cutoff: datetime, moment: datetime, budget_seconds: float | None, batch_size: int
) -> int:
    """The batches of :func:`anonymise_expired`, each committed; returns how many were anonymised."""
    started = time.monotonic()
    total = 0
    while True:
        # The event with the oldest expired data first, then a batch of its registrations.
        event_id = await session.scalar(
            sa.select(Registration.event_id)
            .join(Event, Event.id == Registration.event_id)
            .where(Registration.anonymised_at.is_(None), Event.ends_at <= cutoff)
            .order_by(Event.ends_at, Event.id)
            .limit(1)
        )
        if event_id is None:
            await session.commit()
            return total
        rows = await session.execute(
            sa.select(
                Registration.id,
                Registration.event_id,
                Registration.email,
                Registration.email_normalized,
                Registration.full_name,
            )
            .where(Registration.event_id == event_id, Registration.anonymised_at.is_(None))
            .order_by(Registration.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        people = [Person(*row) for row in rows]
        count = await anonymise_people(session, event_id, people, moment) if people else 0
        if count:
            record(
                session,
                None,
                "registrations_anonymised",
                "event",
                event_id,
                event_id,
                reason=Reason.RETENTION,
                count=count,
            )
        await session.commit()
        total += count
        if not people:  # another worker holds the rest: it goes on
            return total
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            return total


def retention_job(settings: Settings) -> PeriodicJob:
    """The periodic job the outbox workers run (see ``make_worker``). It writes no outbox rows.

    Each run does at most ``RETENTION_BUDGET_SECONDS`` of batches, committed one by one, so mail keeps
    flowing while a large event is anonymised over several runs.
    """

    async def job(session: AsyncSession) -> int:
        await scrub_delivered_erasures(session)
        await anonymise_expired(session, settings.retention_days, budget_seconds=RETENTION_BUDGET_SECONDS)
        return 0

    return job


# --- what organisers see ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PurgeLine:
    event: Event
    registrations: int
    purge_at: datetime


async def upcoming_purges(
    session: AsyncSession, principal: Principal, retention_days: int, event_id: UUID | None = None
) -> list[PurgeLine]:
    """Per event the principal sees: how many registrations (of their scope) still hold personal data,
    and when the retention job anonymises them; soonest first."""
    statement = (
        sa.select(Registration.event_id, sa.func.count(Registration.id))
        .where(Registration.anonymised_at.is_(None), principal.registrations_filter())
        .group_by(Registration.event_id)
    )
    if event_id is not None:
        statement = statement.where(Registration.event_id == event_id)
    counts = {UUID(str(eid)): int(count) for eid, count in await session.execute(statement)}
    if not counts:
        return []
    events = (
        (await session.execute(sa.select(Event).where(Event.id.in_(counts), principal.events_filter())))
        .scalars()
        .all()
    )
    lines = [PurgeLine(event, counts[event.id], purge_date(event, retention_days)) for event in events]
    return sorted(lines, key=lambda line: (line.purge_at, str(line.event.id)))
