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
from functools import cache
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from uuid_utils.compat import uuid7

from events_app.db.dml import insert_skipping_conflicts
from events_app.db.models import (
    ACTIVE_REGISTRATION_STATUSES,
    Event,
    EventStatus,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationChange,
    RegistrationStatus,
)
from events_app.domain.events.services import RegistrationState, registration_state
from events_app.domain.privacy.notices import PRIVACY_NOTICE_VERSION
from events_app.domain.registrations import abuse
from events_app.domain.registrations.schemas import RegistrationData
from events_app.lib import outbox
from events_app.lib.i18n import current_language
from events_app.lib.ratelimit import Limit, Verdict
from events_app.lib.security import TokenPurpose, derive_token, hash_token, looks_like_token


class MailKind(StrEnum):
    """Every email about a registration; each has ``templates/emails/<value>.{txt,html}``."""

    CONFIRMED = "registration_confirmed"
    ALREADY_REGISTERED = "registration_already_registered"
    CANCELLED = "registration_cancelled"
    PENDING = "registration_pending"
    WAITLISTED = "registration_waitlisted"
    REJECTED = "registration_rejected"
    EVENT_UPDATED = "event_updated"
    EVENT_CANCELLED = "event_cancelled"
    REMINDER = "event_reminder"
    MASS_MESSAGE = "mass_message"
    CERTIFICATE = "certificate"
    LINKS = "registration_links"


class Outcome(StrEnum):
    CREATED = "created"
    PENDING = "pending"
    WAITLISTED = "waitlisted"
    ALREADY_REGISTERED = "already_registered"
    FULL = "full"
    CLOSED = "closed"


#: Outcomes the person is told about in the same way (their email says which it was).
ACCEPTED_OUTCOMES = (Outcome.CREATED, Outcome.PENDING, Outcome.WAITLISTED, Outcome.ALREADY_REGISTERED)


