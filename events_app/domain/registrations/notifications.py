"""The emails a registration causes, built by the outbox worker in the registrant's own language."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, cast
from urllib.parse import urlsplit
from uuid import UUID

import sqlalchemy as sa
from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.db.models import (
    ACTIVE_REGISTRATION_STATUSES,
    Event,
    EventStatus,
    OutboxMessage,
    Registration,
    RegistrationStatus,
)
from events_app.domain.attendance.services import certificate_mail_hook
from events_app.domain.events.schemas import EventView, location_text, present_event
from events_app.domain.registrations.services import MailKind, waitlist_position
from events_app.domain.registrations.views import status_label
from events_app.lib.i18n import current_language, force_locale, gettext
from events_app.lib.ical import InviteData, InviteMethod, build_calendar
from events_app.lib.mail import Attachment, OutgoingMail, RenderedMail, render_message
from events_app.lib.outbox import SkipMessage
from events_app.lib.security import TokenPurpose, derive_token
from events_app.lib.templating import render_block
from events_app.lib.tickets import ticket_qr_png
from events_app.lib.zones import country_zone
from events_app.settings import Settings

QR_CONTENT_ID = "ticket-qr@events-app"
_BATCH_KEY = "events_app.mail_batch"
#: At most this many registrations in one "resend my link" mail.
MAX_LINKS_LISTED = 50


def registration_uid(registration: Registration) -> str:
    """The calendar UID of one person's invite: stable for the life of the registration."""
    return f"registration-{registration.id}@events-app"


def manage_url(settings: Settings, registration: Registration) -> str:
    token = derive_token(
        settings.secret_key, TokenPurpose.MANAGE, registration.id, registration.manage_token_version
    )
    return f"{settings.base_url}/my/{token}"


def join_link(settings: Settings, registration: Registration) -> str | None:
    """The personal join link (``/j/<token>``) of a confirmed registrant of an online or hybrid event.

    It redirects to the meeting and records the click; the meeting URL itself never goes out by mail.
    """
    event = registration.event
    if not (event.kind.is_online and event.join_url and registration.status is RegistrationStatus.CONFIRMED):
        return None
    token = derive_token(settings.secret_key, TokenPurpose.JOIN, registration.id, 1)
    return f"{settings.base_url}/j/{token}"


def ticket_code(settings: Settings, registration: Registration) -> str:
    return derive_token(
        settings.secret_key, TokenPurpose.TICKET, registration.id, registration.ticket_version
    )


def invite_for(settings: Settings, registration: Registration, sequence: int) -> InviteData:
    """The invite as it stands now, in the current language."""
    event = registration.event
    link = manage_url(settings, registration)
    description = gettext("Your registration, ticket and cancellation: %(url)s") % {"url": link}
    if personal_join := join_link(settings, registration):
        description += "\n" + gettext("Join online: %(url)s") % {"url": personal_join}
    cancelled = registration.status is RegistrationStatus.CANCELLED or event.status is EventStatus.CANCELLED
    return InviteData(
        uid=registration_uid(registration),
        sequence=sequence,
        summary=event.text("title", registration.language),
        description=description,
        location=location_text(event),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        timezone=event.timezone,
        organizer_email=event.contact_email,
        organizer_name=event.contact_name or event.contact_email,
        attendee_email=registration.email,
        attendee_name=registration.full_name,
        url=link,
        cancelled=cancelled,
    )


def calendar_for(settings: Settings, registration: Registration, sequence: int) -> tuple[bytes, InviteMethod]:
    """The invite as it stands: REQUEST while confirmed, CANCEL once the person or the event is off."""
    cancelled = (
        registration.status is not RegistrationStatus.CONFIRMED
        or registration.event.status is EventStatus.CANCELLED
    )
    method = InviteMethod.CANCEL if cancelled else InviteMethod.REQUEST
    return build_calendar(invite_for(settings, registration, sequence), method), method


