"""What an organiser's event form must look like, and how its values are read and shown again.

Times are typed as local wall-clock times (``<input type="datetime-local">``) in the event's IANA zone
and stored as UTC instants plus the zone name. A local time that does not exist (the hour skipped when
clocks go forward) is refused; one that happens twice (when clocks go back) means the first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, available_timezones

from email_validator import EmailNotValidError, validate_email

from events_app.db.models import Event, EventKind, EventStatus
from events_app.domain.accounts.permissions import Principal
from events_app.domain.events.schemas import (
    KIND_LABELS,
    TEXT_FIELDS,
    location_text,
    present_event,
    texts_by_language,
)
from events_app.domain.registrations.schemas import (
    MSG_BAD_CHARACTERS,
    MSG_BAD_COUNTRY,
    MSG_BAD_EMAIL,
    MSG_BAD_LANGUAGE,
    MSG_NOT_TEXT,
    MSG_REQUIRED,
    MSG_TOO_LONG,
    has_forbidden_characters,
)
from events_app.lib.countries import country_choices, is_country_code
from events_app.lib.i18n import (
    LANGUAGE_NAMES,
    N_,
    SUPPORTED_LANGUAGES,
    format_datetime_in_zone,
    gettext,
    pgettext,
)

#: The partner countries' zones (and the European partners'), listed first in the zone picker.
PARTNER_ZONES: tuple[str, ...] = (
    "America/Bogota",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
    "America/Mexico_City",
    "America/Lima",
    "America/Santiago",
    "America/La_Paz",
    "America/Caracas",
    "America/Guayaquil",
    "America/Asuncion",
    "America/Montevideo",
    "America/Costa_Rica",
    "America/Panama",
    "America/Guatemala",
    "America/El_Salvador",
    "America/Tegucigalpa",
    "America/Havana",
    "America/Santo_Domingo",
    "America/Manaus",
    "Europe/Madrid",
    "Europe/Brussels",
    "Europe/Lisbon",
)
#: Names in the tz database that are not places (or not zones at all).
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})

TEXT_MAX_LENGTHS = {"title": 200, "summary": 500, "description": 10_000}
MAX_LENGTHS = {
    "slug": 100,
    "venue_name": 200,
    "venue_address": 300,
    "venue_city": 120,
    "join_url": 1000,
    "contact_name": 200,
    "contact_email": 254,
}
MAX_CAPACITY = 1_000_000
MAX_REMINDERS = 10
#: The longest reminder offset: 60 days before the start.
MAX_REMINDER_MINUTES = 60 * 24 * 60
DEFAULT_REMINDERS = (1440, 60)
CHECKED_VALUES = {"on", "yes", "true", "1"}
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?")
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
_LOCAL_FORMAT_SECONDS = "%Y-%m-%dT%H:%M:%S"

MSG_BAD_SLUG = N_("Use only lowercase letters a-z, digits and single hyphens, for example launch-2027.")
MSG_SLUG_TAKEN = N_("Another event already uses this address. Choose another one.")
MSG_BAD_KIND = N_("Choose a kind of event from the list.")
MSG_TITLE_REQUIRED = N_("Enter the title in the base language (%(language)s).")
MSG_BAD_LOCAL_TIME = N_("Enter a date and time, for example 2027-04-14 10:00.")
MSG_NONEXISTENT_TIME = N_(
    "This time does not exist in %(zone)s: the clocks go forward that night. Choose another time."
)
MSG_BAD_ZONE = N_("Choose a time zone from the list.")
MSG_END_BEFORE_START = N_("The end must be after the start.")
MSG_CLOSES_BEFORE_OPENS = N_("Registration must close after it opens.")
MSG_BAD_URL = N_("Enter a full web address starting with https:// or http://.")
MSG_BAD_CAPACITY = N_("Enter a whole number of seats, 0 or more, or leave it empty for no limit.")
MSG_CAPACITY_BELOW_TAKEN = N_("%(count)d seats are already taken: the capacity cannot be lower than that.")
MSG_BAD_REMINDERS = N_(
    "Enter minutes before the start, separated by commas, for example 1440, 60 (at most 10, each up "
    "to 86400)."
)
MSG_VENUE_REQUIRED = N_("An in-person or hybrid event needs this.")


@dataclass(frozen=True, slots=True)
class EventData:
    """A valid event form, ready to be written on an :class:`Event`."""

    slug: str
    kind: EventKind
    base_language: str
    texts: dict[str, dict[str, str]]
    starts_at: datetime
    ends_at: datetime
    timezone: str
    venue_name: str
    venue_address: str
    venue_city: str
    venue_country: str
    join_url: str
    capacity: int | None
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    approval_required: bool
    waitlist_enabled: bool
    contact_name: str
    contact_email: str
    reminder_offsets_minutes: list[int]

    def attributes(self) -> dict[str, Any]:
        """The values as :class:`Event` attribute names."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


