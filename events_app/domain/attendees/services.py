"""Reading an event's registrations within a principal's scope, and the organisers' decisions on them.

Lists use keyset pagination on (sort column, id): every page costs the same, however deep, and an
export walks the whole list in chunks, each read in its own short transaction (SQLite takes its one
write lock at BEGIN, so a long export must not hold a transaction open).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from events_app.db.models import (
    Event,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationChange,
    RegistrationStatus,
    Sector,
)
from events_app.db.models.registration import registrations_search
from events_app.domain.accounts.permissions import Principal
from events_app.domain.attendees.schemas import AttendeeQuery, Cursor
from events_app.domain.audit.services import record
from events_app.domain.registrations.services import DecisionError, RegistrationService

EXPORT_CHUNK_ROWS = 1000

_SORT_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "created_at": Registration.created_at,
    "full_name": Registration.full_name,
    "country": Registration.country,
    "status": Registration.status,
}

_ROW_COLUMNS = (
    Registration.id,
    Registration.full_name,
    Registration.email,
    Registration.country,
    Registration.institution,
    Registration.position,
    Registration.sector,
    Registration.language,
    Registration.status,
    Registration.created_at,
)


@dataclass(frozen=True, slots=True)
class AttendeeRow:
    """One line of an attendee list (only the columns lists and exports show)."""

    id: UUID
    event_id: UUID
    full_name: str
    email: str
    country: str
    institution: str
    position: str
    sector: Sector
    language: str
    status: RegistrationStatus
    created_at: datetime

    @classmethod
    def of(cls, row: sa.Row[Any], event_id: UUID) -> AttendeeRow:
        ident, *values = row
        return cls(ident, event_id, *values)

    def sort_value(self, sort: str) -> str:
        value = getattr(self, sort)
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value.value if isinstance(value, StrEnum) else value)

    def cursor(self, sort: str, backwards: bool = False) -> str:
        return Cursor(sort=sort, value=self.sort_value(sort), id=self.id, backwards=backwards).encode()


@dataclass(frozen=True, slots=True)
class AttendeePage:
    rows: list[AttendeeRow]
    total: int
    next_cursor: str | None
    previous_cursor: str | None


@dataclass(frozen=True, slots=True)
class EventCounts:
    seats_left: int | None
    capacity: int | None
    seats_taken: int
    waitlisted: int
    pending: int


# --- scope ----------------------------------------------------------------------------------------


async def visible_event(session: AsyncSession, principal: Principal, event_id: UUID) -> Event | None:
    """The event when the principal may open its organiser pages, else None (answer 404)."""
    if not principal.sees_event(event_id):
        return None
    return await session.get(Event, event_id, populate_existing=True)


async def visible_registration(
    session: AsyncSession, principal: Principal, registration_id: UUID
) -> Registration | None:
    registration = await session.get(Registration, registration_id, populate_existing=True)
    if registration is None or not principal.sees_registration(registration):
        return None
    return registration


_SEARCHED = (Registration.full_name, Registration.email, Registration.institution)
#: The trigram indexes find substrings of at least three characters; shorter ones read the rows.
_TRIGRAM = 3


def _search(dialect: str, text: str) -> ColumnElement[bool]:
    """Registrations whose name, email or institution contains ``text``, case ignored.

    Through each database's trigram index when ``text`` is long enough (pg_trgm's GIN under ILIKE;
    SQLite's FTS5 trigram table, whose phrase match is a substring match), so a search that matches
    few registrations reads only those. Shorter texts match many rows anyway: those read the event's
    rows (a trigram index cannot narrow them, and scanning all of it costs more than the rows).
    """
    if len(text) < _TRIGRAM:
        return sa.or_(*(column.icontains(text, autoescape=True) for column in _SEARCHED))
    if dialect == "sqlite":
        phrase = '"{}"'.format(text.replace('"', '""'))
        matches = sa.select(registrations_search.c.rowid).where(
            sa.text("registrations_search MATCH :phrase").bindparams(phrase=phrase)
        )
        return sa.literal_column("registrations.rowid").in_(matches.scalar_subquery())
    pattern = "%{}%".format(text.replace("/", "//").replace("%", "/%").replace("_", "/_"))
    return sa.or_(*(column.ilike(pattern, escape="/") for column in _SEARCHED))


def _conditions(
    dialect: str, principal: Principal, event_id: UUID, query: AttendeeQuery
) -> list[ColumnElement[bool]]:
    conditions = [Registration.event_id == event_id, principal.registrations_filter()]
    if query.q:
        conditions.append(_search(dialect, query.q))
    if query.statuses:
        conditions.append(Registration.status.in_(query.statuses))
    if query.countries:
        conditions.append(Registration.country.in_(query.countries))
    if query.sectors:
        conditions.append(Registration.sector.in_(query.sectors))
    if query.languages:
        conditions.append(Registration.language.in_(query.languages))
    return conditions


# --- lists ----------------------------------------------------------------------------------------


async def _read(
    session: AsyncSession, principal: Principal, event_id: UUID, query: AttendeeQuery
) -> tuple[list[AttendeeRow], bool]:
    """Up to ``query.limit`` rows from the cursor on, in reading order, and whether more follow."""
    column = _SORT_COLUMNS[query.sort]
    backwards = query.cursor is not None and query.cursor.backwards
    ascending = query.descending == backwards
    connection = await session.connection()
    statement = sa.select(*_ROW_COLUMNS).where(
        *_conditions(connection.dialect.name, principal, event_id, query)
    )
    if query.cursor is not None:
        key = sa.tuple_(column, Registration.id)
        bound = sa.tuple_(
            sa.literal(query.cursor.sort_value(), column.type),
            sa.literal(query.cursor.id, Registration.id.type),
        )
        statement = statement.where(key > bound if ascending else key < bound)
    order = (column.asc(), Registration.id.asc()) if ascending else (column.desc(), Registration.id.desc())
    # Core execution (no ORM loading step): exports read every row through here.
    result = await connection.execute(statement.order_by(*order).limit(query.limit + 1))
    rows = [AttendeeRow.of(row, event_id) for row in result]
    return rows[: query.limit], len(rows) > query.limit


async def count_matching(
    session: AsyncSession, principal: Principal, event_id: UUID, query: AttendeeQuery
) -> int:
    connection = await session.connection()
    conditions = _conditions(connection.dialect.name, principal, event_id, query)
    statement = sa.select(sa.func.count()).select_from(Registration).where(*conditions)
    return int((await connection.execute(statement)).scalar_one())


async def list_page(
    session: AsyncSession, principal: Principal, event_id: UUID, query: AttendeeQuery
) -> AttendeePage:
    """One page of the filtered list with links to its neighbours, and the number of matches."""
    total = await count_matching(session, principal, event_id, query)
    rows, more = await _read(session, principal, event_id, query)
    cursor = query.cursor
    if cursor is not None and cursor.backwards:
        if not more:  # back at the start: show the first page as it is now
            return await list_page(session, principal, event_id, replace(query, cursor=None))
        rows.reverse()
        return AttendeePage(
            rows, total, rows[-1].cursor(query.sort), rows[0].cursor(query.sort, backwards=True)
        )
    following = rows[-1].cursor(query.sort) if more and rows else None
    preceding = rows[0].cursor(query.sort, backwards=True) if cursor is not None and rows else None
    return AttendeePage(rows, total, following, preceding)


async def iter_chunks(
    engine: AsyncEngine,
    principal: Principal,
    event_id: UUID,
    query: AttendeeQuery,
    size: int = EXPORT_CHUNK_ROWS,
) -> AsyncIterator[list[AttendeeRow]]:
    """The whole filtered list, ``size`` rows per query, each query in its own short transaction."""
    chunk_query = replace(query, cursor=None, limit=size)
    while True:
        async with AsyncSession(engine) as session:
            rows, more = await _read(session, principal, event_id, chunk_query)
        if rows:
            yield rows
        if not more or not rows:
            return
        last = rows[-1]
        chunk_query = replace(chunk_query, cursor=Cursor(query.sort, last.sort_value(query.sort), last.id))


async def event_counts(session: AsyncSession, event: Event) -> EventCounts:
    statement = (
        sa.select(Registration.status, sa.func.count())
        .where(
            Registration.event_id == event.id,
            Registration.status.in_((RegistrationStatus.WAITLISTED, RegistrationStatus.PENDING_APPROVAL)),
        )
        .group_by(Registration.status)
    )
    counts: dict[RegistrationStatus, int] = {status: int(n) for status, n in await session.execute(statement)}
    return EventCounts(
        seats_left=event.seats_left,
        capacity=event.capacity,
        seats_taken=event.seats_taken,
        waitlisted=counts.get(RegistrationStatus.WAITLISTED, 0),
        pending=counts.get(RegistrationStatus.PENDING_APPROVAL, 0),
    )


async def countries_in_scope(session: AsyncSession, principal: Principal, event_id: UUID) -> list[str]:
    """The countries of the registrants the principal sees (the choices of the country filter).

    One index probe per country (the smallest code, then the next one after it, ...) instead of reading
    every registration of the event: the cost follows the number of countries, not of registrants.
    """
    scope = (Registration.event_id == event_id, principal.registrations_filter())
    smallest = sa.select(sa.func.min(Registration.country).label("code")).where(*scope)
    found = smallest.cte("countries", recursive=True)
    following = (
        sa.select(sa.func.min(Registration.country)).where(*scope, Registration.country > found.c.code)
    ).scalar_subquery()
    found = found.union_all(sa.select(following).where(found.c.code.is_not(None)))
    statement = sa.select(found.c.code).where(found.c.code.is_not(None))
    codes = (await session.execute(statement)).scalars()
    return sorted(str(code) for code in codes)


def record_export(
    session: AsyncSession, principal: Principal, event: Event, query: AttendeeQuery, fmt: str, rows: int
) -> None:
    """Audit a personal-data export before it streams (``rows``: matches when it started)."""
    record(
        session,
        principal,
        "attendees_exported",
        "event",
        event.id,
        event_id=event.id,
        format=fmt,
        filters=query.filters(),
        rows=rows,
    )


# --- one registrant -------------------------------------------------------------------------------


async def status_history(session: AsyncSession, registration_id: UUID) -> Sequence[RegistrationChange]:
    statement = (
        sa.select(RegistrationChange)
        .where(RegistrationChange.registration_id == registration_id)
        .order_by(RegistrationChange.created_at, RegistrationChange.id)
    )
    return (await session.execute(statement)).scalars().all()


async def mail_sent_to(session: AsyncSession, registration_id: UUID) -> Sequence[OutboxMessage]:
    statement = (
        sa.select(OutboxMessage)
        .where(OutboxMessage.registration_id == registration_id)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    return (await session.execute(statement)).scalars().all()


# --- decisions ------------------------------------------------------------------------------------


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    PROMOTE = "promote"

    def applies_to(self, status: RegistrationStatus) -> bool:
        if self is Decision.APPROVE:
            return status is RegistrationStatus.PENDING_APPROVAL
        if self is Decision.PROMOTE:
            return status is RegistrationStatus.WAITLISTED
        return status in (
            RegistrationStatus.PENDING_APPROVAL,
            RegistrationStatus.WAITLISTED,
            RegistrationStatus.CONFIRMED,
        )


#: Decisions offered on a page of the list (promoting is done one by one: it may add a seat).
BULK_DECISIONS = (Decision.APPROVE, Decision.REJECT)

_DECISION_ACTIONS = {
    Decision.APPROVE: "registration_approved",
    Decision.REJECT: "registration_rejected",
    Decision.PROMOTE: "registration_promoted",
}


@dataclass(frozen=True, slots=True)
class BulkResult:
    done: int
    skipped: int


async def decide(
    service: RegistrationService,
    principal: Principal,
    registration: Registration,
    decision: Decision,
    **details: Any,
) -> RegistrationStatus:
    """Apply one decision with its audit entry in the same transaction; raises DecisionError."""
    record(
        service.session,
        principal,
        _DECISION_ACTIONS[decision],
        "registration",
        registration.id,
        event_id=registration.event_id,
        from_status=registration.status.value,
        **details,
    )
    try:
        if decision is Decision.APPROVE:
            await service.approve(registration, actor=principal.label)
        elif decision is Decision.REJECT:
            await service.reject(registration, actor=principal.label)
        else:
            await service.promote(registration, actor=principal.label)
    except DecisionError:
        await service.session.rollback()  # drops the audit entry with the decision
        raise
    return registration.status


async def decide_many(
    service: RegistrationService,
    principal: Principal,
    event_id: UUID,
    registration_ids: Iterable[UUID],
    decision: Decision,
) -> BulkResult:
    """Apply a decision to each registration of the event it applies to; others are skipped."""
    done = skipped = 0
    for registration_id in dict.fromkeys(registration_ids):
        registration = await visible_registration(service.session, principal, registration_id)
        if (
            registration is None
            or registration.event_id != event_id
            or not principal.can_decide(registration)
            or not decision.applies_to(registration.status)
        ):
            skipped += 1
            continue
        try:
            await decide(service, principal, registration, decision, bulk=True)
        except DecisionError:
            skipped += 1
        else:
            done += 1
    return BulkResult(done=done, skipped=skipped)


# --- mail -----------------------------------------------------------------------------------------


async def visible_mail(
    session: AsyncSession, principal: Principal, message_id: UUID
) -> tuple[OutboxMessage, Registration] | None:
    """An email about a registration the principal may act on, with that registration."""
    message = await session.get(OutboxMessage, message_id, populate_existing=True)
    if message is None or message.registration_id is None:
        return None
    registration = await visible_registration(session, principal, message.registration_id)
    if registration is None or not principal.can_decide(registration):
        return None
    return message, registration


async def resend(
    session: AsyncSession, principal: Principal, message: OutboxMessage, registration: Registration
) -> bool:
    """Queue a failed email again, keeping its Message-ID; False when it had not failed. Commits."""
    result = await session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.status == OutboxStatus.FAILED)
        .values(
            status=OutboxStatus.QUEUED,
            attempts=0,
            next_attempt_at=datetime.now(UTC),
            locked_until=None,
            locked_by=None,
        )
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar_one_or_none() is None:
        await session.rollback()
        return False
    record(
        session,
        principal,
        "mail_resent",
        "outbox_message",
        message.id,
        event_id=registration.event_id,
        registration_id=str(registration.id),
        kind=message.kind,
        message_id=message.message_id,
    )
    await session.commit()
    return True