#: Extra template context for one kind of mail, looked up when the message is built.
ContextHook = Callable[[AsyncSession, OutboxMessage, Registration], Awaitable[dict[str, Any]]]

#: Kinds that carry the calendar invite (REQUEST, or CANCEL once the registration or event is off).
_CALENDAR_KINDS = {
    MailKind.CONFIRMED,
    MailKind.ALREADY_REGISTERED,
    MailKind.CANCELLED,
    MailKind.EVENT_UPDATED,
    MailKind.EVENT_CANCELLED,
    MailKind.REJECTED,
}
#: Kinds that make sense only while the person holds a seat: a reminder or a confirmation queued before
#: a cancellation is not sent after it.
_ONLY_WHILE_CONFIRMED = {MailKind.CONFIRMED, MailKind.REMINDER, MailKind.EVENT_UPDATED}
#: Kinds that carry the QR ticket (only while the registration is confirmed).
_TICKET_KINDS = {MailKind.CONFIRMED, MailKind.ALREADY_REGISTERED, MailKind.EVENT_UPDATED, MailKind.REMINDER}


@dataclass(slots=True)
class _Batch:
    """What :meth:`RegistrationMailComposer.preload` loaded, kept in the ``info`` of its session."""

    registrations: dict[UUID, Registration]
    views: dict[tuple[UUID, str, str | None], EventView] = field(default_factory=dict)


