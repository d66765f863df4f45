"""The words a scanner shows: result titles and messages, in the request's language.

The same texts are given to the scanner page's script (as ``data-messages``) so an offline decision
reads exactly like an online one; ``{time}``, ``{device}``, ``{count}`` and ``{name}`` are filled in there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from events_app.db.models import Event, Registration, RegistrationStatus
from events_app.domain.accounts.permissions import Principal
from events_app.domain.checkin.schemas import ScanAnswer, ScanResult, SearchHit, StatsOut
from events_app.domain.events.schemas import present_event
from events_app.domain.registrations.views import ApiError, status_label
from events_app.lib.countries import country_name
from events_app.lib.i18n import N_, current_language, format_time_in_zone, gettext, pgettext

if TYPE_CHECKING:
    from events_app.domain.checkin.services import LiveCheckIn

_TITLES = {
    ScanResult.OK: N_("Checked in"),
    ScanResult.ALREADY_CHECKED_IN: N_("Already checked in"),
    ScanResult.INVALID: N_("Ticket not valid"),
    ScanResult.OTHER_EVENT: N_("Ticket for another event"),
    ScanResult.CANCELLED: N_("Registration cancelled"),
    ScanResult.NOT_APPROVED: N_("Not approved yet"),
    ScanResult.WAITLISTED: N_("On the waiting list"),
}
_MESSAGES = {
    ScanResult.OK: N_("Welcome! The person may enter."),
    ScanResult.INVALID: N_("This is not a valid ticket for this event. Look the person up by name instead."),
    ScanResult.OTHER_EVENT: N_("This ticket is for another event: no entry with it here."),
    ScanResult.CANCELLED: N_("This registration was cancelled: the ticket is no longer valid."),
    ScanResult.NOT_APPROVED: N_("This registration is still waiting for approval: no entry yet."),
    ScanResult.WAITLISTED: N_("This person is on the waiting list and has no confirmed seat."),
}
MSG_REJECTED = N_("This registration was not accepted: the ticket is not valid.")
MSG_ALREADY = N_("Already checked in at %(time)s on “%(device)s”. Do not let the ticket in twice.")
MSG_UNDONE = N_("Check-in undone: %(name)s is no longer checked in.")
MSG_NOT_CHECKED_IN = N_("There is no check-in to undo.")
MSG_NONCE_REUSED = N_("This scan id was already used at another event.")
MSG_TOO_MANY = N_("Too many scans from this device. Wait a minute and scan again.")


def result_title(result: ScanResult) -> str:
    return gettext(_TITLES[result])


def result_message(
    result: ScanResult, status: RegistrationStatus | None, existing: LiveCheckIn | None, zone: str
) -> str:
    if result is ScanResult.ALREADY_CHECKED_IN and existing is not None:
        time = format_time_in_zone(existing.scanned_at, zone)
        return gettext(MSG_ALREADY) % {"time": time, "device": existing.device}
    if result is ScanResult.CANCELLED and status is RegistrationStatus.REJECTED:
        return gettext(MSG_REJECTED)
    return gettext(_MESSAGES[result])


def undo_message(name: str) -> str:
    return gettext(MSG_UNDONE) % {"name": name}


def _ui_strings() -> dict[str, str]:
    """Everything else the scanner script writes on the page."""
    return {
        "ready": gettext("Ready to scan."),
        "starting": gettext("Starting the camera…"),
        "camera_failed": gettext("The camera could not start: %(error)s") % {"error": "{error}"},
        "camera_insecure": gettext(
            "The camera works only on a secure (HTTPS) page. You can still check people in by name."
        ),
        "camera_missing": gettext("This browser cannot use a camera. You can still check people in by name."),
        "offline": gettext("Offline: tickets are checked against the list downloaded at %(time)s.")
        % {"time": "{time}"},
        "offline_never": gettext("Offline, and no list of tickets has been downloaded on this device yet."),
        "queued": gettext("Scans waiting to be sent: %(count)s") % {"count": "{count}"},
        "synced": gettext("All offline scans were sent."),
        "conflict": gettext("%(name)s: %(message)s") % {"name": "{name}", "message": "{message}"},
        "undone": gettext(MSG_UNDONE) % {"name": "{name}"},
        "not_checked_in": gettext(MSG_NOT_CHECKED_IN),
        "undone_offline": gettext("The offline check-in of %(name)s was removed before being sent.")
        % {"name": "{name}"},
        "no_results": gettext("Nobody found."),
        "search_short": gettext("Type at least two letters."),
        "check_in_name": gettext("Check in %(name)s") % {"name": "{name}"},
        "people_found": gettext("People found"),
        "col_name": gettext("Name"),
        "col_institution": gettext("Institution"),
        "col_status": gettext("Status"),
        "col_checkin": gettext("Check-in"),
        "checked_in_mark": gettext("Checked in"),
        "login_again": gettext("Your session has ended. Log in again to keep scanning."),
        "too_many": gettext(MSG_TOO_MANY),
        "error": gettext("Something went wrong. Try again."),
        "device_needed": gettext("Name this device first."),
        "forget_confirm": gettext("Remove the downloaded list of tickets from this device?"),
        "forget_blocked": gettext("Some scans have not been sent yet; connect to the network first."),
        "forgotten": gettext("The list of tickets was removed from this device."),
    }


def scanner_messages(zone: str) -> dict[str, object]:
    """Titles and messages by result code, for the page's script (decisions taken offline)."""
    return {
        "titles": {result.value: result_title(result) for result in ScanResult},
        "results": {result.value: gettext(message) for result, message in _MESSAGES.items()},
        "rejected": gettext(MSG_REJECTED),
        "already": gettext(MSG_ALREADY) % {"time": "{time}", "device": "{device}"},
        "ui": _ui_strings(),
        "statuses": {status.value: status_text(status.value) for status in RegistrationStatus},
        "zone": zone,
    }


