"""Every table of the application; import this module to have the whole metadata."""

from advanced_alchemy.base import orm_registry

from events_app.db.models.account import (
    ApiToken,
    EventAssignment,
    FocalPointCountry,
    RateLimitBucket,
    User,
    UserSession,
)
from events_app.db.models.attendance import (
    AttendanceImport,
    Certificate,
    CheckIn,
    JoinClick,
    OnlineAttendance,
    ScanAttempt,
)
from events_app.db.models.audit import AuditEntry, RegistrationChange
from events_app.db.models.enums import (
    ACTIVE_REGISTRATION_STATUSES,
    EventKind,
    EventStatus,
    OutboxStatus,
    RegistrationStatus,
    Role,
    Sector,
)
from events_app.db.models.event import Event
from events_app.db.models.message import MassMessage
from events_app.db.models.outbox import OutboxMessage
from events_app.db.models.registration import Registration

metadata = orm_registry.metadata

__all__ = [
    "ACTIVE_REGISTRATION_STATUSES",
    "ApiToken",
    "AttendanceImport",
    "AuditEntry",
    "Certificate",
    "CheckIn",
    "Event",
    "EventAssignment",
    "EventKind",
    "EventStatus",
    "FocalPointCountry",
    "JoinClick",
    "MassMessage",
    "OnlineAttendance",
    "OutboxMessage",
    "OutboxStatus",
    "RateLimitBucket",
    "Registration",
    "RegistrationChange",
    "RegistrationStatus",
    "Role",
    "ScanAttempt",
    "Sector",
    "User",
    "UserSession",
    "metadata",
]
