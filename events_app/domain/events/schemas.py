"""How an event is shown: the page, the email and the API read these, never the model's raw fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from events_app.db.models import Event, EventKind
from events_app.domain.events.services import RegistrationState, registration_state
from events_app.lib.countries import country_name
from events_app.lib.i18n import (
    N_,
    SUPPORTED_LANGUAGES,
    current_language,
    format_datetime_in_zone,
    format_time_in_zone,
    gettext,
    language_name,
    utc_offset_text,
    zone_label,
)

KIND_LABELS = {
    EventKind.IN_PERSON: N_("In person"),
    EventKind.ONLINE: N_("Online"),
    EventKind.HYBRID: N_("Hybrid (in person and online)"),
}

STATE_MESSAGES = {
    RegistrationState.OPEN: N_("Registration is open."),
    RegistrationState.NOT_YET_OPEN: N_("Registration has not opened yet."),
    RegistrationState.CLOSED: N_("Registration is closed."),
    RegistrationState.FULL: N_("This event is full: no seats are left."),
    RegistrationState.CANCELLED: N_("This event has been cancelled."),
    RegistrationState.NOT_PUBLISHED: N_("This event is not open for registration."),
}


@dataclass(frozen=True, slots=True)
class When:
    """An event's time in its own zone, and in the viewer's when that differs."""

    starts_iso: str
    ends_iso: str
    zone_name: str
    event_text: str
    event_zone: str
    viewer_text: str | None
    viewer_zone: str | None


@dataclass(frozen=True, slots=True)
class EventView:
    slug: str
    kind: EventKind
    kind_label: str
    title: str
    summary: str
    description: str
    #: The language (its name) shown instead of the page's for the title, or else for another text.
    fallback_language_name: str | None
    #: True when only some texts fall back (the title is in the page's language).
    fallback_partial: bool
    #: The title's language as an HTML ``lang`` value when it is not the page's, else None.
    title_lang: str | None
    when: When
    venue_line: str
    venue_city_country: str
    is_online: bool
    has_venue: bool
    capacity: int | None
    seats_left: int | None
    state: RegistrationState
    state_message: str
    #: Open, or full with a waiting list to join.
    can_register: bool
    joins_waitlist: bool
    contact_email: str
    is_cancelled: bool


def valid_zone(name: str | None) -> str | None:
    if not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _span_text(start: datetime, end: datetime, zone: str) -> str:
    """ "Wednesday, 14 April 2027, 10:00 – 13:00", with the end's date too when it falls on another day."""
    tz = ZoneInfo(zone)
    same_day = start.astimezone(tz).date() == end.astimezone(tz).date()
    end_text = format_time_in_zone(end, zone) if same_day else format_datetime_in_zone(end, zone)
    if _offset(end, zone) != _offset(start, zone):  # the clocks change during the event
        end_text += f" ({utc_offset_text(end, zone)})"
    return f"{format_datetime_in_zone(start, zone)} – {end_text}"


def describe_when(event: Event, viewer_zone: str | None = None) -> When:
    start, end = event.starts_at, event.ends_at
    viewer_text = None
    viewer_label = None
    zone = valid_zone(viewer_zone)
    if zone and _offset(start, zone) != _offset(start, event.timezone):
        viewer_text = _span_text(start, end, zone)
        viewer_label = zone_label(start, zone)
    return When(
        starts_iso=start.isoformat(),
        ends_iso=end.isoformat(),
        zone_name=event.timezone,
        event_text=_span_text(start, end, event.timezone),
        event_zone=zone_label(start, event.timezone),
        viewer_text=viewer_text,
        viewer_zone=viewer_label,
    )


def _offset(instant: datetime, zone: str) -> object:
    return instant.astimezone(ZoneInfo(zone)).utcoffset()


