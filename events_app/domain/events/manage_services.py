"""Organisers' event verbs: create, edit, publish, cancel, duplicate; and invites that stay correct.

When a published event's time, zone, venue or join link changes, its ``invite_sequence`` grows by one,
every confirmed registration's SEQUENCE grows to at least that value, and each confirmed registrant is
sent an update (a REQUEST with the same UID): all in the edit's transaction. Cancelling sends every
active registrant a notice (a CANCEL to those who held an invite). The fan-out is set-based: one
INSERT ... SELECT writes every outbox row inside the database, with no Python object per registrant.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from litestar.exceptions import ClientException, NotFoundException
from litestar.status_codes import HTTP_409_CONFLICT
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from uuid_utils.compat import uuid7

from events_app.db.models import (
    ACTIVE_REGISTRATION_STATUSES,
    Event,
    EventAssignment,
    EventStatus,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
)
from events_app.domain.accounts.permissions import Principal
from events_app.domain.audit.services import record
from events_app.domain.events.manage_schemas import (
    MSG_CAPACITY_BELOW_TAKEN,
    MSG_SLUG_TAKEN,
    EventData,
    EventFormInvalid,
    SeatSummary,
    keep_shown_instants,
    text_field,
)
from events_app.domain.events.schemas import TEXT_FIELDS
from events_app.domain.privacy.retention import PurgeLine, upcoming_purges
from events_app.domain.registrations.services import (
    MailKind,
    RegistrationService,
    TokenSettings,
)
from events_app.lib import outbox
from events_app.lib.i18n import N_, gettext

#: A copy's slug is ``<slug>-copy`` or ``<slug>-copy-<n>``; the source is shortened to leave room.
COPY_SLUG_ROOM = 100

MSG_CANCELLED_IS_FINAL = N_("A cancelled event can no longer be changed.")

#: Fields whose change must reach calendars, as the change codes the update email explains.
INVITE_CHANGE_CODES = {
    "starts_at": "time",
    "ends_at": "time",
    "timezone": "timezone",
    "venue_name": "venue",
    "venue_address": "venue",
    "venue_city": "venue",
    "venue_country": "venue",
    "join_url": "join_url",
    "kind": "kind",
}
CHANGE_ORDER = ("time", "timezone", "venue", "join_url", "kind")

#: What a duplicate takes over from its source (not the slug, status, seats or sequence).
COPIED_FIELDS = (
    "kind",
    "base_language",
    "texts",
    "starts_at",
    "ends_at",
    "timezone",
    "venue_name",
    "venue_address",
    "venue_city",
    "venue_country",
    "join_url",
    "capacity",
    "registration_opens_at",
    "registration_closes_at",
    "approval_required",
    "waitlist_enabled",
    "contact_name",
    "contact_email",
    "reminder_offsets_minutes",
)


class EventNotFound(NotFoundException):
    """The event does not exist, or is outside the principal's scope (the same answer for both)."""

    def __init__(self) -> None:
        super().__init__(gettext("This event does not exist or you cannot manage it."))


class EventStateError(ClientException):
    """The action does not apply to the event in its current status."""

    status_code = HTTP_409_CONFLICT


@dataclass(frozen=True, slots=True)
class UpdateResult:
    changed: list[str] = field(default_factory=list)
    invite_changes: list[str] = field(default_factory=list)
    invites_sent: int = 0
    promoted: int = 0


