"""Every organiser controller, in one list the app wires in (and the permission-matrix test reads)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from events_app.domain.manage.controllers import ManageHome

ORGANISER_CONTROLLERS: list[ControllerRouterHandler] = [
    ManageHome,
]
