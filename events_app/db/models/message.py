from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import JsonB
from sqlalchemy.orm import Mapped, mapped_column


class MassMessage(UUIDv7AuditBase):
    """A message an organiser wrote to a filtered set of an event's registrants."""

    __tablename__ = "mass_messages"

    event_id: Mapped[UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    #: ``{language: {"subject": ..., "body": ...}}``; the event's base language is the fallback.
    texts: Mapped[dict[str, dict[str, str]]] = mapped_column(JsonB, default=dict)
    filters: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    created_by_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    recipient_count: Mapped[int] = mapped_column(sa.Integer, default=0)