class RegistrationMailComposer:
    """Turns an outbox row into a MIME message (the ``Composer`` the outbox worker is given).

    Every kind is rendered from ``emails/<kind>.txt`` (blocks ``subject`` and ``body``) and
    ``emails/<kind>.html``, in the recipient's language, with the row's payload in the context.
    """

    def __init__(
        self, settings: Settings, environment: Environment, hooks: dict[MailKind, ContextHook] | None = None
    ) -> None:
        self._settings = settings
        self._environment = environment
        self._hooks = dict(hooks or {})

    def add_hook(self, kind: MailKind, hook: ContextHook) -> None:
        self._hooks[kind] = hook

    async def preload(self, session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        """Load the registrations (and their events) of a batch of rows in one query.

        :meth:`render` then takes them from the session without a query, and the messages rendered in
        that session share the event's formatted view per language and zone (a batch lasts seconds).
        """
        for message in messages:
            if message.registration_id is None and message.kind == MailKind.LINKS.value:
                await _links_addressee(session, message)
        ids = {message.registration_id for message in messages if message.registration_id is not None}
        registrations: list[Registration] = []
        if ids:
            result = await session.execute(sa.select(Registration).where(Registration.id.in_(ids)))
            registrations = list(result.unique().scalars())
        # Held here: the session's identity map alone keeps no object alive.
        session.info[_BATCH_KEY] = _Batch({registration.id: registration for registration in registrations})

    async def __call__(self, session: AsyncSession, message: OutboxMessage) -> EmailMessage:
        """The message as the email package reads it (for callers that look at its headers)."""
        return (await self.render(session, message)).parsed()

    async def render(self, session: AsyncSession, message: OutboxMessage) -> RenderedMail:
        """The message of an outbox row, ready to send; raises :class:`SkipMessage` when it no longer
        applies."""
        batch = session.info.get(_BATCH_KEY)
        if message.registration_id is None and message.kind == MailKind.LINKS.value:
            if batch is None:  # not preloaded, which looks the address up
                await _links_addressee(session, message)
            if message.registration_id is None:
                raise SkipMessage("no active registration for this address", forget_recipient=True)
        if message.registration_id is None:
            raise LookupError(f"outbox row {message.id} has no registration")
        registration = batch.registrations.get(message.registration_id) if batch is not None else None
        if registration is None:
            registration = await session.get(Registration, message.registration_id)
        if registration is None:
            raise LookupError(f"registration {message.registration_id} is gone")
        if registration.anonymised_at is not None:
            registration = _erased_stand_in(message, registration)
        kind = MailKind(message.kind)
        if kind in _ONLY_WHILE_CONFIRMED and registration.status is not RegistrationStatus.CONFIRMED:
            raise SkipMessage(f"the registration is {registration.status.value} now")
        if kind is MailKind.MASS_MESSAGE and not registration.is_active:
            raise SkipMessage(f"the registration is {registration.status.value} now")
        with force_locale(message.language):
            extra = await self._hooks[kind](session, message, registration) if kind in self._hooks else {}
            return await self._compose(kind, message, registration, extra, batch)

    async def _compose(
        self,
        kind: MailKind,
        message: OutboxMessage,
        registration: Registration,
        extra: dict[str, Any],
        batch: _Batch | None,
    ) -> RenderedMail:
        """The message, built in a few steps that each give the event loop a turn: the outbox worker
        sends and marks the message before this one meanwhile."""
        event = registration.event
        sequence = int(message.payload.get("sequence", registration.invite_sequence))
        confirmed = registration.status is RegistrationStatus.CONFIRMED
        with_ticket = kind in _TICKET_KINDS and confirmed and event.status is not EventStatus.CANCELLED
        attachments: list[Attachment] = extra.pop("attachments", [])  # a hook may add files
        context = {
            **self._context(kind, registration, event, with_ticket, batch),
            "payload": message.payload,
            **extra,
        }
        template = f"emails/{kind.value}"
        mail = OutgoingMail(
            sender=_address(self._settings.mail_from, self._settings.programme_name),
            recipient=_address(registration.email, registration.full_name),
            reply_to=_address(event.contact_email, event.contact_name) if event.contact_email else None,
            subject=render_block(self._environment, f"{template}.txt", "subject", context),
            text=render_block(self._environment, f"{template}.txt", "body", context),
            html=self._environment.get_template(f"{template}.html").render(context),
            message_id=message.message_id,
            language=message.language,
        )
        await asyncio.sleep(0)
        if self._sends_calendar(kind, registration, message):
            self._attach_invite(mail, registration, sequence)
            await asyncio.sleep(0)
        if with_ticket:
            self._attach_ticket(mail, registration)
            await asyncio.sleep(0)
        mail.attachments.extend(attachments)
        return render_message(mail)

    @staticmethod
    def _sends_calendar(kind: MailKind, registration: Registration, message: OutboxMessage) -> bool:
        if kind not in _CALENDAR_KINDS:
            return False
        if kind in (MailKind.REJECTED, MailKind.EVENT_CANCELLED):
            # Only those who held an invite get a CANCEL (not the pending or waitlisted).
            return bool(message.payload.get("had_invite"))
        if kind in (MailKind.ALREADY_REGISTERED, MailKind.EVENT_UPDATED):
            return registration.status is RegistrationStatus.CONFIRMED
        return True

    def _context(
        self,
        kind: MailKind,
        registration: Registration,
        event: Event,
        with_ticket: bool,
        batch: _Batch | None,
    ) -> dict[str, Any]:
        # The registrant's own clock too, when their country keeps one time (see country_zone).
        zone = country_zone(registration.country, event.starts_at)
        key = (event.id, current_language(), zone)
        view = batch.views.get(key) if batch is not None else None
        if view is None:
            view = present_event(event, zone)
            if batch is not None:
                batch.views[key] = view
        show_join = event.kind.is_online and registration.status is RegistrationStatus.CONFIRMED
        return {
            "kind": kind.value,
            "name": registration.full_name,
            "status": registration.status.value,
            "event": view,
            "location": location_text(event),
            "manage_url": manage_url(self._settings, registration),
            "join_url": join_link(self._settings, registration) if show_join else None,
            "has_ticket": with_ticket,
            "qr_cid": QR_CONTENT_ID,
            "programme_name": self._settings.programme_name,
            "contact_email": event.contact_email,
        }

    def _attach_invite(self, mail: OutgoingMail, registration: Registration, sequence: int) -> None:
        calendar, method = calendar_for(self._settings, registration, sequence)
        mail.calendar = calendar
        mail.calendar_method = method.value
        filename = "cancel.ics" if method is InviteMethod.CANCEL else "invite.ics"
        mail.attachments.append(
            Attachment(filename, calendar, "application", "ics", {"method": method.value})
        )

    def _attach_ticket(self, mail: OutgoingMail, registration: Registration) -> None:
        png = ticket_qr_png(ticket_code(self._settings, registration))
        mail.inline_images[QR_CONTENT_ID] = Attachment("ticket.png", png, "image", "png")
        mail.attachments.append(Attachment("ticket.png", png, "image", "png"))


class _ErasedPerson:
    """An erased registration as the cancellation of its "erase my data" still needs it: the address
    and name come from that one outbox row's payload, never from (nor into) the blanked row."""

    def __init__(self, registration: Registration, email: str, full_name: str) -> None:
        self._registration = registration
        self.email = email
        self.full_name = full_name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registration, name)