def present_event(event: Event, viewer_zone: str | None = None, now: datetime | None = None) -> EventView:
    language = current_language()
    state = registration_state(event, now)
    joins_waitlist = state is RegistrationState.FULL and event.waitlist_enabled
    fallback = _fallback(event, language)
    title_language = event.text_language("title", language)
    venue_parts = [part for part in (event.venue_name, event.venue_address) if part]
    city_parts = [event.venue_city, country_name(event.venue_country) if event.venue_country else ""]
    return EventView(
        slug=event.slug,
        kind=event.kind,
        kind_label=gettext(KIND_LABELS[event.kind]),
        title=event.text("title", language),
        summary=event.text("summary", language),
        description=event.text("description", language),
        fallback_language_name=language_name(fallback) if fallback else None,
        fallback_partial=fallback is not None and title_language == language,
        title_lang=title_language.replace("_", "-") if title_language != language else None,
        when=describe_when(event, viewer_zone),
        venue_line=", ".join(venue_parts),
        venue_city_country=", ".join(part for part in city_parts if part),
        is_online=event.kind.is_online,
        has_venue=event.kind.has_venue,
        capacity=event.capacity,
        seats_left=event.seats_left,
        state=state,
        state_message=gettext(STATE_MESSAGES[state]),
        can_register=state is RegistrationState.OPEN or joins_waitlist,
        joins_waitlist=joins_waitlist,
        contact_email=event.contact_email,
        is_cancelled=state is RegistrationState.CANCELLED,
    )


#: The texts organisers enter per language, in the order pages show them.
TEXT_FIELDS = ("title", "summary", "description")
TEXT_FIELD_LABELS = {"title": N_("Title"), "summary": N_("Summary"), "description": N_("Description")}


def _fallback(event: Event, language: str) -> str | None:
    """The language shown instead of `language` for the title, or else for the first other text."""
    for field in TEXT_FIELDS:
        used = event.text_language(field, language)
        if used != language and event.text(field, language):
            return used
    return None


@dataclass(frozen=True, slots=True)
class LanguageTexts:
    """One language's texts of an event as an organiser checks them: which are entered, which fall back."""

    language: str
    language_name: str
    is_base: bool
    #: (field label, the text shown, the name of the language it is shown in when it falls back)
    fields: tuple[tuple[str, str, str | None], ...]

    @property
    def complete(self) -> bool:
        return all(fallback is None for _, _, fallback in self.fields)


def texts_by_language(event: Event) -> list[LanguageTexts]:
    """Every supported language with what a visitor reading it gets, field by field."""
    result = []
    for language in SUPPORTED_LANGUAGES:
        fields = []
        for field in TEXT_FIELDS:
            text = event.text(field, language)
            used = event.text_language(field, language)
            fallback = language_name(used) if text and used != language else None
            fields.append((gettext(TEXT_FIELD_LABELS[field]), text, fallback))
        result.append(
            LanguageTexts(language, language_name(language), language == event.base_language, tuple(fields))
        )
    return result


def location_text(event: Event) -> str:
    """LOCATION for calendars: the venue, or "Online" (translated)."""
    if event.kind is EventKind.ONLINE:
        return gettext("Online")
    parts = [event.venue_name, event.venue_address, event.venue_city]
    if event.venue_country:
        parts.append(country_name(event.venue_country))
    return ", ".join(part for part in parts if part)


class EventOut(msgspec.Struct):
    """An event in the public JSON API (no join link: that is only for confirmed registrants)."""

    slug: str
    kind: str
    status: str
    title: str
    summary: str
    description: str
    language: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    venue_name: str
    venue_address: str
    venue_city: str
    venue_country: str
    capacity: int | None
    seats_left: int | None
    registration_state: str
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    url: str


def event_out(event: Event, base_url: str, now: datetime | None = None) -> EventOut:
    language = current_language()
    return EventOut(
        slug=event.slug,
        kind=event.kind.value,
        status=event.status.value,
        title=event.text("title", language),
        summary=event.text("summary", language),
        description=event.text("description", language),
        language=event.text_language("title", language),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        timezone=event.timezone,
        venue_name=event.venue_name,
        venue_address=event.venue_address,
        venue_city=event.venue_city,
        venue_country=event.venue_country,
        capacity=event.capacity,
        seats_left=event.seats_left,
        registration_state=registration_state(event, now).value,
        registration_opens_at=event.registration_opens_at,
        registration_closes_at=event.registration_closes_at,
        url=f"{base_url}/events/{event.slug}",
    )
