"""Messages from organisers to an event's registrants: who receives them, preview, sending, delivery counts.

Sending writes one :class:`MassMessage` and one outbox row per recipient in a single transaction (rows are
inserted in chunks, straight from a query of the registrations, without loading them as objects). The
worker builds each email in the recipient's language with :func:`mass_message_hook`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from uuid_utils.compat import uuid7

from events_app.db.models import Event, MassMessage, OutboxMessage, OutboxStatus, Registration, User
from events_app.domain.accounts.permissions import Principal
from events_app.domain.audit.services import record
from events_app.domain.messages.schemas import MessageDraft, RecipientFilter, fill_placeholders
from events_app.domain.registrations.notifications import ContextHook, manage_url, message_id_domain
from events_app.domain.registrations.services import MailKind
from events_app.domain.reminders.services import (
    RECIPIENT_COLUMNS,
    OutboxRecipient,
    insert_outbox_rows,
    outbox_row,
    recipients_from,
)
from events_app.lib.countries import country_name, is_country_code
from events_app.lib.i18n import format_datetime_in_zone, zone_label
from events_app.lib.outbox import utcnow
from events_app.settings import Settings

#: What the preview shows instead of a real personal link (those are secrets of each registrant).
PREVIEW_LINK_SUFFIX = "/my/…"


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    queued: int = 0
    sent: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A row of the list of messages already sent."""

    id: UUID
    created_at: datetime
    created_text: str
    subject: str
    sender: str
    recipient_count: int
    delivery: DeliveryCounts


@dataclass(frozen=True, slots=True)
class Sample:
    """The message as one recipient in ``language`` will read it."""

    language: str
    recipients: int
    text_language: str
    recipient_name: str
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class Preview:
    recipient_count: int
    samples: list[Sample]


def _moment_text(moment: datetime, zone: str) -> str:
    return f"{format_datetime_in_zone(moment, zone, 'medium')} ({zone_label(moment, zone)})"


def pick_text(
    texts: dict[str, dict[str, str]], language: str, base_language: str
) -> tuple[str, dict[str, str]]:
    """The text in ``language``, else in the event's main language, else any: (its language, the text)."""
    for candidate in (language, base_language, *texts):
        text = texts.get(candidate)
        if text and text.get("body"):
            return candidate, text
    return language, {"subject": "", "body": ""}


def render_text(text: dict[str, str], values: dict[str, str]) -> tuple[str, str]:
    """(subject, body) with the placeholders filled; the subject stays on one line."""
    subject = " ".join(fill_placeholders(text.get("subject", ""), values).split())
    return subject, fill_placeholders(text.get("body", ""), values)


def recipient_conditions(event_id: UUID, filters: RecipientFilter) -> list[ColumnElement[bool]]:
    conditions = [
        Registration.event_id == event_id,
        Registration.status.in_(filters.statuses),
        Registration.anonymised_at.is_(None),  # erased people are nobody to write to
    ]
    if filters.country:
        conditions.append(Registration.country == filters.country)
    if filters.language:
        conditions.append(Registration.language == filters.language)
    return conditions


def parse_event_id(raw: str) -> UUID | None:
    try:
        return UUID(raw)
    except ValueError:
        return None


