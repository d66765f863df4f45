"""The closed vocabularies of the data model, stored as their string values."""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa


class EventKind(StrEnum):
    IN_PERSON = "in_person"
    ONLINE = "online"
    HYBRID = "hybrid"

    @property
    def is_online(self) -> bool:
        return self in (EventKind.ONLINE, EventKind.HYBRID)

    @property
    def has_venue(self) -> bool:
        return self in (EventKind.IN_PERSON, EventKind.HYBRID)


class EventStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"


class RegistrationStatus(StrEnum):
    CONFIRMED = "confirmed"
    PENDING_APPROVAL = "pending_approval"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


#: Statuses that hold the person's place: at most one such registration per event and email.
ACTIVE_REGISTRATION_STATUSES = (
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.PENDING_APPROVAL,
    RegistrationStatus.WAITLISTED,
)


class Sector(StrEnum):
    POLICE = "police"
    PROSECUTION = "prosecution"
    JUDICIARY = "judiciary"
    PENITENTIARY = "penitentiary"
    CUSTOMS = "customs"
    MINISTRY = "ministry"
    INTERNATIONAL_ORGANISATION = "international_organisation"
    OTHER = "other"


class Role(StrEnum):
    ADMIN = "admin"
    EVENT_MANAGER = "event_manager"
    FOCAL_POINT = "focal_point"
    CHECKIN_STAFF = "checkin_staff"


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    #: Not sent because it no longer applied when its turn came (e.g. a reminder to someone who cancelled).
    SKIPPED = "skipped"


def string_enum(enum_type: type[StrEnum], length: int = 32) -> sa.Enum:
    """A portable VARCHAR column for a StrEnum (no native PostgreSQL enum type to migrate)."""
    return sa.Enum(
        enum_type,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
