from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from events_app.db.models.enums import EventKind, EventStatus, string_enum

if TYPE_CHECKING:
    from events_app.db.models.registration import Registration


class Event(UUIDv7AuditBase):
    """A launch, meeting or webinar. Texts are kept per language: ``{"es": {"title": ...}, ...}``."""

    __tablename__ = "events"

    slug: Mapped[str] = mapped_column(sa.String(120), unique=True)
    kind: Mapped[EventKind] = mapped_column(string_enum(EventKind))
    status: Mapped[EventStatus] = mapped_column(string_enum(EventStatus), default=EventStatus.DRAFT)
    base_language: Mapped[str] = mapped_column(sa.String(8))
    texts: Mapped[dict[str, dict[str, str]]] = mapped_column(JsonB, default=dict)

    starts_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    timezone: Mapped[str] = mapped_column(sa.String(64))

    venue_name: Mapped[str] = mapped_column(sa.String(200), default="")
    venue_address: Mapped[str] = mapped_column(sa.String(300), default="")
    venue_city: Mapped[str] = mapped_column(sa.String(120), default="")
    venue_country: Mapped[str] = mapped_column(sa.String(2), default="")
    join_url: Mapped[str] = mapped_column(sa.String(1000), default="")

    capacity: Mapped[int | None] = mapped_column(sa.Integer, default=None)
    #: Seats held by confirmed registrations; changed only by conditional UPDATEs (see registrations service).
    seats_taken: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    registration_opens_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    registration_closes_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    approval_required: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: When full, new registrations join a waiting list instead of being turned away.
    waitlist_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())

    contact_name: Mapped[str] = mapped_column(sa.String(200), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(320))
    #: Share of the event's scheduled duration an online participant must attend to count as attended.
    attendance_threshold_percent: Mapped[int] = mapped_column(sa.Integer, default=60, server_default="60")
    #: Reminder emails, in minutes before the start (default: one day and one hour).
    reminder_offsets_minutes: Mapped[list[int]] = mapped_column(
        JsonB, default=lambda: [1440, 60], server_default="[1440, 60]"
    )
    #: Grows with every change that must reach calendars (time, zone, venue, link, cancellation).
    invite_sequence: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    registrations: Mapped[list[Registration]] = relationship(back_populates="event", lazy="noload")

    def text(self, field: str, language: str) -> str:
        """The text in ``language``, else in the base language, else in any language that has it."""
        for candidate in (language, self.base_language, *self.texts.keys()):
            value = self.texts.get(candidate, {}).get(field, "")
            if value:
                return value
        return ""

    def text_language(self, field: str, language: str) -> str:
        """The language :meth:`text` actually answers in (to say when the page falls back)."""
        for candidate in (language, self.base_language, *self.texts.keys()):
            if self.texts.get(candidate, {}).get(field):
                return candidate
        return language

    @property
    def seats_left(self) -> int | None:
        if self.capacity is None:
            return None
        return max(self.capacity - self.seats_taken, 0)

    def as_dict(self) -> dict[str, Any]:
        return {column.key: getattr(self, column.key) for column in sa.inspect(self).mapper.column_attrs}
