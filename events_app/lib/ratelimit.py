"""Fixed-window rate limits kept in the database, so every web process counts the same hits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from events_app.db.models import RateLimitBucket


async def hit(session: AsyncSession, key: str, limit: int, window: timedelta) -> bool:
    """Count one attempt for ``key``; True while the window holds at most ``limit`` attempts.

    One atomic upsert: a new window restarts the count at 1, otherwise it grows by one. It runs in
    the caller's transaction, so commit (or let the request commit) for the hit to count.
    """
    now = datetime.now(UTC)
    expired = RateLimitBucket.window_started_at <= now - window
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    table = cast(sa.Table, RateLimitBucket.__table__)
    values = insert(table).values(
        id=uuid7(), key=key, window_started_at=now, hits=1, created_at=now, updated_at=now
    )
    statement = values.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "hits": sa.case((expired, 1), else_=table.c.hits + 1),
            "window_started_at": sa.case((expired, now), else_=table.c.window_started_at),
            "updated_at": now,
        },
    ).returning(table.c.hits)
    hits = (await session.execute(statement)).scalar_one()
    return int(hits) <= limit
