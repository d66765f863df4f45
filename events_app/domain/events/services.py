"""Reading events for the public side, and the rules of when one takes registrations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from events_app.db.models import Event, EventStatus


class RegistrationState(StrEnum):
    OPEN = "open"
    NOT_YET_OPEN = "not_yet_open"
    CLOSED = "closed"
    FULL = "full"
    CANCELLED = "cancelled"
    NOT_PUBLISHED = "not_published"


class EventRepository(SQLAlchemyAsyncRepository[Event]):
    model_type = Event


class EventService(SQLAlchemyAsyncRepositoryService[Event, EventRepository]):
    repository_type = EventRepository

    async def list_upcoming(self, now: datetime | None = None) -> Sequence[Event]:
        moment = now or datetime.now(UTC)
        return await self.get_many(
            Event.status.in_((EventStatus.PUBLISHED, EventStatus.CANCELLED)),
            Event.ends_at >= moment,
            order_by=[Event.starts_at.asc()],
        )

    async def list_past(self, now: datetime | None = None, limit: int = 50) -> Sequence[Event]:
        moment = now or datetime.now(UTC)
        statement = (
            sa.select(Event)
            .where(Event.status == EventStatus.PUBLISHED, Event.ends_at < moment)
            .order_by(Event.starts_at.desc())
            .limit(limit)
        )
        return await self.get_many(statement=statement)

    async def list_for_feed(self, limit: int = 500) -> Sequence[Event]:
        statement = (
            sa.select(Event)
            .where(Event.status.in_((EventStatus.PUBLISHED, EventStatus.CANCELLED)))
            .order_by(Event.starts_at.desc())
            .limit(limit)
        )
        return await self.get_many(statement=statement)

    async def get_public(self, slug: str) -> Event | None:
        """A published or cancelled event (drafts do not exist for the public)."""
        return await self.get_one_or_none(
            Event.slug == slug, Event.status.in_((EventStatus.PUBLISHED, EventStatus.CANCELLED))
        )


def registration_state(event: Event, now: datetime | None = None) -> RegistrationState:
    moment = now or datetime.now(UTC)
    if event.status is EventStatus.CANCELLED:
        return RegistrationState.CANCELLED
    if event.status is not EventStatus.PUBLISHED:
        return RegistrationState.NOT_PUBLISHED
    if event.registration_opens_at is not None and moment < event.registration_opens_at:
        return RegistrationState.NOT_YET_OPEN
    closes_at = event.registration_closes_at or event.ends_at
    if moment >= closes_at:
        return RegistrationState.CLOSED
    if event.seats_left == 0:
        return RegistrationState.FULL
    return RegistrationState.OPEN
