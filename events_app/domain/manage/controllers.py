"""The organisers' start page."""

from __future__ import annotations

import sqlalchemy as sa
from litestar import Controller, get
from litestar.response import Template

from events_app.db.models import Event
from events_app.deps import DbSession
from events_app.domain.accounts.deps import PrincipalDep
from events_app.domain.events.schemas import present_event


class ManageHome(Controller):
    include_in_schema = False

    @get("/manage", name="manage_home")
    async def home(self, principal: PrincipalDep, db_session: DbSession) -> Template:
        events = (
            await db_session.execute(
                sa.select(Event).where(principal.events_filter()).order_by(Event.starts_at.desc()).limit(200)
            )
        ).scalars()
        rows = [(event, present_event(event)) for event in events]
        return Template("manage/home.html", context={"principal": principal, "events": rows})
