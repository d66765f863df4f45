from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import JsonB
from sqlalchemy.orm import Mapped, mapped_column

from events_app.db.models.enums import RegistrationStatus, string_enum


class AuditEntry(UUIDv7AuditBase):
    """Who did what to which object: every organiser change, mail sent and personal-data export."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_created_at", "created_at"),)

    actor_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    actor_label: Mapped[str] = mapped_column(sa.String(320))
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    object_type: Mapped[str] = mapped_column(sa.String(64))
    object_id: Mapped[str] = mapped_column(sa.String(64), default="")
    event_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("events.id", ondelete="SET NULL"), default=None, index=True
    )
    details: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)


class RegistrationChange(UUIDv7AuditBase):
    """One step of a registration's status history."""

    __tablename__ = "registration_changes"

    registration_id: Mapped[UUID] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[RegistrationStatus | None] = mapped_column(
        string_enum(RegistrationStatus), default=None
    )
    to_status: Mapped[RegistrationStatus] = mapped_column(string_enum(RegistrationStatus))
    actor_label: Mapped[str] = mapped_column(sa.String(320), default="")
    note: Mapped[str] = mapped_column(sa.String(500), default="")
