"""The audit log: one row per organiser action that changes data, sends mail or exports personal data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from events_app.db.models import AuditEntry
from events_app.domain.accounts.permissions import Principal


def record(
    session: AsyncSession,
    principal: Principal | None,
    action: str,
    object_type: str,
    object_id: UUID | str | None = None,
    event_id: UUID | None = None,
    **details: Any,
) -> AuditEntry:
    """Add an entry to the caller's transaction (it is kept only if the action itself commits)."""
    entry = AuditEntry(
        id=uuid7(),
        actor_id=principal.user_id if principal else None,
        actor_label=principal.label if principal else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else "",
        event_id=event_id,
        details=details,
    )
    session.add(entry)
    return entry


async def search(
    session: AsyncSession,
    *,
    action: str | None = None,
    actor: str | None = None,
    event_id: UUID | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AuditEntry]:
    statement = sa.select(AuditEntry).order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if action:
        statement = statement.where(AuditEntry.action == action)
    if actor:
        escaped = actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(AuditEntry.actor_label.ilike(f"%{escaped}%", escape="\\"))
    if event_id:
        statement = statement.where(AuditEntry.event_id == event_id)
    return (await session.execute(statement.limit(limit).offset(offset))).scalars().all()