class EventFormInvalid(Exception):
    """The form has errors: ``errors`` maps field names to translated messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid event form")
        self.errors = errors


def text_field(field: str, language: str) -> str:
    """The form field of one text in one language, e.g. ``title_pt_BR``."""
    return f"{field}_{language}"


#: The order of fields on the form, for the error summary.
FORM_FIELDS: tuple[str, ...] = (
    "slug",
    "kind",
    "base_language",
    *(text_field(field, language) for language in SUPPORTED_LANGUAGES for field in TEXT_FIELDS),
    "timezone",
    "starts_at",
    "ends_at",
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
    "reminders",
)


# --- choices -------------------------------------------------------------------------------------


@cache
def zone_choices() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(partner zones, every other zone sorted by name)."""
    known = available_timezones() - _NOT_ZONES
    partners = tuple(zone for zone in PARTNER_ZONES if zone in known)
    return partners, tuple(sorted(known - set(partners)))


def is_zone(name: str) -> bool:
    partners, others = zone_choices()
    return name in partners or name in others


def kind_choices() -> list[tuple[str, str]]:
    return [(kind.value, gettext(KIND_LABELS[kind])) for kind in EventKind]


def language_choices() -> list[tuple[str, str]]:
    return [(language, LANGUAGE_NAMES[language]) for language in SUPPORTED_LANGUAGES]


# --- local times ---------------------------------------------------------------------------------


class LocalTimeError(ValueError):
    """A typed local time is malformed (``nonexistent`` False) or skipped by a DST change (True)."""

    def __init__(self, nonexistent: bool) -> None:
        super().__init__("nonexistent local time" if nonexistent else "malformed local time")
        self.nonexistent = nonexistent


def parse_local(value: str, zone: str) -> datetime:
    """The UTC instant of a ``datetime-local`` value in ``zone``; an ambiguous time is its first one."""
    if not _LOCAL_TIME.fullmatch(value):
        raise LocalTimeError(nonexistent=False)
    try:
        naive = datetime.fromisoformat(value)
    except ValueError as exc:
        raise LocalTimeError(nonexistent=False) from exc
    local = naive.replace(tzinfo=ZoneInfo(zone), fold=0)
    try:
        instant = local.astimezone(UTC)
        back = instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    except OverflowError as exc:  # the first or last representable day, e.g. 9999-12-31 23:59
        raise LocalTimeError(nonexistent=False) from exc
    if back != naive:
        raise LocalTimeError(nonexistent=True)
    return instant


def format_local(instant: datetime | None, zone: str) -> str:
    """An instant as a ``datetime-local`` value in ``zone``."""
    if instant is None:
        return ""
    local = instant.astimezone(ZoneInfo(zone))
    # Seconds only when there are some: saving the form unchanged must not move the event.
    return local.strftime(_LOCAL_FORMAT_SECONDS if local.second else _LOCAL_FORMAT)


# --- reading the form ----------------------------------------------------------------------------