class EventManagementService:
    def __init__(self, session: AsyncSession, tokens: TokenSettings) -> None:
        self.session = session
        self.tokens = tokens

    # --- finding events -----------------------------------------------------------------------------

    async def visible_event(self, principal: Principal, event_id: UUID) -> Event:
        """An event the principal may look at (organiser page); else :class:`EventNotFound`."""
        event = await self.session.get(Event, event_id)
        if event is None or not principal.sees_event(event.id):
            raise EventNotFound
        return event

    async def managed_event(self, principal: Principal, event_id: UUID) -> Event:
        """An event the principal may change; else :class:`EventNotFound`."""
        if not principal.manages(event_id):
            raise EventNotFound
        event = await self.session.get(Event, event_id)
        if event is None:
            raise EventNotFound
        return event

    async def editable_event(self, principal: Principal, event_id: UUID) -> Event:
        """A managed event that can still change (not cancelled)."""
        event = await self.managed_event(principal, event_id)
        if event.status is EventStatus.CANCELLED:
            raise EventStateError(gettext(MSG_CANCELLED_IS_FINAL))
        return event

    async def _locked_event(self, principal: Principal, event_id: UUID) -> Event:
        """The managed event, re-read and row-locked for a change (PostgreSQL; SQLite has one writer)."""
        if not principal.manages(event_id):
            raise EventNotFound
        result = await self.session.execute(
            sa.select(Event)
            .where(Event.id == event_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        event = result.scalar_one_or_none()
        if event is None:
            raise EventNotFound
        return event

    async def upcoming_purge(
        self, principal: Principal, event: Event, retention_days: int
    ) -> PurgeLine | None:
        """When the retention job anonymises the event's registrations in the principal's scope."""
        purges = await upcoming_purges(self.session, principal, retention_days, event.id)
        return purges[0] if purges else None

    async def seat_summary(self, event: Event) -> SeatSummary:
        result = await self.session.execute(
            sa.select(Registration.status, sa.func.count())
            .where(Registration.event_id == event.id)
            .group_by(Registration.status)
        )
        counts: dict[RegistrationStatus, int] = {status: int(count) for status, count in result.all()}
        return SeatSummary(
            taken=event.seats_taken,
            capacity=event.capacity,
            confirmed=counts.get(RegistrationStatus.CONFIRMED, 0),
            waitlisted=counts.get(RegistrationStatus.WAITLISTED, 0),
            pending=counts.get(RegistrationStatus.PENDING_APPROVAL, 0),
        )

    # --- creating -----------------------------------------------------------------------------------

    async def create(self, principal: Principal, data: EventData) -> Event:
        """A new draft event; an event manager who creates it manages it. Commits."""
        if not principal.can_create_events():
            raise EventNotFound
        await self._check_slug_free(data.slug)
        event = Event(
            id=uuid7(),
            status=EventStatus.DRAFT,
            seats_taken=0,
            invite_sequence=0,
            **data.attributes(),
        )
        await self._insert(event)
        self._assign(principal, event)
        record(self.session, principal, "event_created", "event", event.id, event.id, slug=event.slug)
        await self.session.commit()
        return event

    async def duplicate(self, principal: Principal, event_id: UUID) -> Event:
        """A draft copy with the same texts and settings, no registrations, a new slug. Commits."""
        source = await self.managed_event(principal, event_id)
        values = {name: _copied(getattr(source, name)) for name in COPIED_FIELDS}
        event = Event(
            id=uuid7(),
            slug=await self._copy_slug(source.slug),
            status=EventStatus.DRAFT,
            seats_taken=0,
            invite_sequence=0,
            **values,
        )
        await self._insert(event)
        self._assign(principal, event)
        record(
            self.session,
            principal,
            "event_duplicated",
            "event",
            event.id,
            event.id,
            source_id=str(source.id),
            source_slug=source.slug,
            slug=event.slug,
        )
        await self.session.commit()
        return event

    async def _insert(self, event: Event) -> None:
        """Insert, turning a slug taken by a concurrent request into a form error."""
        try:
            async with self.session.begin_nested():
                self.session.add(event)
                await self.session.flush()
        except IntegrityError as exc:
            raise EventFormInvalid({"slug": gettext(MSG_SLUG_TAKEN)}) from exc

    def _assign(self, principal: Principal, event: Event) -> None:
        if principal.role is Role.EVENT_MANAGER:
            self.session.add(EventAssignment(id=uuid7(), user_id=principal.user_id, event_id=event.id))

    async def _check_slug_free(self, slug: str, event_id: UUID | None = None) -> None:
        statement = sa.select(Event.id).where(Event.slug == slug)
        if event_id is not None:
            statement = statement.where(Event.id != event_id)
        if await self.session.scalar(statement.limit(1)) is not None:
            raise EventFormInvalid({"slug": gettext(MSG_SLUG_TAKEN)})

    async def _copy_slug(self, slug: str) -> str:
        base = f"{slug[:COPY_SLUG_ROOM].rstrip('-')}-copy"
        taken = set(
            (
                await self.session.scalars(
                    sa.select(Event.slug).where(sa.or_(Event.slug == base, Event.slug.like(f"{base}-%")))
                )
            ).all()
        )
        if base not in taken:
            return base
        number = 2
        while f"{base}-{number}" in taken:
            number += 1
        return f"{base}-{number}"

    # --- editing ------------------------------------------------------------------------------------

    async def update(self, principal: Principal, event_id: UUID, data: EventData) -> UpdateResult:
        """Apply the form; a published event's calendar changes reach every confirmed registrant. Commits."""
        event = await self._locked_event(principal, event_id)
        if event.status is EventStatus.CANCELLED:
            raise EventStateError(gettext(MSG_CANCELLED_IS_FINAL))
        await self._check_slug_free(data.slug, event.id)
        if data.capacity is not None and data.capacity < event.seats_taken:
            message = gettext(MSG_CAPACITY_BELOW_TAKEN) % {"count": event.seats_taken}
            raise EventFormInvalid({"capacity": message})
        old_capacity = event.capacity
        changed = _apply(event, keep_shown_instants(data, event))
        if not changed:
            await self.session.commit()  # nothing to write; ends the transaction and its row lock
            return UpdateResult()
        record(self.session, principal, "event_updated", "event", event.id, event.id, changed=changed)
        await self.session.flush()
        result = UpdateResult(changed=changed)
        if event.status is EventStatus.PUBLISHED:
            result = await self._after_published_change(principal, event, changed, old_capacity)
        await self.session.commit()
        return result

    async def _after_published_change(
        self, principal: Principal, event: Event, changed: list[str], old_capacity: int | None
    ) -> UpdateResult:
        codes = invite_change_codes(event, changed)
        sent = await self._update_invites(principal, event, codes) if codes else 0
        promoted = 0
        if _capacity_grew(old_capacity, event.capacity):
            registrations = RegistrationService(session=self.session, tokens=self.tokens)
            promoted = await registrations.promote_waitlisted(event.id, actor=principal.label)
        return UpdateResult(changed=changed, invite_changes=codes, invites_sent=sent, promoted=promoted)

    async def _update_invites(self, principal: Principal, event: Event, codes: list[str]) -> int:
        """SEQUENCE + 1 for the event and its confirmed registrations, and an update to each of them."""
        sequence = await self._bump_sequences(event, (RegistrationStatus.CONFIRMED,))
        count = await self._fan_out(
            event.id, (RegistrationStatus.CONFIRMED,), MailKind.EVENT_UPDATED, {"changes": codes}
        )
        record(
            self.session,
            principal,
            "invites_updated",
            "event",
            event.id,
            event.id,
            count=count,
            sequence=sequence,
            changes=codes,
        )
        return count

    async def _bump_sequences(self, event: Event, statuses: Sequence[RegistrationStatus]) -> int:
        """The event's sequence + 1; each matching registration's to at least that (always growing)."""
        event.invite_sequence += 1
        await self.session.flush()
        sequence = event.invite_sequence
        await self.session.execute(
            sa.update(Registration)
            .where(Registration.event_id == event.id, Registration.status.in_(statuses))
            .values(invite_sequence=_next_sequence(sequence))
            .execution_options(synchronize_session=False)
        )
        return sequence

    async def _fan_out(
        self,
        event_id: UUID,
        statuses: Sequence[RegistrationStatus],
        kind: MailKind,
        payload: dict[str, Any],
    ) -> int:
        """One email of ``kind`` to each of the event's registrations in ``statuses``; how many.

        Set-based: one ``INSERT INTO outbox_messages ... SELECT ... FROM registrations`` in the caller's
        transaction, so 50,000 registrants never become 50,000 Python objects. Each row's payload holds
        the registration's current ``invite_sequence`` (bump the sequences first) and ``payload``, whose
        values are JSON lists or scalars, or SQL expressions over the registration (a boolean, say).
        The database makes the ids and Message-IDs (random, 128 bits), as :func:`outbox.enqueue` would.
        """
        table = cast(sa.Table, OutboxMessage.__table__)
        postgres = self.session.bind.dialect.name == "postgresql"
        now = datetime.now(UTC)
        if postgres:
            new_id: ColumnElement[Any] = sa.func.gen_random_uuid()
            random_hex: ColumnElement[str] = sa.func.replace(
                sa.cast(sa.func.gen_random_uuid(), sa.Text), "-", ""
            )
        else:
            new_id = sa.func.randomblob(16)
            random_hex = sa.func.lower(sa.func.hex(sa.func.randomblob(16)))
        message_id = sa.literal("<") + random_hex + sa.literal(f"@{self.tokens.message_id_domain}>")
        values: dict[str, Any] = {
            "id": new_id,
            "kind": sa.literal(kind.value),
            "recipient": Registration.email,
            "language": Registration.language,
            "registration_id": Registration.id,
            "payload": _json_object(postgres, {"sequence": Registration.invite_sequence, **payload}),
            "message_id": message_id,
            "status": sa.literal(OutboxStatus.QUEUED, type_=table.c.status.type),
            "attempts": sa.literal(0),
            "next_attempt_at": sa.literal(now, type_=table.c.next_attempt_at.type),
            "created_at": sa.literal(now, type_=table.c.created_at.type),
            "updated_at": sa.literal(now, type_=table.c.updated_at.type),
        }
        select = sa.select(*(expression.label(name) for name, expression in values.items())).where(
            Registration.event_id == event_id,
            Registration.status.in_(statuses),
            Registration.anonymised_at.is_(None),  # erased people (retention keeps their status)
        )
        result = await self.session.execute(sa.insert(table).from_select(list(values), select))
        outbox.mark_written(self.session)
        return int(cast(CursorResult[Any], result).rowcount)

    # --- publishing and cancelling ------------------------------------------------------------------

    async def publish(self, principal: Principal, event_id: UUID) -> Event:
        """Draft -> published (open to the public). Commits."""
        event = await self._locked_event(principal, event_id)
        if event.status is not EventStatus.DRAFT:
            raise EventStateError(gettext("Only a draft can be published."))
        event.status = EventStatus.PUBLISHED
        record(self.session, principal, "event_published", "event", event.id, event.id)
        await self.session.commit()
        return event

    async def cancel(self, principal: Principal, event_id: UUID) -> int:
        """Published -> cancelled; every active registrant is told (CANCEL to invite holders). Commits.

        Returns how many registrants were notified.
        """
        event = await self._locked_event(principal, event_id)
        if event.status is not EventStatus.PUBLISHED:
            raise EventStateError(gettext("Only a published event can be cancelled."))
        event.status = EventStatus.CANCELLED
        sequence = await self._bump_sequences(event, ACTIVE_REGISTRATION_STATUSES)
        count = await self._fan_out(
            event.id,
            ACTIVE_REGISTRATION_STATUSES,
            MailKind.EVENT_CANCELLED,
            {"had_invite": Registration.status == RegistrationStatus.CONFIRMED},
        )
        record(
            self.session,
            principal,
            "event_cancelled",
            "event",
            event.id,
            event.id,
            notified=count,
            sequence=sequence,
        )
        await self.session.commit()
        return count


def _json_object(postgres: bool, fields: dict[str, Any]) -> ColumnElement[Any]:
    """A JSON object built by the database from values and SQL expressions (booleans stay booleans)."""
    arguments: list[Any] = []
    for key, value in fields.items():
        if hasattr(value, "__clause_element__"):  # a mapped attribute such as Registration.invite_sequence
            value = value.__clause_element__()
        if isinstance(value, sa.ColumnElement) and isinstance(value.type, sa.Boolean) and not postgres:
            value = sa.func.json(sa.case((value, "true"), else_="false"))
        elif isinstance(value, list | dict):
            text = sa.literal(json.dumps(value))
            value = sa.cast(text, JSONB) if postgres else sa.func.json(text)
        elif not isinstance(value, sa.ColumnElement):
            value = sa.literal(value)
        arguments += [sa.literal(key), value]
    return sa.func.jsonb_build_object(*arguments) if postgres else sa.func.json_object(*arguments)


def _next_sequence(sequence: int) -> ColumnElement[int]:
    """``max(invite_sequence + 1, sequence)``: never lower than before, never below the event's."""
    return sa.case(
        (Registration.invite_sequence >= sequence, Registration.invite_sequence + 1),
        else_=sa.literal(sequence),
    )


def _copied(value: Any) -> Any:
    """A fresh copy of JSON values (texts, reminder lists), so the two events never share them."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _changed_texts(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]]) -> list[str]:
    return [
        text_field(name, language)
        for language in sorted(set(old) | set(new))
        for name in TEXT_FIELDS
        if old.get(language, {}).get(name, "") != new.get(language, {}).get(name, "")
    ]


def _apply(event: Event, data: EventData) -> list[str]:
    """Write the form on the event; returns the changed fields (texts as e.g. ``title_es``)."""
    changed: list[str] = []
    for name, value in data.attributes().items():
        if name == "texts":
            text_changes = _changed_texts(event.texts, value)
            if text_changes:
                event.texts = value
                changed.extend(text_changes)
        elif getattr(event, name) != value:
            setattr(event, name, value)
            changed.append(name)
    return changed


def invite_change_codes(event: Event, changed: list[str]) -> list[str]:
    """What changed for calendars: venue only matters with a venue, the join link only online."""
    codes = {INVITE_CHANGE_CODES[name] for name in changed if name in INVITE_CHANGE_CODES}
    if not event.kind.has_venue and "kind" not in codes:
        codes.discard("venue")
    if not event.kind.is_online and "kind" not in codes:
        codes.discard("join_url")
    return [code for code in CHANGE_ORDER if code in codes]


def _capacity_grew(old: int | None, new: int | None) -> bool:
    return old is not None and (new is None or new > old)