class DecisionError(Exception):
    """An organiser's decision does not apply to the registration in its current state."""


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
        return await self.get_one_or_none(
            Registration.manage_token_hash == hash_token(token), Registration.anonymised_at.is_(None)
        )

    async def erased_by_manage_token(self, token: str) -> bool:
        """Whether ``token`` is the personal link of a registration whose personal data was erased."""
        if not looks_like_token(token):
            return False
        found = await self.session.scalar(
            sa.select(Registration.id).where(
                Registration.manage_token_hash == hash_token(token), Registration.anonymised_at.is_not(None)
            )
        )
        return found is not None

    # --- registering --------------------------------------------------------------------------------

    async def event_is_public(self, slug: str) -> bool:
        """Whether ``slug`` names a published (or cancelled) event: the API's 404 before other errors."""
        return await self._event_for_update(slug) is not None

    async def register(
        self, slug: str, data: RegistrationData, now: datetime | None = None
    ) -> RegistrationResult:
        """Register ``data`` for the event ``slug``; commits. Never reveals whether the email existed.

        The first try is the quick one: it relies on the unique index of active registrations instead
        of looking for one first. On PostgreSQL the seat (or the waiting list), the registration, its
        change and its email are one statement after the event's read. On SQLite, when seats seem
        left, it writes the registration, its change and its email before taking the seat. Either way
        the event row stays locked only for the seat's UPDATE, what follows it in the same statement,
        and the commit. A repeated email (the index refuses it) or, on SQLite, a seat lost to
        concurrent registrations sends it to the careful try, which looks first.
        """
        moment = now or datetime.now(UTC)
        values = self._registration_values(data, moment)  # token hashes: before the transaction
        careful = False
        for _ in range(3):
            try:
                result = await self._register(slug, values, moment, careful=careful)
            except IntegrityError:  # a repeated email on PostgreSQL's first try (see _commits_alone)
                result = None
            if result is not None:
                return result
            # A repeated email, or seats lost to concurrent registrations: again, carefully.
            await self.session.rollback()
            careful = True
        raise RuntimeError("registration kept conflicting with concurrent ones")

    async def _register(
        self, slug: str, values: dict[str, Any], moment: datetime, *, careful: bool
    ) -> RegistrationResult | None:
        """One try at registering; ``None`` when the optimistic order lost the last seats (rolled back)."""
        alone = not careful and await self._commits_alone()
        event = await self._event_for_update(slug)
        if event is None:
            return RegistrationResult(Outcome.CLOSED, state=RegistrationState.NOT_PUBLISHED)
        values = {**values, "event_id": event.id, "invite_sequence": event.invite_sequence}
        if careful and (result := await self._already_registered(event, values)) is not None:
            return result
        state = registration_state(event, moment)
        takes_waitlist = state is RegistrationState.FULL and event.waitlist_enabled
        if state is not RegistrationState.OPEN and not takes_waitlist:
            outcome = Outcome.FULL if state is RegistrationState.FULL else Outcome.CLOSED
            return await self._refuse(event, values, outcome, state, careful)
        if event.approval_required:
            if alone:  # three INSERTs, which need a transaction: the careful try has one
                return None
            values["status"] = RegistrationStatus.PENDING_APPROVAL
            if not await self._write_new(values):
                return None
            return await self._committed(Outcome.PENDING, values, event)
        if self.session.get_bind().dialect.name == "postgresql":
            return await self._write_seated(event, values, moment, careful, alone=alone)
        if state is RegistrationState.OPEN and not careful:
            values["status"] = RegistrationStatus.CONFIRMED
            if not await self._write_new(values) or not await self._take_seat(event.id):
                return None
            return await self._committed(Outcome.CREATED, values, event)
        if await self._seat_if_any(event, state):
            values["status"] = RegistrationStatus.CONFIRMED
            outcome = Outcome.CREATED
        elif event.waitlist_enabled:
            values["status"] = RegistrationStatus.WAITLISTED
            values["waitlisted_at"] = moment
            outcome = Outcome.WAITLISTED
        else:
            return await self._refuse(event, values, Outcome.FULL, RegistrationState.FULL, careful)
        if not await self._write_new(values):
            return None
        return await self._committed(outcome, values, event)

    async def _commits_alone(self) -> bool:
        """PostgreSQL, before the session's transaction begins: each statement of this try commits by
        itself (no BEGIN and COMMIT round trips), and the event row's lock, taken by the one statement
        that writes (:func:`_seated_insert`), is held for that statement only, not until a COMMIT that
        waits for this process's event loop. Its registration INSERT then has no ``ON CONFLICT``: a
        repeated email fails the whole statement (the seat with it) and the careful try answers it.
        """
        if self.session.in_transaction() or self.session.get_bind().dialect.name != "postgresql":
            return False
        await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return True

    async def _write_seated(
        self, event: Event, values: dict[str, Any], moment: datetime, careful: bool, *, alone: bool
    ) -> RegistrationResult | None:
        """PostgreSQL: a seat, or else the waiting list, with the registration, its first change and its
        email in one statement (data-modifying CTEs, see :func:`_seated_insert`): one round trip.

        The conditional seat UPDATE decides (even for an event read as full: a concurrent cancellation
        may have freed a seat since); the registration is written as confirmed when it took one,
        waitlisted otherwise, and not at all when neither applies. ``None`` (to roll back and try
        carefully) when the unique index refused the email: a seat taken meanwhile is rolled back too.
        """
        mail = self._new_mail(values, MailKind.CONFIRMED)  # the kind follows the status, in SQL
        params = {f"r_{name}": values[name] for name in _SEATED_COLUMNS}
        params["r_waitlist"] = event.waitlist_enabled
        params["r_waitlisted_at"] = moment
        params["seat_updated_at"] = values["created_at"]
        params["c_id"] = uuid7()
        if mail is not None:
            params["m_id"] = uuid7()
            params["m_message_id"] = outbox.make_message_id(self.tokens.message_id_domain)
            params["m_payload"] = mail["payload"]
        statement = _seated_insert(with_mail=mail is not None, skip_conflicts=not alone)
        row = (await self.session.execute(statement, params)).one()
        seat, status = row[0], row[1]
        if status is None:
            if seat is None and not event.waitlist_enabled:  # no seat left and no waiting list
                return await self._refuse(event, values, Outcome.FULL, RegistrationState.FULL, careful)
            return None  # already registered: the index refused the email
        if mail is not None:
            outbox.mark_written(self.session)
        values["status"] = status
        if status is RegistrationStatus.WAITLISTED:
            values["waitlisted_at"] = moment
            return await self._committed(Outcome.WAITLISTED, values, event)
        return await self._committed(Outcome.CREATED, values, event)

    async def _seat_if_any(self, event: Event, state: RegistrationState) -> bool:
        """Take a seat (SQLite). An event read as full is skipped: the read was made under the single
        writer lock (``BEGIN IMMEDIATE``), so nobody can have freed a seat since."""
        if state is RegistrationState.FULL:
            return False
        return await self._take_seat(event.id)

    async def _already_registered(self, event: Event, values: dict[str, Any]) -> RegistrationResult | None:
        existing = await self._active_registration(event.id, values["email_normalized"])
        if existing is None:
            return None
        self._queue_mail(existing, MailKind.ALREADY_REGISTERED)
        await self.session.commit()
        return RegistrationResult(Outcome.ALREADY_REGISTERED, existing)

    async def _refuse(
        self,
        event: Event,
        values: dict[str, Any],
        outcome: Outcome,
        state: RegistrationState,
        careful: bool,
    ) -> RegistrationResult:
        """Full or closed: still "already registered" (with its email) for a person who is."""
        if not careful and (result := await self._already_registered(event, values)) is not None:
            return result
        await self.session.rollback()
        return RegistrationResult(outcome, state=state)

    async def _write_new(self, values: dict[str, Any]) -> bool:
        """The registration, its first change and its email: three Core INSERTs, no ORM flush.

        False, with nothing written, when an active registration with this email exists: the unique
        index refuses it (``ON CONFLICT DO NOTHING``) without failing the transaction.
        """
        written = await self.session.scalar(_INSERT_UNLESS_REGISTERED, values)
        if written is None:
            return False
        await self.session.execute(
            sa.insert(_CHANGES),
            {
                "id": uuid7(),
                "registration_id": values["id"],
                "from_status": None,
                "to_status": values["status"],
                "actor_label": "self-registration",
                "note": "",
                "created_at": values["created_at"],
                "updated_at": values["created_at"],
            },
        )
        if (mail := self._new_mail(values, _MAIL_FOR_STATUS[values["status"]])) is not None:
            await outbox.enqueue_many(self.session, [mail], message_id_domain=self.tokens.message_id_domain)
        return True

    def _new_mail(self, values: dict[str, Any], kind: MailKind) -> dict[str, Any] | None:
        """A new registration's email, as :func:`outbox.enqueue_many` takes it (on PostgreSQL,
        :func:`_seated_insert` writes the same row); ``None`` in the benchmark's mail-less service."""
        return {
            "kind": kind.value,
            "recipient": values["email"],
            "language": values["language"],
            "registration_id": values["id"],
            "payload": {"sequence": values["invite_sequence"]},
        }

    async def _committed(self, outcome: Outcome, values: dict[str, Any], event: Event) -> RegistrationResult:
        """Commit, and hand back the new registration as a persistent object without loading it."""
        await self.session.commit()
        registration = Registration(**values)
        make_transient_to_detached(registration)
        set_committed_value(registration, "event", event)
        self.session.add(registration)
        return RegistrationResult(outcome, registration)

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

    def _registration_values(self, data: RegistrationData, moment: datetime) -> dict[str, Any]:
        """Every column of a new registration but its event, status and invite sequence."""
        key = uuid7()
        secret = self.tokens.secret_key
        created = datetime.now(UTC)
        return {
            "id": key,
            "full_name": data.full_name,
            "email": data.email,
            "email_normalized": data.email_normalized,
            "country": data.country,
            "institution": data.institution,
            "position": data.position,
            "sector": data.sector,
            "language": data.language,
            "ticket_version": 1,
            "ticket_hash": hash_token(derive_token(secret, TokenPurpose.TICKET, key, 1)),
            "manage_token_version": 1,
            "manage_token_hash": hash_token(derive_token(secret, TokenPurpose.MANAGE, key, 1)),
            "join_token_hash": hash_token(derive_token(secret, TokenPurpose.JOIN, key, 1)),
            "privacy_notice_version": PRIVACY_NOTICE_VERSION,
            "consent_given_at": moment,
            "waitlisted_at": None,
            "cancelled_at": None,
            "anonymised_at": None,
            "created_at": created,
            "updated_at": created,
        }

    # --- cancelling ---------------------------------------------------------------------------------

    async def cancel(self, registration: Registration, now: datetime | None = None) -> bool:
        """Cancel by the participant; frees the seat for the waiting list and sends a CANCEL. Commits."""
        changed = await self._leave(registration, RegistrationStatus.CANCELLED, now, actor="participant")
        if not changed:
            await self.session.rollback()
            return False
        self._queue_mail(registration, MailKind.CANCELLED)
        await self.session.commit()
        return True

    async def _leave(
        self,
        registration: Registration,
        to_status: RegistrationStatus,
        now: datetime | None,
        actor: str,
        note: str = "",
    ) -> bool:
        """Move an active registration out (cancelled or rejected); a freed seat goes to the waiting list."""
        moment = now or datetime.now(UTC)
        from_status = registration.status
        values: dict[str, object] = {"status": to_status, "invite_sequence": Registration.invite_sequence + 1}
        if to_status is RegistrationStatus.CANCELLED:
            values["cancelled_at"] = moment
        result = await self.session.execute(
            sa.update(Registration)
            .where(Registration.id == registration.id, Registration.status == from_status)
            .where(Registration.status.in_(ACTIVE_REGISTRATION_STATUSES))
            .values(**values)
            .returning(Registration.id)
            .execution_options(synchronize_session=False)
        )
        if result.scalar_one_or_none() is None:
            return False
        await self.session.refresh(registration)
        self._record_change(registration, from_status, actor, note)
        if from_status is RegistrationStatus.CONFIRMED:
            await self._release_seat(registration.event_id)
            await self.promote_waitlisted(registration.event_id, actor="automatic")
        return True

    # --- organiser decisions ------------------------------------------------------------------------

    async def approve(self, registration: Registration, actor: str) -> RegistrationStatus:
        """Pending -> confirmed (with the invite and ticket), or -> waiting list when full. Commits."""
        if registration.status is not RegistrationStatus.PENDING_APPROVAL:
            raise DecisionError("only a pending registration can be approved")
        await self._lock_event(registration.event_id)
        if await self._take_seat(registration.event_id):
            await self._set_status(registration, RegistrationStatus.CONFIRMED, actor, "approved")
        elif registration.event.waitlist_enabled:
            await self._set_status(registration, RegistrationStatus.WAITLISTED, actor, "approved; event full")
        else:
            await self.session.rollback()
            raise DecisionError("the event is full and has no waiting list")
        self._queue_mail(registration, _MAIL_FOR_STATUS[registration.status], reason="approved")
        await self.session.commit()
        return registration.status

    async def reject(self, registration: Registration, actor: str, note: str = "") -> None:
        """Pending, waitlisted or confirmed -> rejected, with a polite notice. Commits."""
        had_invite = registration.status is RegistrationStatus.CONFIRMED
        if not await self._leave(registration, RegistrationStatus.REJECTED, None, actor=actor, note=note):
            await self.session.rollback()
            raise DecisionError("only an active registration can be rejected")
        self._queue_mail(registration, MailKind.REJECTED, had_invite=had_invite)
        await self.session.commit()

    async def promote(self, registration: Registration, actor: str) -> None:
        """Promote one waitlisted person by hand, out of turn. Without a free seat the capacity grows
        by one: the organiser chose to add this seat, so nobody is overbooked. Commits."""
        if registration.status is not RegistrationStatus.WAITLISTED:
            raise DecisionError("only a waitlisted registration can be promoted")
        await self._lock_event(registration.event_id)
        if not await self._take_seat(registration.event_id):
            await self.session.execute(
                sa.update(Event)
                .where(Event.id == registration.event_id, Event.capacity.is_not(None))
                .values(capacity=Event.capacity + 1, seats_taken=Event.seats_taken + 1)
                .execution_options(synchronize_session=False)
            )
        await self._set_status(registration, RegistrationStatus.CONFIRMED, actor, "promoted by hand")
        self._queue_mail(registration, MailKind.CONFIRMED, reason="promoted")
        await self.session.commit()

    async def promote_waitlisted(self, event_id: UUID, actor: str = "automatic") -> int:
        """Give every free seat to the head of the waiting list, in order; in the caller's transaction.

        Call it wherever seats may have been freed (cancellation, rejection, a larger capacity).
        """
        promoted = 0
        while True:
            result = await self.session.execute(
                sa.select(Registration)
                .where(
                    Registration.event_id == event_id, Registration.status == RegistrationStatus.WAITLISTED
                )
                .order_by(Registration.waitlisted_at, Registration.id)
                .limit(1)
                .with_for_update(skip_locked=True, of=Registration)
            )
            candidate = result.unique().scalar_one_or_none()
            if candidate is None or not await self._take_seat(event_id):
                return promoted
            await self._set_status(
                candidate, RegistrationStatus.CONFIRMED, actor, "promoted from the waiting list"
            )
            self._queue_mail(candidate, MailKind.CONFIRMED, reason="promoted")
            promoted += 1

    # --- abuse limits ------------------------------------------------------------------------------

    async def count_attempt(self, limits: list[Limit]) -> Verdict:
        """Count one attempt of a public form against ``limits``, committed at once (see
        :func:`events_app.domain.registrations.abuse.count_attempt`)."""
        return await abuse.count_attempt(self.session, limits)

    # --- "resend my registration link" -------------------------------------------------------------

    async def send_links(self, email_normalized: str) -> None:
        """Queue one email listing the active registrations of the typed address, with their links.

        The same work for a known and an unknown address (one outbox row for the typed address, one
        commit), so neither the answer nor its timing tells whether the address is registered: the
        mail worker looks the address up and skips the row, forgetting the address, when it has no
        active registration. Commits.
        """
        outbox.enqueue(
            self.session,
            kind=MailKind.LINKS.value,
            recipient=email_normalized,
            language=current_language(),
            message_id_domain=self.tokens.message_id_domain,
        )
        await self.session.commit()

    async def waitlist_position(self, registration: Registration) -> int | None:
        return await waitlist_position(self.session, registration)

    async def _lock_event(self, event_id: UUID) -> None:
        """Serialise decisions on one event (PostgreSQL row lock; SQLite already has one writer)."""
        await self.session.execute(sa.select(Event.id).where(Event.id == event_id).with_for_update())

    async def _set_status(
        self, registration: Registration, to_status: RegistrationStatus, actor: str, note: str
    ) -> None:
        from_status = registration.status
        registration.status = to_status
        if to_status is RegistrationStatus.WAITLISTED:
            registration.waitlisted_at = datetime.now(UTC)
        await self.session.flush()
        self._record_change(registration, from_status, actor, note)

    def _record_change(
        self, registration: Registration, from_status: RegistrationStatus | None, actor: str, note: str = ""
    ) -> None:
        self.session.add(
            RegistrationChange(
                id=uuid7(),
                registration_id=registration.id,
                from_status=from_status,
                to_status=registration.status,
                actor_label=actor,
                note=note,
            )
        )

    # --- mail ---------------------------------------------------------------------------------------

    def _queue_mail(self, registration: Registration, kind: MailKind, **payload: Any) -> None:
        queue_registration_mail(self.session, self.tokens, registration, kind, **payload)


