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

_IN_ORDER = ("created_at", "id")


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
        # Attendee lists: a filtered page in registration order walks its filter's index in order and
        # stops at the page's end; the other common filter rides along, so counts read only the index.
        sa.Index("ix_registrations_event_created_id", "event_id", "created_at", "id"),
        sa.Index("ix_registrations_event_status_created", "event_id", "status", *_IN_ORDER, "country"),
        sa.Index("ix_registrations_event_country_created", "event_id", "country", *_IN_ORDER, "status"),
        sa.Index("ix_registrations_event_waitlist", "event_id", "status", "waitlisted_at"),
        sa.Index("ix_registrations_event_name", "event_id", "full_name", "id"),
        # Attendee search on PostgreSQL (substring, case ignored: ILIKE through pg_trgm). SQLite has
        # its own trigram index, the FTS5 table ``registrations_search`` (see below).
        sa.Index(
            "ix_registrations_search_trgm",
            "full_name",
            "email",
            "institution",
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops" for column in ("full_name", "email", "institution")},
        ).ddl_if(dialect="postgresql"),
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


#: SQLite's attendee search index: an FTS5 table with the trigram tokenizer over the registrations'
#: name, email and institution (external content, keyed by the registrations' rowid), kept in step by
#: triggers created in the migration. Not part of the models' metadata: Alembic cannot describe it.
#: A migration that rebuilds ``registrations`` in batch mode drops those triggers and renumbers the
#: rowids: it must create the triggers again and run the table's ``'rebuild'`` command.
registrations_search = sa.table("registrations_search", sa.column("rowid", sa.Integer))
SQLITE_SEARCH_TABLES = frozenset(
    f"registrations_search{suffix}" for suffix in ("", "_data", "_idx", "_docsize", "_config")
)
#: Indexes created on PostgreSQL only (``ddl_if``), left out of schema comparisons on other databases.
POSTGRESQL_ONLY_INDEXES = frozenset({"ix_registrations_search_trgm"})
