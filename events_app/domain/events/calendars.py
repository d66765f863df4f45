"""Public calendars: one event's .ics (no attendee data) and the feed of all published events."""

from __future__ import annotations

from collections.abc import Sequence

from events_app.db.models import Event, EventStatus
from events_app.domain.events.schemas import location_text
from events_app.lib.calendar_links import CalendarEntry, google_link, outlook_link
from events_app.lib.i18n import current_language
from events_app.lib.ical import InviteData, InviteMethod, build_calendar, build_feed


def event_uid(event: Event) -> str:
    """The UID of the public entry of an event (a registrant's invite has its own UID)."""
    return f"event-{event.id}@events-app"


def public_invite(event: Event, base_url: str) -> InviteData:
    language = current_language()
    page = f"{base_url}/events/{event.slug}"
    summary = event.text("summary", language)
    return InviteData(
        uid=event_uid(event),
        sequence=event.invite_sequence,
        summary=event.text("title", language),
        description=f"{summary}\n\n{page}" if summary else page,
        location=location_text(event),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        timezone=event.timezone,
        organizer_email=event.contact_email,
        organizer_name=event.contact_name or event.contact_email,
        attendee_email=None,
        attendee_name=None,
        url=page,
        cancelled=event.status is EventStatus.CANCELLED,
    )


def event_ics(event: Event, base_url: str) -> bytes:
    return build_calendar(public_invite(event, base_url), InviteMethod.PUBLISH)


def feed_ics(events: Sequence[Event], base_url: str, name: str) -> bytes:
    return build_feed([public_invite(event, base_url) for event in events], name)


def calendar_entry(event: Event, base_url: str) -> CalendarEntry:
    invite = public_invite(event, base_url)
    return CalendarEntry(
        title=invite.summary,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        timezone=event.timezone,
        details=invite.description,
        location=invite.location,
    )


def add_to_calendar_links(event: Event, base_url: str) -> dict[str, str]:
    entry = calendar_entry(event, base_url)
    return {
        "ics": f"/events/{event.slug}/calendar.ics",
        "google": google_link(entry),
        "outlook": outlook_link(entry),
    }