def queue_registration_mail(
    session: AsyncSession,
    tokens: TokenSettings,
    registration: Registration,
    kind: MailKind,
    *,
    dedupe_key: str | None = None,
    mass_message_id: UUID | None = None,
    **payload: object,
) -> OutboxMessage:
    """Write one email about ``registration`` into the outbox, in the caller's transaction."""
    return outbox.enqueue(
        session,
        kind=kind.value,
        recipient=registration.email,
        language=registration.language,
        registration_id=registration.id,
        message_id_domain=tokens.message_id_domain,
        payload={"sequence": registration.invite_sequence, **payload},
        dedupe_key=dedupe_key,
        mass_message_id=mass_message_id,
    )


_REGISTRATIONS = cast(sa.Table, Registration.__table__)
_CHANGES = cast(sa.Table, RegistrationChange.__table__)
_OUTBOX = cast(sa.Table, OutboxMessage.__table__)
_EVENTS = cast(sa.Table, Event.__table__)
#: The registration's columns :func:`_seated_insert` takes as parameters (``r_<name>``).
_SEATED_COLUMNS = (
    "id",
    "event_id",
    "full_name",
    "email",
    "email_normalized",
    "country",
    "institution",
    "position",
    "sector",
    "language",
    "ticket_version",
    "ticket_hash",
    "manage_token_version",
    "manage_token_hash",
    "join_token_hash",
    "invite_sequence",
    "privacy_notice_version",
    "consent_given_at",
    "cancelled_at",
    "anonymised_at",
    "created_at",
    "updated_at",
)
#: The first change's columns, in the order :func:`_seated_insert` selects them.
_CHANGE_COLUMNS = (
    "id",
    "registration_id",
    "from_status",
    "to_status",
    "actor_label",
    "note",
    "created_at",
    "updated_at",
)


