"""What the user and API-token forms accept; messages in the reader's language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from events_app.db.models import Role
from events_app.domain.accounts.services import MIN_PASSWORD_LENGTH, AccountError, normalize_email
from events_app.domain.registrations.schemas import (
    MSG_BAD_CHARACTERS,
    MSG_BAD_EMAIL,
    MSG_REQUIRED,
    MSG_TOO_LONG,
    has_forbidden_characters,
)
from events_app.lib.countries import is_country_code
from events_app.lib.i18n import N_, gettext

ROLE_LABELS: dict[Role, str] = {
    Role.ADMIN: N_("Administrator"),
    Role.EVENT_MANAGER: N_("Event manager"),
    Role.FOCAL_POINT: N_("Focal point"),
    Role.CHECKIN_STAFF: N_("Check-in staff"),
}
#: Roles that work on assigned events, and the role that works on countries.
ROLES_WITH_EVENTS = frozenset({Role.EVENT_MANAGER, Role.CHECKIN_STAFF})
ROLES_WITH_COUNTRIES = frozenset({Role.FOCAL_POINT})

MAX_NAME = 200
MAX_EMAIL = 254
MAX_PASSWORD = 1000
MAX_TOKEN_NAME = 120

MSG_SHORT_PASSWORD = N_("The password must have at least %(min)d characters.")
MSG_BAD_ROLE = N_("Choose a role from the list.")
MSG_BAD_EVENTS = N_("Choose events from the list.")
MSG_BAD_COUNTRIES = N_("Choose countries from the list.")
MSG_NO_COUNTRIES = N_("Choose at least one country for a focal point.")
MSG_EMAIL_TAKEN = N_("A user with this email exists already.")
MSG_SELF_DEACTIVATE = N_("You cannot deactivate your own account.")
MSG_SELF_DEMOTE = N_("You cannot remove your own administrator role.")
MSG_BAD_USER = N_("Choose a user from the list.")

USER_FIELDS = ("email", "full_name", "role", "password", "events", "countries", "is_active")
TOKEN_FIELDS = ("name", "user_id")


def role_label(role: Role) -> str:
    return gettext(ROLE_LABELS[role])


class FormInvalid(Exception):
    """A form with field errors (field name -> translated message)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid form")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class UserForm:
    email: str
    full_name: str
    role: Role
    #: Empty on the edit form: the password stays as it is.
    password: str
    event_ids: list[UUID]
    countries: list[str]
    is_active: bool


@dataclass(frozen=True, slots=True)
class TokenForm:
    name: str
    user_id: UUID


@dataclass(slots=True)
class FormValues:
    """What was typed, to show the form again (never the password)."""

    text: dict[str, str] = field(default_factory=dict)
    events: set[str] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)


def as_list(value: Any) -> list[str]:
    """A form field that may be sent several times (multi-selects, checkbox groups)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, str)]


def as_text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name, "")
    return value if isinstance(value, str) else ""


def form_values(raw: Mapping[str, Any]) -> FormValues:
    text = {
        name: as_text(raw, name) for name in ("email", "full_name", "role", "is_active", "name", "user_id")
    }
    return FormValues(
        text={name: value[:MAX_PASSWORD] for name, value in text.items()},
        events=set(as_list(raw.get("events"))),
        countries=set(as_list(raw.get("countries"))),
    )


def _text(raw: Mapping[str, Any], name: str, limit: int, errors: dict[str, str], required: bool) -> str:
    value = as_text(raw, name)
    if has_forbidden_characters(value):
        errors[name] = gettext(MSG_BAD_CHARACTERS)
        return ""
    cleaned = " ".join(value.split())
    if required and not cleaned:
        errors[name] = gettext(MSG_REQUIRED)
    elif len(cleaned) > limit:
        errors[name] = gettext(MSG_TOO_LONG) % {"max": limit}
    return cleaned


def _email(raw: Mapping[str, Any], errors: dict[str, str]) -> str:
    value = _text(raw, "email", MAX_EMAIL, errors, required=True)
    if "email" in errors:
        return ""
    try:
        return normalize_email(value)
    except AccountError:
        errors["email"] = gettext(MSG_BAD_EMAIL)
        return ""


def _password(raw: Mapping[str, Any], errors: dict[str, str], required: bool) -> str:
    value = as_text(raw, "password")
    if not value and not required:
        return ""
    if not value:
        errors["password"] = gettext(MSG_REQUIRED)
    elif len(value) < MIN_PASSWORD_LENGTH:
        errors["password"] = gettext(MSG_SHORT_PASSWORD) % {"min": MIN_PASSWORD_LENGTH}
    elif len(value) > MAX_PASSWORD:
        errors["password"] = gettext(MSG_TOO_LONG) % {"max": MAX_PASSWORD}
    return value


def _role(raw: Mapping[str, Any], errors: dict[str, str]) -> Role:
    try:
        return Role(as_text(raw, "role"))
    except ValueError:
        errors["role"] = gettext(MSG_BAD_ROLE)
        return Role.CHECKIN_STAFF


def _event_ids(raw: Mapping[str, Any], known: set[UUID], errors: dict[str, str]) -> list[UUID]:
    chosen: list[UUID] = []
    for item in as_list(raw.get("events")):
        try:
            event_id = UUID(item)
        except ValueError:
            event_id = None
        if event_id is None or event_id not in known:
            errors["events"] = gettext(MSG_BAD_EVENTS)
            return []
        if event_id not in chosen:
            chosen.append(event_id)
    return chosen


def _countries(raw: Mapping[str, Any], errors: dict[str, str]) -> list[str]:
    chosen = sorted({item.strip().upper() for item in as_list(raw.get("countries"))})
    if any(not is_country_code(code) for code in chosen):
        errors["countries"] = gettext(MSG_BAD_COUNTRIES)
        return []
    return chosen


def parse_user_form(raw: Mapping[str, Any], known_events: set[UUID], creating: bool) -> UserForm:
    """Validate the new-user or edit-user form; raises :class:`FormInvalid`.

    Events are kept only for event managers and check-in staff, countries only for focal points.
    """
    errors: dict[str, str] = {}
    email = _email(raw, errors) if creating else ""
    full_name = _text(raw, "full_name", MAX_NAME, errors, required=False)
    role = _role(raw, errors)
    password = _password(raw, errors, required=creating)
    event_ids = _event_ids(raw, known_events, errors)
    countries = _countries(raw, errors)
    if role in ROLES_WITH_COUNTRIES and not countries and "countries" not in errors:
        errors["countries"] = gettext(MSG_NO_COUNTRIES)
    if errors:
        raise FormInvalid(errors)
    return UserForm(
        email=email,
        full_name=full_name,
        role=role,
        password=password,
        event_ids=event_ids if role in ROLES_WITH_EVENTS else [],
        countries=countries if role in ROLES_WITH_COUNTRIES else [],
        is_active=creating or as_text(raw, "is_active") in ("on", "yes", "true", "1"),
    )


def parse_token_form(raw: Mapping[str, Any], known_users: set[UUID]) -> TokenForm:
    errors: dict[str, str] = {}
    name = _text(raw, "name", MAX_TOKEN_NAME, errors, required=True)
    user_id: UUID | None = None
    try:
        user_id = UUID(as_text(raw, "user_id"))
    except ValueError:
        user_id = None
    if user_id is None or user_id not in known_users:
        errors["user_id"] = gettext(MSG_BAD_USER)
    if errors or user_id is None:
        raise FormInvalid(errors)
    return TokenForm(name=name, user_id=user_id)
