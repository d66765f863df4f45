"""Fixed-window rate limits kept in the database, so every web process counts the same hits."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from events_app.db.models import RateLimitBucket
from events_app.lib.security import keyed_digest


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``limit`` attempts per ``window`` for ``key``; a limit of 0 or less means no limit."""

    key: str
    limit: int
    window: timedelta

    @property
    def active(self) -> bool:
        return self.limit > 0 and self.window > timedelta(0)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    #: Seconds until the longest of the exceeded windows ends (0 when allowed).
    retry_after: int = 0

    @property
    def retry_after_header(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if not self.allowed else {}


def hashed(secret_key: str, value: str) -> str:
    """A key part that keeps an email or address neither readable nor reversible in the table.

    Keyed with the installation's secret: a plain hash of every IPv4 address, or of a list of emails,
    would give them back.
    """
    return keyed_digest(secret_key, "ratelimit", value)


async def _count(session: AsyncSession, key: str, window: timedelta) -> tuple[int, datetime, datetime]:
    """Count one attempt for ``key``: (hits in the current window, when it started, now).

    One atomic upsert: a new window restarts the count at 1, otherwise it grows by one.
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
    ).returning(table.c.hits, table.c.window_started_at)
    row = (await session.execute(statement)).one()
    started = row[1]
    if isinstance(started, datetime) and started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return int(row[0]), started if isinstance(started, datetime) else now, now


async def hit(session: AsyncSession, key: str, limit: int, window: timedelta) -> bool:
    """Count one attempt for ``key``; True while the window holds at most ``limit`` attempts.

    It runs in the caller's transaction, so commit (or let the request commit) for the hit to count.
    """
    hits, _, _ = await _count(session, key, window)
    return hits <= limit


async def check(session: AsyncSession, limits: Iterable[Limit]) -> Verdict:
    """Count one attempt against every active limit (each one always counts, exceeded or not).

    Runs in the caller's transaction: commit it before doing work that may roll back, or the hits
    are rolled back with it. Limits of 0 are skipped without touching the database.
    """
    retry_after = 0
    allowed = True
    for limit in limits:
        if not limit.active:
            continue
        hits, started, now = await _count(session, limit.key, limit.window)
        if hits > limit.limit:
            allowed = False
            remaining = (started + limit.window - now).total_seconds()
            retry_after = max(retry_after, max(1, math.ceil(remaining)))
    return Verdict(allowed, retry_after)


async def purge_expired(session: AsyncSession, older_than: timedelta) -> int:
    """Delete counters untouched for ``older_than`` (longer than any window); in the caller's transaction."""
    cutoff = datetime.now(UTC) - older_than
    result = await session.execute(
        sa.delete(RateLimitBucket)
        .where(RateLimitBucket.updated_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