def _param(table: sa.Table, column: str, prefix: str) -> sa.BindParameter[Any]:
    return sa.bindparam(f"{prefix}{column}", type_=table.c[column].type)


def _constant(value: str, type_: sa.types.TypeEngine[Any] = sa.String()) -> sa.ColumnElement[Any]:
    """One of our own fixed words, written into the SQL (no bound parameter to process per call)."""
    assert "'" not in value
    return sa.literal_column(f"'{value}'", type_)


@cache
def _seated_insert(
    *, with_mail: bool, skip_conflicts: bool
) -> sa.Select[tuple[UUID | None, RegistrationStatus | None]]:
    """PostgreSQL: seat (or waiting list), registration, first change and email in one statement.

    ``WITH seat AS (UPDATE events ... WHERE seats_taken < capacity RETURNING id), reg AS (INSERT INTO
    registrations SELECT ..., CASE WHEN a seat THEN 'confirmed' ELSE 'waitlisted' END ... WHERE a
    seat OR :waitlist [ON CONFLICT DO NOTHING] RETURNING id, status), change AS (INSERT ... FROM reg),
    mail AS (INSERT ... FROM reg) SELECT (seat's id), (reg's status)``. The seat is decided first,
    so the status can follow it; the row lock it takes is held for the rest of this statement and
    the commit, as when the UPDATE came last. The change and the email are written only when the
    registration was (``FROM reg``). With ``skip_conflicts`` the unique index of active registrations
    per email refuses a repeat without an error (no status back; the caller rolls back); without it
    (a statement that commits alone) the repeat fails the whole statement, seat included. Built once
    per variant: the compiled form is cached by SQLAlchemy.
    """
    seat = (
        sa.update(_EVENTS)
        .where(
            _EVENTS.c.id == _param(_REGISTRATIONS, "event_id", "r_"),
            sa.or_(_EVENTS.c.capacity.is_(None), _EVENTS.c.seats_taken < _EVENTS.c.capacity),
        )
        .values(seats_taken=_EVENTS.c.seats_taken + 1, updated_at=_param(_EVENTS, "updated_at", "seat_"))
        .returning(_EVENTS.c.id)
        .cte("seat")
    )
    seated = sa.exists(sa.select(seat.c.id))
    status_type = _REGISTRATIONS.c.status.type
    status = sa.case(
        (seated, _constant(RegistrationStatus.CONFIRMED, status_type)),
        else_=_constant(RegistrationStatus.WAITLISTED, status_type),
    )
    waitlisted_at = sa.case((seated, sa.null()), else_=_param(_REGISTRATIONS, "waitlisted_at", "r_"))
    registration = (
        (insert_skipping_conflicts(_REGISTRATIONS) if skip_conflicts else sa.insert(_REGISTRATIONS))
        .from_select(
            [*_SEATED_COLUMNS, "status", "waitlisted_at"],
            sa.select(
                *(_param(_REGISTRATIONS, name, "r_") for name in _SEATED_COLUMNS), status, waitlisted_at
            ).where(sa.or_(seated, sa.bindparam("r_waitlist", type_=sa.Boolean))),
        )
        .returning(
            _REGISTRATIONS.c.id, _REGISTRATIONS.c.status, _REGISTRATIONS.c.email, _REGISTRATIONS.c.language
        )
        .cte("reg")
    )
    change = sa.insert(_CHANGES).from_select(
        _CHANGE_COLUMNS,
        sa.select(
            _param(_CHANGES, "id", "c_"),
            registration.c.id,
            sa.null(),
            registration.c.status,
            _constant("self-registration", _CHANGES.c.actor_label.type),
            _constant("", _CHANGES.c.note.type),
            _param(_REGISTRATIONS, "created_at", "r_"),
            _param(_REGISTRATIONS, "created_at", "r_"),
        ).select_from(registration),
    )
    ctes = [change.cte("change")]
    if with_mail:
        kind = sa.case(
            *(
                (registration.c.status == _constant(status_, status_type), _constant(kind_.value))
                for status_, kind_ in _MAIL_FOR_STATUS.items()
            ),
        )
        # The row outbox.enqueue_many writes: queued, due now, its own Message-ID.
        moment = _param(_REGISTRATIONS, "created_at", "r_")
        mail_values = {
            "id": _param(_OUTBOX, "id", "m_"),
            "kind": kind,
            "recipient": registration.c.email,
            "language": registration.c.language,
            "registration_id": registration.c.id,
            "payload": _param(_OUTBOX, "payload", "m_"),
            "message_id": _param(_OUTBOX, "message_id", "m_"),
            "status": _constant(OutboxStatus.QUEUED, _OUTBOX.c.status.type),
            "attempts": sa.literal_column("0", sa.Integer),
            "next_attempt_at": moment,
            "created_at": moment,
            "updated_at": moment,
        }
        mail = sa.insert(_OUTBOX).from_select(
            list(mail_values), sa.select(*mail_values.values()).select_from(registration)
        )
        ctes.append(mail.cte("mail"))
    return sa.select(
        sa.select(seat.c.id).scalar_subquery(), sa.select(registration.c.status).scalar_subquery()
    ).add_cte(*ctes)


#: INSERT a registration; no row (and no error) when the email is already actively registered.
_INSERT_UNLESS_REGISTERED = insert_skipping_conflicts(_REGISTRATIONS).returning(_REGISTRATIONS.c.id)


_MAIL_FOR_STATUS = {
    RegistrationStatus.CONFIRMED: MailKind.CONFIRMED,
    RegistrationStatus.PENDING_APPROVAL: MailKind.PENDING,
    RegistrationStatus.WAITLISTED: MailKind.WAITLISTED,
}


async def waitlist_position(session: AsyncSession, registration: Registration) -> int | None:
    """1 for the head of the waiting list; None when the person is not waitlisted."""
    if registration.status is not RegistrationStatus.WAITLISTED or registration.waitlisted_at is None:
        return None
    ahead = await session.scalar(
        sa.select(sa.func.count())
        .select_from(Registration)
        .where(
            Registration.event_id == registration.event_id,
            Registration.status == RegistrationStatus.WAITLISTED,
            sa.or_(
                Registration.waitlisted_at < registration.waitlisted_at,
                sa.and_(
                    Registration.waitlisted_at == registration.waitlisted_at,
                    Registration.id < registration.id,
                ),
            ),
        )
    )
    return int(ahead or 0) + 1