class MessageService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def managed_event(self, principal: Principal, raw_event_id: str) -> Event | None:
        """The event, when ``principal`` manages it (else None: the page answers 404)."""
        event_id = parse_event_id(raw_event_id)
        if event_id is None or not principal.manages(event_id):
            return None
        return await self.session.get(Event, event_id)

    # --- reading ------------------------------------------------------------------------------------

    async def sent_messages(self, event: Event) -> list[SentMessage]:
        result = await self.session.execute(
            sa.select(MassMessage, User.email)
            .outerjoin(User, User.id == MassMessage.created_by_id)
            .where(MassMessage.event_id == event.id)
            .order_by(MassMessage.created_at.desc(), MassMessage.id.desc())
        )
        rows = result.all()
        counts = await self._delivery_counts([message.id for message, _ in rows])
        return [
            SentMessage(
                id=message.id,
                created_at=message.created_at,
                created_text=_moment_text(message.created_at, event.timezone),
                subject=pick_text(message.texts, event.base_language, event.base_language)[1]["subject"],
                sender=sender or "",
                recipient_count=message.recipient_count,
                delivery=counts.get(message.id, DeliveryCounts()),
            )
            for message, sender in rows
        ]

    async def _delivery_counts(self, ids: Sequence[UUID]) -> dict[UUID, DeliveryCounts]:
        if not ids:
            return {}
        result = await self.session.execute(
            sa.select(OutboxMessage.mass_message_id, OutboxMessage.status, sa.func.count())
            .where(OutboxMessage.mass_message_id.in_(ids))
            .group_by(OutboxMessage.mass_message_id, OutboxMessage.status)
        )
        tally: dict[UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for message_id, status, count in result.all():
            bucket = {OutboxStatus.SENT: "sent", OutboxStatus.FAILED: "failed"}.get(status, "queued")
            tally[message_id][bucket] += int(count)
        return {message_id: DeliveryCounts(**values) for message_id, values in tally.items()}

    async def registrant_countries(self, event: Event, chosen: str = "") -> list[tuple[str, str]]:
        """(code, name) of the countries the event's registrants come from (and ``chosen``), by name."""
        result = await self.session.execute(
            sa.select(Registration.country).where(Registration.event_id == event.id).distinct()
        )
        codes = set(result.scalars())
        if is_country_code(chosen):
            codes.add(chosen)
        return sorted(((code, country_name(code)) for code in codes), key=lambda pair: pair[1])

    async def preview(self, event: Event, draft: MessageDraft) -> Preview:
        """How many people receive the message, and how it reads for one of them in each language."""
        conditions = recipient_conditions(event.id, draft.filters)
        result = await self.session.execute(
            sa.select(Registration.language, sa.func.count())
            .where(*conditions)
            .group_by(Registration.language)
            .order_by(Registration.language)
        )
        per_language = dict(result.tuples().all())
        samples = [
            await self._sample(event, draft, conditions, language, count)
            for language, count in per_language.items()
        ]
        return Preview(recipient_count=sum(per_language.values()), samples=samples)

    async def _sample(
        self,
        event: Event,
        draft: MessageDraft,
        conditions: list[ColumnElement[bool]],
        language: str,
        count: int,
    ) -> Sample:
        name = await self.session.scalar(
            sa.select(Registration.full_name)
            .where(*conditions, Registration.language == language)
            .order_by(Registration.created_at, Registration.id)
            .limit(1)
        )
        text_language, text = pick_text(draft.texts, language, event.base_language)
        values = {
            "name": name or "",
            "link": self.settings.base_url + PREVIEW_LINK_SUFFIX,
            "event": event.text("title", language),
        }
        subject, body = render_text(text, values)
        return Sample(language, count, text_language, name or "", subject, body)

    # --- sending ------------------------------------------------------------------------------------

    async def send(self, principal: Principal, event: Event, draft: MessageDraft) -> MassMessage | None:
        """Queue the message for every recipient, with its audit entry; commits.

        Returns None (and writes nothing) when nobody matches. The same draft key sent twice sends once.
        """
        key = draft.key or uuid7()
        event_id = event.id
        existing = await self.session.get(MassMessage, key)
        if existing is not None:
            return existing
        recipients = await self._recipients(event_id, draft.filters)
        if not recipients:
            return None
        message = MassMessage(
            id=key,
            event_id=event_id,
            texts=draft.texts,
            filters=draft.filters.as_json(),
            created_by_id=principal.user_id,
            recipient_count=len(recipients),
        )
        self.session.add(message)
        try:
            await self.session.flush()
        except IntegrityError:  # the same confirmation, submitted twice at once: the other one sends
            await self.session.rollback()
            return await self.session.get(MassMessage, key)
        message.recipient_count = await self._queue(message, recipients)
        record(
            self.session,
            principal,
            "message_sent",
            "mass_message",
            message.id,
            event_id,
            recipients=message.recipient_count,
            subject=pick_text(draft.texts, event.base_language, event.base_language)[1]["subject"],
            filters=message.filters,
            languages=sorted(draft.texts),
        )
        await self.session.commit()
        return message

    async def _recipients(self, event_id: UUID, filters: RecipientFilter) -> list[OutboxRecipient]:
        result = await self.session.execute(
            sa.select(*RECIPIENT_COLUMNS)
            .where(*recipient_conditions(event_id, filters))
            .order_by(Registration.id)
        )
        return recipients_from(result.all())

    async def _queue(self, message: MassMessage, recipients: list[OutboxRecipient]) -> int:
        now = utcnow()
        domain = message_id_domain(self.settings)
        rows = [
            outbox_row(
                MailKind.MASS_MESSAGE,
                recipient,
                domain=domain,
                now=now,
                dedupe_key=f"message:{message.id}:{recipient.registration_id}",
                mass_message_id=message.id,
            )
            for recipient in recipients
        ]
        return await insert_outbox_rows(self.session, rows)


def mass_message_hook(settings: Settings) -> ContextHook:
    """Composer hook for ``MailKind.MASS_MESSAGE``: the text in the recipient's language, filled in."""

    async def hook(
        session: AsyncSession, message: OutboxMessage, registration: Registration
    ) -> dict[str, Any]:
        mass = await session.get(MassMessage, message.mass_message_id) if message.mass_message_id else None
        if mass is None:
            raise LookupError(f"outbox row {message.id} has no message to send")
        event = registration.event
        _, text = pick_text(mass.texts, registration.language, event.base_language)
        values = {
            "name": registration.full_name,
            "link": manage_url(settings, registration),
            "event": event.text("title", registration.language),
        }
        subject, body = render_text(text, values)
        return {"message_subject": subject, "message_body": body}

    return hook
