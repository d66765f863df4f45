"""The dashboard's figures, each one SQL aggregation (GROUP BY) over the registrations a principal sees.

No registration is loaded into Python: only counts per day, country, sector, status and event come back.
A rate (check-in, online attendance) is a :class:`RateSource`; the features that record attendance add
theirs to :data:`RATE_SOURCES` and the page shows it without further changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement, SQLCoreOperations

from events_app.db.models import (
    ACTIVE_REGISTRATION_STATUSES,
    CheckIn,
    Event,
    EventKind,
    OnlineAttendance,
    Registration,
    RegistrationStatus,
    Role,
)
from events_app.domain.accounts.permissions import Principal
from events_app.domain.registrations.schemas import SECTOR_LABELS
from events_app.domain.registrations.views import status_label
from events_app.lib.countries import country_name
from events_app.lib.i18n import N_, current_language, gettext

#: Countries shown one by one; the rest are summed as "Other countries".
TOP_COUNTRIES = 18
#: Events listed on the programme dashboard, most registrations first.
TOP_EVENTS = 50
OTHER_COUNTRIES_KEY = "other"
STATUS_ORDER = (
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.PENDING_APPROVAL,
    RegistrationStatus.WAITLISTED,
    RegistrationStatus.CANCELLED,
    RegistrationStatus.REJECTED,
)


@dataclass(frozen=True, slots=True)
class Scope:
    """The registrations the figures count: a principal's own restriction, and maybe one event."""

    condition: ColumnElement[bool]
    event_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Count:
    key: str
    label: str
    value: int


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    value: int


@dataclass(frozen=True, slots=True)
class EventCount:
    event_id: UUID
    title: str
    value: int


@dataclass(frozen=True, slots=True)
class Rate:
    """``part`` of ``whole`` (e.g. checked in of confirmed); both None while nothing measures it yet."""

    key: str
    label: str
    part: int | None = None
    whole: int | None = None

    @property
    def available(self) -> bool:
        return self.part is not None and self.whole is not None

    @property
    def ratio(self) -> float | None:
        if self.part is None or not self.whole:
            return None
        return self.part / self.whole


class RateSource(Protocol):
    """Measures one rate over a scope with SQL; None when the feature behind it does not exist yet."""

    @property
    def key(self) -> str: ...

    @property
    def label(self) -> str: ...

    async def measure(self, session: AsyncSession, scope: Scope) -> tuple[int, int] | None: ...


def _confirmed_at(scope: Scope, *kinds: EventKind) -> sa.Select[tuple[UUID]]:
    """Confirmed registrations in scope, at events of the given kinds."""
    return (
        sa.select(Registration.id)
        .join(Event, Event.id == Registration.event_id)
        .where(scope.condition, Registration.status == RegistrationStatus.CONFIRMED, Event.kind.in_(kinds))
    )


@dataclass(frozen=True, slots=True)
class CheckinRate:
    """Confirmed registrants of in-person and hybrid events let in at the door."""

    key: str = "checkin"
    label: str = N_("Check-in rate")

    async def measure(self, session: AsyncSession, scope: Scope) -> tuple[int, int] | None:
        expected = _confirmed_at(scope, EventKind.IN_PERSON, EventKind.HYBRID).subquery()
        whole = await session.scalar(sa.select(sa.func.count()).select_from(expected))
        part = await session.scalar(
            sa.select(sa.func.count(sa.distinct(CheckIn.registration_id))).where(
                CheckIn.registration_id.in_(sa.select(expected.c.id)), CheckIn.undone_at.is_(None)
            )
        )
        return int(part or 0), int(whole or 0)


@dataclass(frozen=True, slots=True)
class OnlineAttendanceRate:
    """Confirmed registrants of online and hybrid events who attended above their event's threshold."""

    key: str = "online_attendance"
    label: str = N_("Online attendance rate")

    async def measure(self, session: AsyncSession, scope: Scope) -> tuple[int, int] | None:
        expected = _confirmed_at(scope, EventKind.ONLINE, EventKind.HYBRID).subquery()
        whole = await session.scalar(sa.select(sa.func.count()).select_from(expected))
        rows = await session.execute(
            sa.select(
                OnlineAttendance.minutes, Event.starts_at, Event.ends_at, Event.attendance_threshold_percent
            )
            .join(Event, Event.id == OnlineAttendance.event_id)
            .where(OnlineAttendance.registration_id.in_(sa.select(expected.c.id)))
        )
        part = sum(
            1
            for minutes, starts_at, ends_at, percent in rows.tuples()
            if minutes >= (ends_at - starts_at).total_seconds() / 60 * percent / 100
        )
        return part, int(whole or 0)


RATE_SOURCES: tuple[RateSource, ...] = (CheckinRate(), OnlineAttendanceRate())


@dataclass(frozen=True, slots=True)
class Dashboard:
    total: int
    active: int
    per_day: list[DayCount]
    by_country: list[Count]
    by_sector: list[Count]
    by_status: list[Count]
    rates: list[Rate]
    by_event: list[EventCount]


def may_see_dashboards(principal: Principal) -> bool:
    return principal.role is not Role.CHECKIN_STAFF


def programme_scope(principal: Principal) -> Scope:
    visible_events = sa.select(Event.id).where(principal.events_filter())
    return Scope(sa.and_(principal.registrations_filter(), Registration.event_id.in_(visible_events)))


