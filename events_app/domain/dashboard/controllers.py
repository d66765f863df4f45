"""The programme dashboard and one event's dashboard (check-in staff see neither: 404)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from events_app.db.models import Role
from events_app.deps import DbSession
from events_app.domain.accounts.deps import PrincipalDep
from events_app.domain.accounts.permissions import Principal
from events_app.domain.dashboard.charts import present_dashboard
from events_app.domain.dashboard.services import Dashboard, DashboardService
from events_app.lib.i18n import current_language


def _context(principal: Principal, dashboard: Dashboard) -> dict[str, Any]:
    return {
        "principal": principal,
        "countries_only": principal.role is Role.FOCAL_POINT,
        "view": present_dashboard(dashboard),
    }


class DashboardPages(Controller):
    include_in_schema = False

    @get("/manage/dashboard", name="dashboard")
    async def programme(self, principal: PrincipalDep, db_session: DbSession) -> Template:
        dashboard = await DashboardService(db_session).for_programme(principal)
        if dashboard is None:
            raise NotFoundException()
        context = {**_context(principal, dashboard), "event": None}
        return Template("manage/dashboard/dashboard.html", context=context)

    @get("/manage/events/{event_id:uuid}/dashboard", name="event_dashboard")
    async def event(
        self, event_id: FromPath[UUID], principal: PrincipalDep, db_session: DbSession
    ) -> Template:
        found = await DashboardService(db_session).for_event(principal, event_id)
        if found is None:
            raise NotFoundException()
        event, dashboard = found
        context = {
            **_context(principal, dashboard),
            "event": {"id": event.id, "title": event.text("title", current_language())},
        }
        return Template("manage/dashboard/dashboard.html", context=context)
