from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy.orm import Mapped, mapped_column


class CheckIn(UUIDv7AuditBase):
    """A person let in at the door. At most one live check-in per registration (undo keeps the row)."""

    __tablename__ = "checkins"
    __table_args__ = (
        sa.Index(
            "uq_checkins_live_registration",
            "registration_id",
            unique=True,
            sqlite_where=sa.text("undone_at IS NULL"),
            postgresql_where=sa.text("undone_at IS NULL"),
        ),
    )

    event_id: Mapped[UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[UUID] = mapped_column(sa.ForeignKey("registrations.id", ondelete="CASCADE"))
    device: Mapped[str] = mapped_column(sa.String(120))
    staff_user_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    #: When the scan happened on the device (differs from created_at for scans synced after being offline).
    scanned_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    nonce: Mapped[str] = mapped_column(sa.String(100), unique=True)
    undone_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    undone_by_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class ScanAttempt(UUIDv7AuditBase):
    """Every scan, whatever its result; the same nonce is recorded once and answered the same way."""

    __tablename__ = "scan_attempts"

    event_id: Mapped[UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="SET NULL"), default=None, index=True
    )
    nonce: Mapped[str] = mapped_column(sa.String(100), unique=True)
    device: Mapped[str] = mapped_column(sa.String(120))
    staff_user_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    result: Mapped[str] = mapped_column(sa.String(40))
    scanned_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    #: The answer given, replayed verbatim when the same nonce comes again.
    answer: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)


class JoinClick(UUIDv7AuditBase):
    """A registrant opened their personal join link of an online or hybrid event."""

    __tablename__ = "join_clicks"

    registration_id: Mapped[UUID] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)


class AttendanceImport(UUIDv7AuditBase):
    """One uploaded Zoom or Teams report; the same file (by hash) imported twice changes nothing."""

    __tablename__ = "attendance_imports"
    __table_args__ = (sa.UniqueConstraint("event_id", "content_sha256"),)

    event_id: Mapped[UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.String(20))
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    summary: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)


class OnlineAttendance(UUIDv7AuditBase):
    """A person's time in the online meeting, merged over every imported report of the event.

    ``identity`` is the lower-cased email, or ``row:<import>:<n>`` for a row without one; rows without a
    registration are the unmatched ones an organiser can match by hand.
    """

    __tablename__ = "online_attendance"
    __table_args__ = (sa.UniqueConstraint("event_id", "identity"),)

    event_id: Mapped[UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    identity: Mapped[str] = mapped_column(sa.String(320))
    email: Mapped[str | None] = mapped_column(sa.String(320), default=None)
    display_name: Mapped[str] = mapped_column(sa.String(300), default="")
    registration_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="SET NULL"), default=None, index=True
    )
    #: ``[[join_iso, leave_iso], ...]`` in UTC, already merged into a union.
    segments: Mapped[list[list[str]]] = mapped_column(JsonB, default=list)
    minutes: Mapped[float] = mapped_column(sa.Float, default=0.0)
    matched_by: Mapped[str] = mapped_column(sa.String(20), default="email")
    import_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("attendance_imports.id", ondelete="SET NULL"), default=None
    )


class Certificate(UUIDv7AuditBase):
    """A certificate of attendance; its public verification code is stored only as a hash."""

    __tablename__ = "certificates"

    registration_id: Mapped[UUID] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), unique=True
    )
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    code_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    basis: Mapped[str] = mapped_column(sa.String(20))
    issued_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
