"""What the attendee pages and the organiser API are given to show (labels already translated)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from events_app.db.models import (
    Event,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationChange,
    RegistrationStatus,
    Sector,
)
from events_app.domain.accounts.permissions import Principal
from events_app.domain.attendees import services
from events_app.domain.attendees.exports import RowLabels
from events_app.domain.attendees.schemas import (
    DEFAULT_ORDER,
    DEFAULT_SORT,
    AttendeeQuery,
    RawAttendeeQuery,
    RegistrationListOut,
    RegistrationOut,
)
from events_app.domain.attendees.services import AttendeePage, Decision
from events_app.domain.events.schemas import present_event
from events_app.domain.registrations.services import MailKind, waitlist_position
from events_app.domain.registrations.views import status_label
from events_app.lib.i18n import LANGUAGE_NAMES, N_, SUPPORTED_LANGUAGES, gettext, ngettext, pgettext

MAIL_KIND_LABELS = {
    MailKind.CONFIRMED.value: N_("Registration confirmed"),
    MailKind.ALREADY_REGISTERED.value: N_("Already registered"),
    MailKind.CANCELLED.value: N_("Registration cancelled"),
    MailKind.PENDING.value: N_("Registration pending review"),
    MailKind.WAITLISTED.value: N_("On the waiting list"),
    MailKind.REJECTED.value: N_("Registration not accepted"),
    MailKind.EVENT_UPDATED.value: N_("Event updated"),
    MailKind.EVENT_CANCELLED.value: N_("Event cancelled"),
    MailKind.REMINDER.value: N_("Reminder"),
    MailKind.MASS_MESSAGE.value: N_("Message from the organisers"),
}

SORT_LABELS = {
    "created_at": N_("Registration date"),
    "full_name": N_("Name"),
    "country": N_("Country"),
    "status": N_("Status"),
}

DECISION_LABELS = {
    Decision.APPROVE: N_("Approve"),
    Decision.REJECT: N_("Reject"),
    Decision.PROMOTE: N_("Promote from the waiting list"),
}


def mail_status_label(status: OutboxStatus) -> str:
    labels = {
        OutboxStatus.QUEUED: pgettext("email status", "Queued"),
        OutboxStatus.SENDING: pgettext("email status", "Sending"),
        OutboxStatus.SENT: pgettext("email status", "Sent"),
        OutboxStatus.FAILED: pgettext("email status", "Failed"),
    }
    return labels[status]


# --- the list -------------------------------------------------------------------------------------


def _form_values(raw: RawAttendeeQuery) -> dict[str, Any]:
    return {
        "q": raw.q,
        "status": set(raw.status),
        "country": {code.upper() for code in raw.country},
        "sector": set(raw.sector),
        "language": set(raw.language),
        "sort": raw.sort or DEFAULT_SORT,
        "order": raw.order or DEFAULT_ORDER,
    }


def _filter_options(labels: RowLabels, countries: list[str], chosen: set[str]) -> dict[str, Any]:
    codes = sorted(set(countries) | {code for code in chosen if len(code) == 2}, key=labels.country)
    return {
        "statuses": [(status.value, labels.statuses[status]) for status in RegistrationStatus],
        "sectors": [(sector.value, labels.sectors[sector]) for sector in Sector],
        "languages": [(code, LANGUAGE_NAMES[code]) for code in SUPPORTED_LANGUAGES],
        "countries": [(code, labels.country(code)) for code in codes],
        "sorts": [(key, gettext(label)) for key, label in SORT_LABELS.items()],
        "orders": [("asc", gettext("Ascending")), ("desc", gettext("Descending"))],
    }


def _page_links(base: str, query: AttendeeQuery, page: AttendeePage) -> dict[str, str | None]:
    def link(cursor: str | None) -> str:
        query_string = query.query_string(cursor)
        return f"{base}?{query_string}" if query_string else base

    return {
        "next_url": link(page.next_cursor) if page.next_cursor else None,
        "previous_url": link(page.previous_cursor) if page.previous_cursor else None,
        "first_url": link(None) if query.cursor is not None else None,
        "return_query": query.query_string(query.cursor.encode() if query.cursor else None),
    }


def _export_links(base: str, query: AttendeeQuery) -> dict[str, str]:
    filters = query.query_string()
    suffix = f"?{filters}" if filters else ""
    return {"csv_url": f"{base}.csv{suffix}", "xlsx_url": f"{base}.xlsx{suffix}"}


async def list_context(
    session: AsyncSession,
    principal: Principal,
    event: Event,
    raw: RawAttendeeQuery,
    query: AttendeeQuery | None,
    page: AttendeePage | None,
) -> dict[str, Any]:
    """The attendee page; ``query`` and ``page`` are None when the filters were not valid."""
    labels = RowLabels.for_event(event)
    values = _form_values(raw)
    countries = await services.countries_in_scope(session, principal, event.id)
    base = f"/manage/events/{event.id}/attendees"
    context: dict[str, Any] = {
        "principal": principal,
        "event": present_event(event),
        "event_id": str(event.id),
        "counts": await services.event_counts(session, event),
        "values": values,
        "options": _filter_options(labels, countries, values["country"]),
        "error_for": {},
        "notice": [],
        "rows": [labels.present(row) for row in page.rows] if page else [],
        "total": page.total if page else None,
        "list_url": base,
        "bulk_decisions": [
            (decision.value, gettext(DECISION_LABELS[decision])) for decision in services.BULK_DECISIONS
        ],
        "next_url": None,
        "previous_url": None,
        "first_url": None,
        "return_query": "",
        "csv_url": None,
        "xlsx_url": None,
    }
    if query is not None and page is not None:
        context.update(_page_links(base, query, page))
        context.update(_export_links(base, query))
    return context


def _count(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


def bulk_notice(notice: str | None, done: str | None, skipped: str | None) -> list[str]:
    """What a bulk decision did, as shown after the redirect back to the list."""
    messages = []
    count = _count(done)
    if notice == Decision.APPROVE.value:
        messages.append(ngettext("%(num)d registration approved.", "%(num)d registrations approved.", count))
    elif notice == Decision.REJECT.value:
        messages.append(ngettext("%(num)d registration rejected.", "%(num)d registrations rejected.", count))
    else:
        return []
    messages = [message % {"num": count} for message in messages]
    left_out = _count(skipped)
    if left_out:
        skipped_text = ngettext(
            "%(num)d registration was left as it was: the decision did not apply to it.",
            "%(num)d registrations were left as they were: the decision did not apply to them.",
            left_out,
        )
        messages.append(skipped_text % {"num": left_out})
    return messages


# --- one registrant -------------------------------------------------------------------------------


def _registration(registration: Registration, labels: RowLabels) -> dict[str, Any]:
    return {
        "id": str(registration.id),
        "full_name": registration.full_name,
        "email": registration.email,
        "country": labels.country(registration.country),
        "institution": registration.institution,
        "position": registration.position,
        "sector": labels.sectors[registration.sector],
        "language": LANGUAGE_NAMES.get(registration.language, registration.language),
        "status": registration.status.value,
        "status_label": labels.statuses[registration.status],
        "registered_iso": labels.iso_time(registration.created_at),
        "registered_text": labels.local_text(registration.created_at),
    }


def _change(change: RegistrationChange, labels: RowLabels) -> dict[str, Any]:
    return {
        "when_iso": labels.iso_time(change.created_at),
        "when_text": labels.local_text(change.created_at),
        "from_label": labels.statuses[change.from_status] if change.from_status else None,
        "to_label": labels.statuses[change.to_status],
        "actor": change.actor_label,
        "note": change.note,
    }


def _mail(message: OutboxMessage, labels: RowLabels) -> dict[str, Any]:
    kind = MAIL_KIND_LABELS.get(message.kind)
    return {
        "id": str(message.id),
        "kind_label": gettext(kind) if kind else message.kind,
        "status": message.status.value,
        "status_label": mail_status_label(message.status),
        "failed": message.status is OutboxStatus.FAILED,
        "attempts": message.attempts,
        "last_error": message.last_error or "",
        "queued_iso": labels.iso_time(message.created_at),
        "queued_text": labels.local_text(message.created_at),
        "sent_iso": labels.iso_time(message.sent_at) if message.sent_at else None,
        "sent_text": labels.local_text(message.sent_at) if message.sent_at else None,
    }


async def registrant_context(
    session: AsyncSession, principal: Principal, registration: Registration
) -> dict[str, Any]:
    event = registration.event
    labels = RowLabels.for_event(event)
    history = await services.status_history(session, registration.id)
    mails = await services.mail_sent_to(session, registration.id)
    can_decide = principal.can_decide(registration)
    return {
        "principal": principal,
        "event": present_event(event),
        "event_id": str(event.id),
        "registration": _registration(registration, labels),
        "waitlist_position": await waitlist_position(session, registration),
        "history": [_change(change, labels) for change in history],
        "mails": [_mail(message, labels) for message in mails],
        "can_resend": can_decide,
        "actions": [
            (decision.value, gettext(DECISION_LABELS[decision]))
            for decision in Decision
            if can_decide and decision.applies_to(registration.status)
        ],
        "notice": None,
        "error": None,
    }


def registrant_notice(notice: str | None) -> str | None:
    notices = {
        Decision.APPROVE.value: N_("The registration was approved."),
        Decision.REJECT.value: N_("The registration was rejected. The person was told by email."),
        Decision.PROMOTE.value: N_("The registration was promoted from the waiting list."),
        "resent": N_("The email is queued to be sent again."),
    }
    message = notices.get(notice or "")
    return gettext(message) if message else None


def decision_error(registration: Registration, decision: Decision) -> str:
    """Why a decision did not apply, read after the refusal (the registration as it is now)."""
    if decision is Decision.APPROVE and registration.status is RegistrationStatus.PENDING_APPROVAL:
        return gettext("The event is full and has no waiting list, so this registration cannot be approved.")
    return gettext("This decision does not apply to the registration: its status is now “%(status)s”.") % {
        "status": status_label(registration.status)
    }


# --- the API --------------------------------------------------------------------------------------


def registration_list_out(page: AttendeePage) -> RegistrationListOut:
    items = [
        RegistrationOut(
            id=row.id,
            event_id=row.event_id,
            full_name=row.full_name,
            email=row.email,
            country=row.country,
            institution=row.institution,
            position=row.position,
            sector=row.sector.value,
            language=row.language,
            status=row.status.value,
            registered_at=row.created_at,
        )
        for row in page.rows
    ]
    return RegistrationListOut(items=items, total=page.total, next_cursor=page.next_cursor)
