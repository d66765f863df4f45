"""Every table of the application; import this module to have the whole metadata."""

from advanced_alchemy.base import orm_registry

from events_app.db.models.enums import (
    ACTIVE_REGISTRATION_STATUSES,
    EventKind,
    EventStatus,
    OutboxStatus,
    RegistrationStatus,
    Sector,
)
from events_app.db.models.event import Event
from events_app.db.models.outbox import OutboxMessage
from events_app.db.models.registration import Registration

metadata = orm_registry.metadata

__all__ = [
    "ACTIVE_REGISTRATION_STATUSES",
    "Event",
    "EventKind",
    "EventStatus",
    "OutboxMessage",
    "OutboxStatus",
    "Registration",
    "RegistrationStatus",
    "Sector",
    "metadata",
]
