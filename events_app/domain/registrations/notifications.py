"""The emails a registration causes, built by the outbox worker in the registrant's own language."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.db.models import Event, OutboxMessage, Registration, RegistrationStatus
from events_app.domain.events.schemas import location_text, present_event
from events_app.domain.registrations.services import MailKind
from events_app.lib.i18n import force_locale, gettext
from events_app.lib.ical import InviteData, InviteMethod, build_calendar
from events_app.lib.mail import Attachment, OutgoingMail, build_message
from events_app.lib.security import TokenPurpose, derive_token
from events_app.lib.templating import render_block
from events_app.lib.tickets import ticket_qr_png
from events_app.settings import Settings

QR_CONTENT_ID = "ticket-qr@events-app"


def registration_uid(registration: Registration) -> str:
    """The calendar UID of one person's invite: stable for the life of the registration."""
    return f"registration-{registration.id}@events-app"


def manage_url(settings: Settings, registration: Registration) -> str:
    token = derive_token(
        settings.secret_key, TokenPurpose.MANAGE, registration.id, registration.manage_token_version
    )
    return f"{settings.base_url}/my/{token}"


def ticket_code(settings: Settings, registration: Registration) -> str:
    return derive_token(
        settings.secret_key, TokenPurpose.TICKET, registration.id, registration.ticket_version
    )


def invite_for(settings: Settings, registration: Registration, sequence: int) -> InviteData:
    """The invite as it stands now, in the current language."""
    event = registration.event
    link = manage_url(settings, registration)
    description = gettext("Your registration, ticket and cancellation: %(url)s") % {"url": link}
    if event.kind.is_online and registration.status is RegistrationStatus.CONFIRMED and event.join_url:
        description += "\n" + gettext("Join online: %(url)s") % {"url": event.join_url}
    cancelled = registration.status is RegistrationStatus.CANCELLED or event.status.value == "cancelled"
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
    cancelled = registration.status in (RegistrationStatus.CANCELLED, RegistrationStatus.REJECTED)
    method = InviteMethod.CANCEL if cancelled else InviteMethod.REQUEST
    return build_calendar(invite_for(settings, registration, sequence), method), method


class RegistrationMailComposer:
    """Turns an outbox row into a MIME message (the ``Composer`` the outbox worker is given)."""

    def __init__(self, settings: Settings, environment: Environment) -> None:
        self._settings = settings
        self._environment = environment

    async def __call__(self, session: AsyncSession, message: OutboxMessage) -> EmailMessage:
        if message.registration_id is None:
            raise LookupError(f"outbox row {message.id} has no registration")
        registration = await session.get(Registration, message.registration_id)
        if registration is None:
            raise LookupError(f"registration {message.registration_id} is gone")
        with force_locale(message.language):
            return self._compose(message, registration)

    def _compose(self, message: OutboxMessage, registration: Registration) -> EmailMessage:
        kind = MailKind(message.kind)
        event = registration.event
        sequence = int(message.payload.get("sequence", registration.invite_sequence))
        context = self._context(kind, registration, event)
        mail = OutgoingMail(
            sender=_address(self._settings.mail_from, self._settings.programme_name),
            recipient=_address(registration.email, registration.full_name),
            reply_to=_address(event.contact_email, event.contact_name) if event.contact_email else None,
            subject=render_block(self._environment, f"emails/{kind.value}.txt", "subject", context),
            text=render_block(self._environment, f"emails/{kind.value}.txt", "body", context),
            html=self._environment.get_template(f"emails/{kind.value}.html").render(context),
            message_id=message.message_id,
            language=message.language,
        )
        self._attach_invite(mail, registration, sequence)
        if kind is not MailKind.CANCELLED:
            self._attach_ticket(mail, registration)
        return build_message(mail)

    def _context(self, kind: MailKind, registration: Registration, event: Event) -> dict[str, Any]:
        view = present_event(event)
        show_join = event.kind.is_online and registration.status is RegistrationStatus.CONFIRMED
        return {
            "kind": kind.value,
            "name": registration.full_name,
            "event": view,
            "location": location_text(event),
            "manage_url": manage_url(self._settings, registration),
            "join_url": event.join_url if show_join and event.join_url else None,
            "has_ticket": kind is not MailKind.CANCELLED,
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


def _address(email: str, name: str) -> Address:
    username, _, domain = email.rpartition("@")
    return Address(display_name=name, username=username, domain=domain)


def message_id_domain(settings: Settings) -> str:
    """The right-hand side of our Message-IDs: the site's host name."""
    return urlsplit(settings.base_url).hostname or "events-app.invalid"
