from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.orm import Mapped, mapped_column, relationship

from events_app.db.models.enums import (
    ACTIVE_REGISTRATION_STATUSES,
    RegistrationStatus,
    Sector,
    string_enum,
)
from events_app.db.models.event import Event

_ACTIVE_SQL = "status IN ({})".format(
    ", ".join(f"'{status.value}'" for status in ACTIVE_REGISTRATION_STATUSES)
)


class Registration(UUIDv7AuditBase):
    """One person's place at one event.

    The ticket code and manage token are never stored: they are derived from the installation secret,
    the registration id and a version number (see ``lib/security.py``); only their hashes are kept, for
    look-up. Bumping a version re-issues the token and makes the old one worthless.
    """

    __tablename__ = "registrations"
    __table_args__ = (
        sa.Index(
            "uq_registrations_active_email",
            "event_id",
            "email_normalized",
            unique=True,
            sqlite_where=sa.text(_ACTIVE_SQL),
            postgresql_where=sa.text(_ACTIVE_SQL),
        ),
        sa.Index("ix_registrations_event_status", "event_id", "status"),
        sa.Index("ix_registrations_event_waitlist", "event_id", "status", "waitlisted_at"),
        sa.Index("ix_registrations_event_country", "event_id", "country"),
        sa.Index("ix_registrations_event_created", "event_id", "created_at"),
        sa.Index("ix_registrations_event_name", "event_id", "full_name", "id"),
    )

    event_id: Mapped[UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    full_name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(320))
    email_normalized: Mapped[str] = mapped_column(sa.String(320), index=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    institution: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[str] = mapped_column(sa.String(200), default="")
    sector: Mapped[Sector] = mapped_column(string_enum(Sector))
    language: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[RegistrationStatus] = mapped_column(string_enum(RegistrationStatus))

    ticket_version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    ticket_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    manage_token_version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    manage_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: Look-up hash of the personal join link of online events (derived like the other tokens).
    join_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True, default=None)
    #: The SEQUENCE of the last invite sent to this person; only ever grows.
    invite_sequence: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    privacy_notice_version: Mapped[str] = mapped_column(sa.String(32))
    consent_given_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    #: When the person joined the waiting list: promotion goes in this order (then by id).
    waitlisted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    #: Set when the person's personal fields were erased (on request or by the retention job); the row
    #: stays, with its event, status, country, sector and times, so aggregate counts stay right.
    anonymised_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    event: Mapped[Event] = relationship(back_populates="registrations", lazy="joined", innerjoin=True)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_REGISTRATION_STATUSES
