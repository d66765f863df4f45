from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.orm import Mapped, mapped_column, relationship

from events_app.db.models.enums import Role, string_enum


class User(UUIDv7AuditBase):
    """An organiser account. Participants have no account: their registration link is their key."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[Role] = mapped_column(string_enum(Role))
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    event_assignments: Mapped[list[EventAssignment]] = relationship(
        back_populates="user", lazy="selectin", cascade="all, delete-orphan"
    )
    countries: Mapped[list[FocalPointCountry]] = relationship(
        back_populates="user", lazy="selectin", cascade="all, delete-orphan"
    )


class EventAssignment(UUIDv7AuditBase):
    """An event an event manager manages, or a check-in staff member works at."""

    __tablename__ = "event_assignments"
    __table_args__ = (sa.UniqueConstraint("user_id", "event_id"),)

    user_id: Mapped[UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[UUID] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    user: Mapped[User] = relationship(back_populates="event_assignments")


class FocalPointCountry(UUIDv7AuditBase):
    """A country whose registrants a focal point sees and approves."""

    __tablename__ = "focal_point_countries"
    __table_args__ = (sa.UniqueConstraint("user_id", "country"),)

    user_id: Mapped[UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    country: Mapped[str] = mapped_column(sa.String(2))
    user: Mapped[User] = relationship(back_populates="countries")


class UserSession(UUIDv7AuditBase):
    """A login. The cookie holds a random token; only its hash is stored. Logout deletes the row."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class ApiToken(UUIDv7AuditBase):
    """A token for integrations; it acts with the rights of the user it belongs to."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(sa.String(120))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined", innerjoin=True)


class RateLimitBucket(UUIDv7AuditBase):
    """A fixed-window counter shared by every process (login, registration, check-in limits)."""

    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    window_started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    hits: Mapped[int] = mapped_column(sa.Integer, default=0)
