"""Every organiser controller, in one list the app wires in (and the permission-matrix test reads)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from events_app.domain.admin.controllers import AuditPages, TokenPages, UserPages
from events_app.domain.attendance.controllers import AttendancePages
from events_app.domain.attendees.controllers import AttendeePages, OrganiserApi
from events_app.domain.checkin.controllers import CheckinApi, CheckinPages
from events_app.domain.dashboard.controllers import DashboardPages
from events_app.domain.events.manage_controllers import ManageEventPages
from events_app.domain.manage.controllers import ManageHome
from events_app.domain.messages.controllers import MessagePages
from events_app.domain.privacy.controllers import PurgePages

ORGANISER_CONTROLLERS: list[ControllerRouterHandler] = [
    ManageHome,
    DashboardPages,
    UserPages,
    TokenPages,
    AuditPages,
    MessagePages,
    ManageEventPages,
    AttendeePages,
    OrganiserApi,
    AttendancePages,
    CheckinApi,
    CheckinPages,
    PurgePages,
]