def _erased_stand_in(message: OutboxMessage, registration: Registration) -> Registration:
    """Only the erasure's own cancellation goes out once the data is erased; anything else is skipped."""
    person = message.payload.get("erased_person")
    if message.kind != MailKind.CANCELLED.value or not isinstance(person, dict) or not person.get("email"):
        raise SkipMessage("the person's data was erased")
    return cast(Registration, _ErasedPerson(registration, str(person["email"]), str(person.get("name", ""))))


def _address(email: str, name: str) -> Address:
    username, _, domain = email.rpartition("@")
    return Address(display_name=name, username=username, domain=domain)


def message_id_domain(settings: Settings) -> str:
    """The right-hand side of our Message-IDs: the site's host name."""
    return urlsplit(settings.base_url).hostname or "events-app.invalid"


async def waitlist_context(
    session: AsyncSession, message: OutboxMessage, registration: Registration
) -> dict[str, Any]:
    return {"position": await waitlist_position(session, registration)}


async def _links_addressee(session: AsyncSession, message: OutboxMessage) -> None:
    """Tie a "resend my links" row, queued for a typed address, to its newest active registration.

    The request queues the row whether the address is known or not, so its timing tells nothing; the
    decision is taken here. An unknown address stays without registration: the row is skipped and
    forgets the address. The newest registration carries the mail (its language); the list itself is
    built by :func:`links_hook`.
    """
    found = (
        await session.execute(
            sa.select(Registration.id, Registration.language)
            .where(
                Registration.email_normalized == message.recipient,
                Registration.status.in_(ACTIVE_REGISTRATION_STATUSES),
            )
            .order_by(Registration.created_at.desc(), Registration.id.desc())
            .limit(1)
        )
    ).first()
    if found is not None:
        message.registration_id, message.language = found[0], found[1]


def links_hook(settings: Settings) -> ContextHook:
    """The "resend my link" mail: every active registration of the address, each with its link."""

    async def links_context(
        session: AsyncSession, message: OutboxMessage, registration: Registration
    ) -> dict[str, Any]:
        result = await session.execute(
            sa.select(Registration)
            .join(Registration.event)
            .where(
                Registration.email_normalized == registration.email_normalized,
                Registration.status.in_(ACTIVE_REGISTRATION_STATUSES),
            )
            .order_by(Event.starts_at, Registration.id)
            .limit(MAX_LINKS_LISTED)
        )
        registrations = result.unique().scalars().all()
        if not registrations:
            raise SkipMessage("no active registration left for this address")
        return {
            "registrations": [
                {
                    "event": present_event(item.event),
                    "status_label": status_label(item.status),
                    "manage_url": manage_url(settings, item),
                }
                for item in registrations
            ]
        }

    return links_context


def make_composer(settings: Settings, environment: Environment) -> RegistrationMailComposer:
    hooks: dict[MailKind, ContextHook] = {
        MailKind.WAITLISTED: waitlist_context,
        MailKind.CERTIFICATE: certificate_mail_hook(settings),
        MailKind.LINKS: links_hook(settings),
    }
    return RegistrationMailComposer(settings, environment, hooks=hooks)
