"""'Add to calendar' links for web calendars that cannot take an .ics attachment by link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

GOOGLE_CALENDAR = "https://calendar.google.com/calendar/render"
OUTLOOK_COM = "https://outlook.live.com/calendar/0/deeplink/compose"


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    details: str
    location: str


def _google_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def google_link(entry: CalendarEntry) -> str:
    """Instants in UTC (the Z form), with ``ctz`` so Google shows them in the event's zone."""
    query = {
        "action": "TEMPLATE",
        "text": entry.title,
        "dates": f"{_google_instant(entry.starts_at)}/{_google_instant(entry.ends_at)}",
        "details": entry.details,
        "location": entry.location,
        "ctz": entry.timezone,
    }
    return f"{GOOGLE_CALENDAR}?{urlencode(query)}"


def outlook_link(entry: CalendarEntry) -> str:
    """Outlook.com takes ISO 8601 instants; UTC with an explicit offset leaves no doubt."""
    query = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": entry.title,
        "startdt": entry.starts_at.astimezone(UTC).isoformat(),
        "enddt": entry.ends_at.astimezone(UTC).isoformat(),
        "body": entry.details,
        "location": entry.location,
    }
    return f"{OUTLOOK_COM}?{urlencode(query)}"