class _Reader:
    """Reads one form, collecting translated errors by field."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: dict[str, str] = {}

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def text(self, field: str, max_length: int, *, multiline: bool = False) -> str:
        value = self.raw.get(field, "")
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(field, gettext(MSG_NOT_TEXT))
            return ""
        cleaned = _clean_multiline(value) if multiline else value
        if has_forbidden_characters(cleaned.replace("\n", "") if multiline else cleaned):
            self.fail(field, gettext(MSG_BAD_CHARACTERS))
            return ""
        cleaned = cleaned.strip() if multiline else " ".join(cleaned.split())
        if len(cleaned) > max_length:
            self.fail(field, gettext(MSG_TOO_LONG) % {"max": max_length})
            return ""
        return cleaned

    def required(self, field: str, max_length: int) -> str:
        value = self.text(field, max_length)
        if not value and field not in self.errors:
            self.fail(field, gettext(MSG_REQUIRED))
        return value

    def checked(self, field: str) -> bool:
        value = self.raw.get(field)
        return isinstance(value, str) and value.strip().lower() in CHECKED_VALUES

    def local_time(self, field: str, zone: str | None, *, required: bool) -> datetime | None:
        value = self.text(field, 32)
        if not value:
            if required and field not in self.errors:
                self.fail(field, gettext(MSG_REQUIRED))
            return None
        if zone is None:
            return None  # the zone has its own error; the time cannot be read without it
        try:
            return parse_local(value, zone)
        except LocalTimeError as error:
            message = MSG_NONEXISTENT_TIME if error.nonexistent else MSG_BAD_LOCAL_TIME
            self.fail(field, gettext(message) % {"zone": zone} if error.nonexistent else gettext(message))
            return None


def _clean_multiline(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n")


def validate_event_form(raw: Mapping[str, Any]) -> EventData:
    """Clean and check an event form; raises :class:`EventFormInvalid` with translated messages."""
    reader = _Reader(raw)
    slug = _read_slug(reader)
    kind = _read_kind(reader)
    base_language = _read_base_language(reader)
    texts = _read_texts(reader, base_language)
    zone, starts_at, ends_at = _read_times(reader)
    venue = _read_venue(reader, kind)
    join_url = _read_url(reader)
    capacity = _read_capacity(reader)
    opens_at, closes_at = _read_window(reader, zone)
    contact_email = _read_email(reader)
    contact_name = reader.text("contact_name", MAX_LENGTHS["contact_name"])
    reminders = _read_reminders(reader)
    if reader.errors:
        raise EventFormInvalid(reader.errors)
    # Without errors every required value is there (mypy cannot follow that).
    assert kind is not None
    assert zone is not None
    assert starts_at is not None
    assert ends_at is not None
    return EventData(
        slug=slug,
        kind=kind,
        base_language=base_language,
        texts=texts,
        starts_at=starts_at,
        ends_at=ends_at,
        timezone=zone,
        **venue,
        join_url=join_url,
        capacity=capacity,
        registration_opens_at=opens_at,
        registration_closes_at=closes_at,
        approval_required=reader.checked("approval_required"),
        waitlist_enabled=reader.checked("waitlist_enabled"),
        contact_name=contact_name,
        contact_email=contact_email,
        reminder_offsets_minutes=reminders,
    )


def _read_slug(reader: _Reader) -> str:
    slug = reader.required("slug", MAX_LENGTHS["slug"])
    if slug and not _SLUG.fullmatch(slug):
        reader.fail("slug", gettext(MSG_BAD_SLUG))
    return slug


def _read_kind(reader: _Reader) -> EventKind | None:
    value = reader.required("kind", 32)
    if value and value not in {kind.value for kind in EventKind}:
        reader.fail("kind", gettext(MSG_BAD_KIND))
        return None
    return EventKind(value) if value else None


def _read_base_language(reader: _Reader) -> str:
    value = reader.required("base_language", 8)
    if value and value not in SUPPORTED_LANGUAGES:
        reader.fail("base_language", gettext(MSG_BAD_LANGUAGE))
        return SUPPORTED_LANGUAGES[0]
    return value or SUPPORTED_LANGUAGES[0]


def _read_texts(reader: _Reader, base_language: str) -> dict[str, dict[str, str]]:
    texts: dict[str, dict[str, str]] = {}
    for language in SUPPORTED_LANGUAGES:
        values = {
            field: reader.text(
                text_field(field, language), TEXT_MAX_LENGTHS[field], multiline=field == "description"
            )
            for field in TEXT_FIELDS
        }
        if any(values.values()):
            texts[language] = {field: value for field, value in values.items() if value}
    title_field = text_field("title", base_language)
    if not texts.get(base_language, {}).get("title") and title_field not in reader.errors:
        reader.fail(title_field, gettext(MSG_TITLE_REQUIRED) % {"language": LANGUAGE_NAMES[base_language]})
    return texts


def _read_zone(reader: _Reader) -> str | None:
    zone = reader.required("timezone", 64)
    if zone and not is_zone(zone):
        reader.fail("timezone", gettext(MSG_BAD_ZONE))
        return None
    return zone or None


def _read_times(reader: _Reader) -> tuple[str | None, datetime | None, datetime | None]:
    zone = _read_zone(reader)
    starts_at = reader.local_time("starts_at", zone, required=True)
    ends_at = reader.local_time("ends_at", zone, required=True)
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        reader.fail("ends_at", gettext(MSG_END_BEFORE_START))
    return zone, starts_at, ends_at


def _read_venue(reader: _Reader, kind: EventKind | None) -> dict[str, str]:
    venue = {
        field: reader.text(field, MAX_LENGTHS[field])
        for field in ("venue_name", "venue_address", "venue_city")
    }
    country = reader.text("venue_country", 2).upper()
    if country and not is_country_code(country):
        reader.fail("venue_country", gettext(MSG_BAD_COUNTRY))
    if kind is not None and kind.has_venue:
        for field in ("venue_name", "venue_city"):
            if not venue[field]:
                reader.fail(field, gettext(MSG_VENUE_REQUIRED))
    return {**venue, "venue_country": country}


def _read_url(reader: _Reader) -> str:
    url = reader.text("join_url", MAX_LENGTHS["join_url"])
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url
    except ValueError:  # e.g. an unclosed IPv6 bracket
        valid = False
    if not valid:
        reader.fail("join_url", gettext(MSG_BAD_URL))
    return url


def _read_capacity(reader: _Reader) -> int | None:
    value = reader.text("capacity", 16)
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or int(value) > MAX_CAPACITY:
        reader.fail("capacity", gettext(MSG_BAD_CAPACITY))
        return None
    return int(value)


def _read_window(reader: _Reader, zone: str | None) -> tuple[datetime | None, datetime | None]:
    opens_at = reader.local_time("registration_opens_at", zone, required=False)
    closes_at = reader.local_time("registration_closes_at", zone, required=False)
    if opens_at is not None and closes_at is not None and closes_at <= opens_at:
        reader.fail("registration_closes_at", gettext(MSG_CLOSES_BEFORE_OPENS))
    return opens_at, closes_at


def _read_email(reader: _Reader) -> str:
    value = reader.required("contact_email", MAX_LENGTHS["contact_email"])
    if not value:
        return ""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        reader.fail("contact_email", gettext(MSG_BAD_EMAIL))
        return ""


def _read_reminders(reader: _Reader) -> list[int]:
    value = reader.text("reminders", 200)
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not all(part.isascii() and part.isdigit() for part in parts):
        reader.fail("reminders", gettext(MSG_BAD_REMINDERS))
        return []
    minutes = sorted({int(part) for part in parts}, reverse=True)
    if len(minutes) > MAX_REMINDERS or any(not 0 < m <= MAX_REMINDER_MINUTES for m in minutes):
        reader.fail("reminders", gettext(MSG_BAD_REMINDERS))
        return []
    return minutes


# --- showing the form again ----------------------------------------------------------------------


def default_values(language: str) -> dict[str, str]:
    """A new event's form: in-person, in the organiser's language, reminders a day and an hour before."""
    return {
        "kind": EventKind.IN_PERSON.value,
        "base_language": language if language in SUPPORTED_LANGUAGES else SUPPORTED_LANGUAGES[0],
        "timezone": PARTNER_ZONES[0],
        "waitlist_enabled": "yes",
        "reminders": ", ".join(str(minutes) for minutes in DEFAULT_REMINDERS),
    }


_INSTANT_FIELDS = ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at")


def keep_shown_instants(data: EventData, event: Event) -> EventData:
    """A time the form shows and sends back unchanged keeps its instant.

    A wall time that happens twice (00:30 on the night Cuba's clocks go back) is read as its first
    occurrence; an event at the second one must not move an hour when its form is saved unchanged.
    """
    if data.timezone != event.timezone:
        return data
    kept = {}
    for name in _INSTANT_FIELDS:
        old, new = getattr(event, name), getattr(data, name)
        moved = old is not None and new is not None and old != new
        if moved and format_local(old, event.timezone) == format_local(new, event.timezone):
            kept[name] = old
    return replace(data, **kept) if kept else data


def event_values(event: Event) -> dict[str, str]:
    """An existing event as form values (times in its own zone)."""
    values = {
        "slug": event.slug,
        "kind": event.kind.value,
        "base_language": event.base_language,
        "timezone": event.timezone,
        "starts_at": format_local(event.starts_at, event.timezone),
        "ends_at": format_local(event.ends_at, event.timezone),
        "venue_name": event.venue_name,
        "venue_address": event.venue_address,
        "venue_city": event.venue_city,
        "venue_country": event.venue_country,
        "join_url": event.join_url,
        "capacity": "" if event.capacity is None else str(event.capacity),
        "registration_opens_at": format_local(event.registration_opens_at, event.timezone),
        "registration_closes_at": format_local(event.registration_closes_at, event.timezone),
        "approval_required": "yes" if event.approval_required else "",
        "waitlist_enabled": "yes" if event.waitlist_enabled else "",
        "contact_name": event.contact_name,
        "contact_email": event.contact_email,
        "reminders": ", ".join(str(minutes) for minutes in event.reminder_offsets_minutes),
    }
    for language, language_texts in event.texts.items():
        for field, value in language_texts.items():
            values[text_field(field, language)] = value
    return values


def typed_values(raw: Mapping[str, Any]) -> dict[str, str]:
    """What the organiser typed, to show it again next to the errors."""
    return {key: value for key, value in raw.items() if isinstance(value, str) and key != "_csrf_token"}


# --- what the organiser pages are given ----------------------------------------------------------


def event_status_label(status: EventStatus) -> str:
    labels = {
        EventStatus.DRAFT: pgettext("event status", "Draft"),
        EventStatus.PUBLISHED: pgettext("event status", "Published"),
        EventStatus.CANCELLED: pgettext("event status", "Cancelled"),
    }
    return labels[status]


def form_context(
    principal: Principal, event: Event | None, values: dict[str, str], errors: dict[str, str]
) -> dict[str, Any]:
    """The create form (``event`` None) or the edit form of ``event``."""
    partner_countries, other_countries = country_choices()
    partner_zones, other_zones = zone_choices()
    return {
        "principal": principal,
        "event_id": event.id if event is not None else None,
        "action": f"/manage/events/{event.id}/edit" if event is not None else "/manage/events/new",
        "is_published": event is not None and event.status is EventStatus.PUBLISHED,
        "values": values,
        "errors": [(name, errors[name]) for name in FORM_FIELDS if name in errors],
        "error_for": errors,
        "kinds": kind_choices(),
        "languages": language_choices(),
        "partner_countries": partner_countries,
        "other_countries": other_countries,
        "partner_zones": partner_zones,
        "other_zones": other_zones,
    }


@dataclass(frozen=True, slots=True)
class SeatSummary:
    taken: int
    capacity: int | None
    confirmed: int
    waitlisted: int
    pending: int


#: Notices the event page shows after an action redirected to it (``?done=<key>``).
NOTICES = {
    "created": N_("The event has been created as a draft."),
    "saved": N_("Your changes have been saved."),
    "published": N_("The event is published: registration follows its settings."),
    "cancelled": N_("The event has been cancelled. Its registrants are being notified."),
}


def notice_for(key: str | None) -> str | None:
    return gettext(NOTICES[key]) if key in NOTICES else None


def event_page_context(
    principal: Principal, event: Event, seats: SeatSummary, notice: str | None = None
) -> dict[str, Any]:
    """The organiser's page of one event: facts, seats and what the principal may do."""
    manages = principal.manages(event.id)
    return {
        "principal": principal,
        "event": event,
        "view": present_event(event),
        "texts_by_language": texts_by_language(event),
        "status_label": event_status_label(event.status),
        "location": location_text(event),
        "opens_text": _local_text(event.registration_opens_at, event.timezone),
        "closes_text": _local_text(event.registration_closes_at, event.timezone),
        "reminders": ", ".join(str(minutes) for minutes in event.reminder_offsets_minutes),
        "public_url": f"/events/{event.slug}" if event.status is not EventStatus.DRAFT else None,
        "seats": seats,
        "can_edit": manages and event.status is not EventStatus.CANCELLED,
        "can_publish": manages and event.status is EventStatus.DRAFT,
        "can_cancel": manages and event.status is EventStatus.PUBLISHED,
        "can_duplicate": manages,
        "manages": manages,
        "notice": notice,
    }


def _local_text(instant: datetime | None, zone: str) -> str | None:
    return format_datetime_in_zone(instant, zone) if instant is not None else None
