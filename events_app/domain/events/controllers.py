"""Public event pages and the public events API."""

from __future__ import annotations

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.response import Template

from events_app.deps import EventServiceDep, PathStr, SettingsDep, ViewerZone
from events_app.domain.events.schemas import EventOut, event_out, present_event
from events_app.lib.i18n import gettext


class EventPages(Controller):
    include_in_schema = False

    @get("/", name="home")
    async def home(self, event_service: EventServiceDep, viewer_zone: ViewerZone) -> Template:
        upcoming = [present_event(event, viewer_zone) for event in await event_service.list_upcoming()]
        past = [present_event(event, viewer_zone) for event in await event_service.list_past()]
        return Template("events/list.html", context={"upcoming": upcoming, "past": past})

    @get("/events/{slug:str}", name="event")
    async def event_page(
        self, slug: PathStr, event_service: EventServiceDep, viewer_zone: ViewerZone
    ) -> Template:
        event = await event_service.get_public(slug)
        if event is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        return Template("events/detail.html", context={"event": present_event(event, viewer_zone)})


class EventsApi(Controller):
    path = "/api/events"
    tags = ["events"]

    @get("/", summary="Upcoming published events")
    async def list_events(self, event_service: EventServiceDep, settings: SettingsDep) -> list[EventOut]:
        return [event_out(event, settings.base_url) for event in await event_service.list_upcoming()]

    @get("/{slug:str}", summary="One published event")
    async def get_event(
        self, slug: PathStr, event_service: EventServiceDep, settings: SettingsDep
    ) -> EventOut:
        event = await event_service.get_public(slug)
        if event is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        return event_out(event, settings.base_url)