def event_scope(principal: Principal, event_id: UUID) -> Scope:
    return Scope(sa.and_(principal.registrations_filter(), Registration.event_id == event_id), event_id)


def _active() -> ColumnElement[bool]:
    return Registration.status.in_(ACTIVE_REGISTRATION_STATUSES)


def _utc_day(dialect: str) -> ColumnElement[str]:
    """The registration's UTC day as ``YYYY-MM-DD`` text (timestamps are stored in UTC)."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", Registration.created_at), "YYYY-MM-DD")
    return sa.func.substr(sa.cast(Registration.created_at, sa.String), 1, 10)


def fill_days(counts: dict[date, int]) -> list[DayCount]:
    """Every day from the first to the last registration, with zeros where nobody registered."""
    if not counts:
        return []
    first, last = min(counts), max(counts)
    return [
        DayCount(first + timedelta(days=offset), counts.get(first + timedelta(days=offset), 0))
        for offset in range((last - first).days + 1)
    ]


def fold_countries(rows: Sequence[tuple[str, int]], language: str) -> list[Count]:
    """The top countries by registrations (ties by code), then one "Other countries" row."""
    ordered = sorted(rows, key=lambda row: (-row[1], row[0]))
    counts = [Count(code, country_name(code, language), value) for code, value in ordered[:TOP_COUNTRIES]]
    rest = sum(value for _, value in ordered[TOP_COUNTRIES:])
    if rest:
        counts.append(Count(OTHER_COUNTRIES_KEY, gettext("Other countries"), rest))
    return counts


class DashboardService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_programme(self, principal: Principal) -> Dashboard | None:
        """Every event the principal sees (focal points: their countries' registrants only)."""
        if not may_see_dashboards(principal):
            return None
        return await self.compile(programme_scope(principal), with_events=True)

    async def for_event(self, principal: Principal, event_id: UUID) -> tuple[Event, Dashboard] | None:
        """One event's figures, or None when it does not exist or is outside the principal's scope."""
        if not may_see_dashboards(principal) or not principal.sees_event(event_id):
            return None
        event = await self.session.get(Event, event_id)
        if event is None:
            return None
        return event, await self.compile(event_scope(principal, event.id))

    async def compile(self, scope: Scope, with_events: bool = False) -> Dashboard:
        by_status = await self.by_status(scope)
        active = sum(count.value for count in by_status if count.key in ACTIVE_REGISTRATION_STATUSES)
        return Dashboard(
            total=sum(count.value for count in by_status),
            active=active,
            per_day=await self.per_day(scope),
            by_country=await self.by_country(scope),
            by_sector=await self.by_sector(scope),
            by_status=by_status,
            rates=await self.rates(scope),
            by_event=await self.by_event(scope) if with_events else [],
        )

    async def _grouped(
        self, column: SQLCoreOperations[Any], *conditions: ColumnElement[bool]
    ) -> list[tuple[str, int]]:
        statement = sa.select(column, sa.func.count(Registration.id)).where(*conditions).group_by(column)
        return [(str(key), int(value)) for key, value in (await self.session.execute(statement)).tuples()]

    async def per_day(self, scope: Scope) -> list[DayCount]:
        day = _utc_day(self.session.get_bind().dialect.name)
        rows = await self._grouped(day, scope.condition)
        return fill_days({date.fromisoformat(key): value for key, value in rows})

    async def by_status(self, scope: Scope) -> list[Count]:
        counts = dict(await self._grouped(Registration.status, scope.condition))
        return [
            Count(status.value, status_label(status), counts.get(status.value, 0)) for status in STATUS_ORDER
        ]

    async def by_sector(self, scope: Scope) -> list[Count]:
        counts = dict(await self._grouped(Registration.sector, scope.condition, _active()))
        return [
            Count(sector.value, gettext(label), counts.get(sector.value, 0))
            for sector, label in SECTOR_LABELS.items()
        ]

    async def by_country(self, scope: Scope) -> list[Count]:
        rows = await self._grouped(Registration.country, scope.condition, _active())
        return fold_countries(rows, current_language())

    async def by_event(self, scope: Scope) -> list[EventCount]:
        count = sa.func.count(Registration.id)
        statement = (
            sa.select(Registration.event_id, count)
            .where(scope.condition, _active())
            .group_by(Registration.event_id)
            .order_by(count.desc(), Registration.event_id)
            .limit(TOP_EVENTS)
        )
        rows = (await self.session.execute(statement)).tuples().all()
        events = await self._events([event_id for event_id, _ in rows])
        language = current_language()
        return [
            EventCount(event_id, events[event_id].text("title", language), int(value))
            for event_id, value in rows
            if event_id in events
        ]

    async def _events(self, event_ids: list[UUID]) -> dict[UUID, Event]:
        if not event_ids:
            return {}
        found = await self.session.execute(sa.select(Event).where(Event.id.in_(event_ids)))
        return {event.id: event for event in found.scalars()}

    async def rates(self, scope: Scope) -> list[Rate]:
        rates = []
        for source in RATE_SOURCES:
            measured = await source.measure(self.session, scope)
            part, whole = measured if measured is not None else (None, None)
            rates.append(Rate(source.key, gettext(source.label), part, whole))
        return rates
