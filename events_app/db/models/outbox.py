from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy.orm import Mapped, mapped_column

from events_app.db.models.enums import OutboxStatus, string_enum


class OutboxMessage(UUIDv7AuditBase):
    """An email to send, written in the same transaction as the change that caused it.

    The row holds the intent (kind, recipient, registration, payload), not the rendered message: the
    worker builds the message when it sends, so nothing of the mail costs time on the request path.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_attempt_at"),)

    kind: Mapped[str] = mapped_column(sa.String(64))
    recipient: Mapped[str] = mapped_column(sa.String(320))
    language: Mapped[str] = mapped_column(sa.String(8))
    registration_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="SET NULL"), default=None, index=True
    )
    mass_message_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("mass_messages.id", ondelete="SET NULL"), default=None, index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    #: Set when the row is written and reused on every try, so a repeated delivery is recognisable.
    message_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    #: Optional key that makes a message unique (a reminder is sent once per registration and time).
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True, default=None)

    status: Mapped[OutboxStatus] = mapped_column(string_enum(OutboxStatus), default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    locked_by: Mapped[str | None] = mapped_column(sa.String(120), default=None)
    last_error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
