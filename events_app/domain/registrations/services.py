"""Taking and cancelling registrations.

Capacity is enforced inside the database transaction by one conditional UPDATE on the event row
(``seats_taken = seats_taken + 1 WHERE seats_taken < capacity``): PostgreSQL serialises it on the row
lock, SQLite on its single writer (``BEGIN IMMEDIATE``, see db/engine.py). A registration and the
mail it causes are written in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

import sqlalchemy as sa
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from events_app.db.models import (
    ACTIVE_REGISTRATION_STATUSES,
    Event,
    EventStatus,
    Registration,
    RegistrationStatus,
)
from events_app.domain.events.services import RegistrationState, registration_state
from events_app.domain.registrations.schemas import RegistrationData
from events_app.lib import outbox
from events_app.lib.security import TokenPurpose, derive_token, hash_token, looks_like_token

PRIVACY_NOTICE_VERSION = "2026-11"


class MailKind(StrEnum):
    CONFIRMED = "registration_confirmed"
    ALREADY_REGISTERED = "registration_already_registered"
    CANCELLED = "registration_cancelled"


class Outcome(StrEnum):
    CREATED = "created"
    ALREADY_REGISTERED = "already_registered"
    FULL = "full"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    outcome: Outcome
    registration: Registration | None = None
    state: RegistrationState | None = None


@dataclass(frozen=True, slots=True)
class TokenSettings:
    secret_key: str
    message_id_domain: str


class RegistrationRepository(SQLAlchemyAsyncRepository[Registration]):
    model_type = Registration


class RegistrationService(SQLAlchemyAsyncRepositoryService[Registration, RegistrationRepository]):
    repository_type = RegistrationRepository

    def __init__(self, session: AsyncSession, tokens: TokenSettings, **kwargs: object) -> None:
        super().__init__(session=session, **kwargs)  # type: ignore[arg-type]
        self.tokens = tokens

    @property
    def session(self) -> AsyncSession:
        session = self.repository.session
        assert isinstance(session, AsyncSession)
        return session

    # --- tokens -------------------------------------------------------------------------------------

    def ticket_code(self, registration: Registration) -> str:
        return derive_token(
            self.tokens.secret_key, TokenPurpose.TICKET, registration.id, registration.ticket_version
        )

    def manage_token(self, registration: Registration) -> str:
        return derive_token(
            self.tokens.secret_key, TokenPurpose.MANAGE, registration.id, registration.manage_token_version
        )

    async def get_by_manage_token(self, token: str) -> Registration | None:
        if not looks_like_token(token):
            return None
        return await self.get_one_or_none(Registration.manage_token_hash == hash_token(token))

    # --- registering --------------------------------------------------------------------------------

    async def register(
        self, slug: str, data: RegistrationData, now: datetime | None = None
    ) -> RegistrationResult:
        """Register ``data`` for the event ``slug``; commits. Never reveals whether the email existed."""
        moment = now or datetime.now(UTC)
        try:
            return await self._register(slug, data, moment)
        except IntegrityError:
            # The same email raced another submission of itself: that one won; treat as a repeat.
            await self.session.rollback()
            return await self._register(slug, data, moment)

    async def _register(self, slug: str, data: RegistrationData, moment: datetime) -> RegistrationResult:
        event = await self._event_for_update(slug)
        if event is None:
            return RegistrationResult(Outcome.CLOSED, state=RegistrationState.NOT_PUBLISHED)
        existing = await self._active_registration(event.id, data.email_normalized)
        if existing is not None:
            self._queue_mail(existing, MailKind.ALREADY_REGISTERED)
            await self.session.commit()
            return RegistrationResult(Outcome.ALREADY_REGISTERED, existing)
        state = registration_state(event, moment)
        if state is not RegistrationState.OPEN:
            await self.session.rollback()
            outcome = Outcome.FULL if state is RegistrationState.FULL else Outcome.CLOSED
            return RegistrationResult(outcome, state=state)
        if not await self._take_seat(event.id):
            await self.session.rollback()
            return RegistrationResult(Outcome.FULL, state=RegistrationState.FULL)
        registration = self._new_registration(event, data, moment)
        self.session.add(registration)
        await self.session.flush()
        self._queue_mail(registration, MailKind.CONFIRMED)
        await self.session.commit()
        return RegistrationResult(Outcome.CREATED, registration)

    async def _event_for_update(self, slug: str) -> Event | None:
        result = await self.session.execute(
            sa.select(Event)
            .where(Event.slug == slug, Event.status.in_((EventStatus.PUBLISHED, EventStatus.CANCELLED)))
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def _active_registration(self, event_id: UUID, email_normalized: str) -> Registration | None:
        result = await self.session.execute(
            sa.select(Registration).where(
                Registration.event_id == event_id,
                Registration.email_normalized == email_normalized,
                Registration.status.in_(ACTIVE_REGISTRATION_STATUSES),
            )
        )
        return result.unique().scalar_one_or_none()

    async def _take_seat(self, event_id: UUID) -> bool:
        result = await self.session.execute(
            sa.update(Event)
            .where(Event.id == event_id, sa.or_(Event.capacity.is_(None), Event.seats_taken < Event.capacity))
            .values(seats_taken=Event.seats_taken + 1)
            .returning(Event.id)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none() is not None

    async def _release_seat(self, event_id: UUID) -> None:
        await self.session.execute(
            sa.update(Event)
            .where(Event.id == event_id, Event.seats_taken > 0)
            .values(seats_taken=Event.seats_taken - 1)
            .execution_options(synchronize_session=False)
        )

    def _new_registration(self, event: Event, data: RegistrationData, moment: datetime) -> Registration:
        registration = Registration(
            id=uuid7(),
            event_id=event.id,
            event=event,
            full_name=data.full_name,
            email=data.email,
            email_normalized=data.email_normalized,
            country=data.country,
            institution=data.institution,
            position=data.position,
            sector=data.sector,
            language=data.language,
            status=RegistrationStatus.CONFIRMED,
            ticket_version=1,
            manage_token_version=1,
            invite_sequence=event.invite_sequence,
            privacy_notice_version=PRIVACY_NOTICE_VERSION,
            consent_given_at=moment,
        )
        registration.ticket_hash = hash_token(self.ticket_code(registration))
        registration.manage_token_hash = hash_token(self.manage_token(registration))
        return registration

    # --- cancelling ---------------------------------------------------------------------------------

    async def cancel(self, registration: Registration, now: datetime | None = None) -> bool:
        """Cancel by the participant; frees the seat and sends a CANCEL for their invite. Commits."""
        moment = now or datetime.now(UTC)
        result = await self.session.execute(
            sa.update(Registration)
            .where(Registration.id == registration.id, Registration.status.in_(ACTIVE_REGISTRATION_STATUSES))
            .values(
                status=RegistrationStatus.CANCELLED,
                cancelled_at=moment,
                invite_sequence=Registration.invite_sequence + 1,
            )
            .returning(Registration.status)
            .execution_options(synchronize_session=False)
        )
        if result.scalar_one_or_none() is None:
            await self.session.rollback()
            return False
        if registration.status is RegistrationStatus.CONFIRMED:
            await self._release_seat(registration.event_id)
        await self.session.refresh(registration)
        self._queue_mail(registration, MailKind.CANCELLED)
        await self.session.commit()
        return True

    # --- mail ---------------------------------------------------------------------------------------

    def _queue_mail(self, registration: Registration, kind: MailKind) -> None:
        outbox.enqueue(
            self.session,
            kind=kind.value,
            recipient=registration.email,
            language=registration.language,
            registration_id=registration.id,
            message_id_domain=self.tokens.message_id_domain,
            payload={"sequence": registration.invite_sequence},
        )
