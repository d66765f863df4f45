"""What the registration pages and API answers are given to show."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec

from events_app.db.models import Registration, RegistrationStatus, Sector
from events_app.domain.events.schemas import EventView, present_event
from events_app.domain.events.services import RegistrationState
from events_app.domain.registrations.schemas import SECTOR_LABELS, RegistrationInvalid
from events_app.domain.registrations.services import Outcome, RegistrationResult
from events_app.lib.countries import country_choices, country_name
from events_app.lib.i18n import LANGUAGE_NAMES, SUPPORTED_LANGUAGES, gettext, pgettext


def status_label(status: RegistrationStatus) -> str:
    """The status as a participant reads it (with a context: "registration" is feminine in es/pt/fr)."""
    labels = {
        RegistrationStatus.CONFIRMED: pgettext("registration status", "Confirmed"),
        RegistrationStatus.PENDING_APPROVAL: pgettext("registration status", "Pending approval"),
        RegistrationStatus.WAITLISTED: pgettext("registration status", "On the waiting list"),
        RegistrationStatus.CANCELLED: pgettext("registration status", "Cancelled"),
        RegistrationStatus.REJECTED: pgettext("registration status", "Not accepted"),
    }
    return labels[status]


#: The order of fields on the form, used to link the error summary to the first broken field.
FORM_FIELDS = ("full_name", "email", "country", "institution", "position", "sector", "language", "consent")


def form_context(event: EventView, values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    partners, others = country_choices()
    return {
        "event": event,
        "values": values,
        "errors": [(field, errors[field]) for field in FORM_FIELDS if field in errors],
        "error_for": errors,
        "partner_countries": partners,
        "other_countries": others,
        "sectors": [(sector.value, gettext(SECTOR_LABELS[sector])) for sector in Sector],
        "languages": [(language, LANGUAGE_NAMES[language]) for language in SUPPORTED_LANGUAGES],
        "form_message": None,
    }


def outcome_message(result: RegistrationResult) -> str:
    if result.outcome is Outcome.FULL:
        return gettext("Sorry, this event is full: all seats have been taken.")
    if result.state is RegistrationState.NOT_YET_OPEN:
        return gettext("Registration has not opened yet.")
    return gettext("Registration for this event is closed.")


def my_registration_context(
    registration: Registration,
    token: str,
    viewer_zone: str | None,
    waitlist_position: int | None = None,
    *,
    join_link: str | None = None,
    certificate_available: bool = False,
) -> dict[str, Any]:
    """``join_link``: the personal link (never the meeting URL itself); ``certificate_available``: the
    event has ended and the person qualifies for a certificate of attendance."""
    event = registration.event
    confirmed = registration.status is RegistrationStatus.CONFIRMED
    return {
        "event": present_event(event, viewer_zone),
        "registration": {
            "full_name": registration.full_name,
            "email": registration.email,
            "institution": registration.institution,
            "country": country_name(registration.country),
            "status": registration.status.value,
            "status_label": status_label(registration.status),
            "is_active": registration.is_active,
            "is_confirmed": confirmed,
        },
        "join_url": join_link,
        "certificate_url": f"/my/{token}/certificate.pdf" if certificate_available else None,
        "ticket_url": f"/my/{token}/ticket.png",
        "invite_url": f"/my/{token}/invite.ics",
        "waitlist_position": waitlist_position,
        "cancel_url": f"/my/{token}/cancel",
        "data_url": f"/my/{token}/data.json",
        "erase_url": f"/my/{token}/erase",
        "manage_url": f"/my/{token}",
    }


class FieldErrorOut(msgspec.Struct):
    field: str
    message: str


class ApiError(msgspec.Struct):
    detail: str
    code: str
    errors: list[FieldErrorOut] = msgspec.field(default_factory=list)

    @classmethod
    def invalid(cls, invalid: RegistrationInvalid) -> ApiError:
        errors = [FieldErrorOut(field=error.field, message=error.message) for error in invalid.errors]
        return cls(detail=gettext("Some fields are not valid."), code="invalid", errors=errors)

    @classmethod
    def conflict(cls, result: RegistrationResult) -> ApiError:
        code = (
            "full" if result.outcome is Outcome.FULL else (result.state.value if result.state else "closed")
        )
        return cls(detail=outcome_message(result), code=code)

    @classmethod
    def response_spec(cls, description: str) -> ResponseSpec:
        return ResponseSpec(data_container=cls, description=description)


#: What any API operation with parameters or a body may answer besides its own outcomes, both as ApiError:
#: a body that cannot be read (400) and fields or parameters of the wrong shape (422, see app.py).
API_INPUT_ERRORS: dict[int, ResponseSpec] = {
    400: ApiError.response_spec("The body could not be read (not JSON, or not UTF-8)."),
    422: ApiError.response_spec("Invalid fields or parameters; `errors` lists them."),
}


class RegistrationAccepted(msgspec.Struct):
    """The same answer for a new registration and a repeated one: the email says which it was."""

    detail: str
    event: str

    @classmethod
    def for_slug(cls, slug: str) -> RegistrationAccepted:
        return cls(
            detail=gettext("Registration received. Check your email for your ticket and link."), event=slug
        )