def messages_json(zone: str) -> str:
    return json.dumps(scanner_messages(zone), ensure_ascii=False)


def status_text(status: str) -> str:
    """A search result's status as the door sees it (the result it would give)."""
    refusals = {
        RegistrationStatus.CANCELLED.value: ScanResult.CANCELLED,
        RegistrationStatus.REJECTED.value: ScanResult.CANCELLED,
        RegistrationStatus.PENDING_APPROVAL.value: ScanResult.NOT_APPROVED,
        RegistrationStatus.WAITLISTED.value: ScanResult.WAITLISTED,
    }
    refusal = refusals.get(status)
    return result_title(refusal) if refusal else pgettext("registration status", "Confirmed")


def country_label(code: str) -> str:
    return country_name(code) if code else ""


MANUAL_DEVICE = N_("Check-in page")


@dataclass(frozen=True, slots=True)
class SearchRow:
    registration_id: str
    name: str
    institution: str
    country: str
    status: str
    status_label: str
    checked_in: bool


@dataclass(frozen=True, slots=True)
class OutcomeView:
    result: str
    tone: str
    title: str
    name: str
    detail: str
    message: str


def tone(result: str) -> str:
    """``ok`` (green), ``warn`` (already in: amber) or ``refused`` (red)."""
    if result == ScanResult.OK.value:
        return "ok"
    return "warn" if result == ScanResult.ALREADY_CHECKED_IN.value else "refused"


def _outcome(answer: ScanAnswer | ApiError | None) -> OutcomeView | None:
    if answer is None:
        return None
    if isinstance(answer, ApiError):
        return OutcomeView(
            result=answer.code, tone="refused", title="", name="", detail="", message=answer.detail
        )
    detail = ", ".join(part for part in (answer.institution, country_label(answer.country)) if part)
    return OutcomeView(
        result=answer.result,
        tone=tone(answer.result),
        title=result_title(ScanResult(answer.result)),
        name=answer.name,
        detail=detail,
        message=answer.message,
    )


def _rows(hits: list[SearchHit] | None) -> list[SearchRow] | None:
    if hits is None:
        return None
    return [
        SearchRow(
            registration_id=hit.registration_id,
            name=hit.name,
            institution=hit.institution,
            country=country_label(hit.country),
            status=hit.status,
            status_label=status_text(hit.status),
            checked_in=hit.checked_in,
        )
        for hit in hits
    ]


def scanner_context(
    principal: Principal,
    event: Event,
    q: str,
    hits: list[SearchHit] | None,
    counts: StatsOut,
    outcome: ScanAnswer | ApiError | None,
    nonce: str,
) -> dict[str, Any]:
    event_id = str(event.id)
    return {
        "principal": principal,
        "event_id": event_id,
        "event_title": event.text("title", current_language()),
        "q": q,
        "results": _rows(hits),
        "counts": counts,
        "outcome": _outcome(outcome),
        "nonce": nonce,
        "messages_json": messages_json(event.timezone),
        "urls": {
            "scan": "/api/checkin",
            "undo": "/api/checkin/undo",
            "manifest": f"/api/checkin/events/{event_id}/manifest",
            "stats": f"/api/checkin/events/{event_id}/stats",
            "search": f"/api/checkin/events/{event_id}/search",
        },
    }


def events_context(principal: Principal, events: Sequence[Event]) -> dict[str, Any]:
    return {"principal": principal, "events": [(event, present_event(event)) for event in events]}


def reissue_context(
    principal: Principal, registration: Registration, *, done: bool, refused: bool = False
) -> dict[str, Any]:
    return {
        "principal": principal,
        "registration_id": str(registration.id),
        "name": registration.full_name,
        "email": registration.email,
        "status_label": status_label(registration.status),
        "confirmed": registration.status is RegistrationStatus.CONFIRMED,
        "event_title": registration.event.text("title", current_language()),
        "done": done,
        "refused": refused,
    }
