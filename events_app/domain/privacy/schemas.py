"""What the privacy pages show: organisers' purge lines and the messages people read."""

from __future__ import annotations

from dataclasses import dataclass

from events_app.domain.events.schemas import present_event
from events_app.domain.privacy.retention import PurgeLine
from events_app.lib.i18n import N_, format_date_in_zone

MSG_ERASED = N_(
    "The personal data of this registration was erased at the participant's request or because the "
    "retention period ended. This link no longer gives access to anything."
)
MSG_NO_NOTICE = N_("There is no privacy notice with this version.")


@dataclass(frozen=True, slots=True)
class PurgeView:
    event_id: str
    title: str
    registrations: int
    date_text: str
    date_iso: str


def purge_view(line: PurgeLine) -> PurgeView:
    """One line, with the date in the event's own time zone (where "after the event" is counted)."""
    return PurgeView(
        event_id=str(line.event.id),
        title=present_event(line.event).title,
        registrations=line.registrations,
        date_text=format_date_in_zone(line.purge_at, line.event.timezone, "long"),
        date_iso=line.purge_at.isoformat(),
    )
