"""Public event pages and the public events API."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import Template

from events_app.deps import EventServiceDep, PathStr, SettingsDep, ViewerZone
from events_app.domain.events.calendars import add_to_calendar_links, event_ics, feed_ics
from events_app.domain.events.schemas import EventOut, event_out, present_event
from events_app.domain.registrations.views import API_INPUT_ERRORS, ApiError
from events_app.lib.i18n import (
    SUPPORTED_LANGUAGES,
    current_language,
    force_locale,
    gettext,
    language_name,
    normalize_language,
)

ICS_MEDIA_TYPE = "text/calendar; charset=utf-8"


def feed_url(base_url: str, language: str | None = None) -> str:
    """The subscription address: webcal:// makes calendar apps offer to subscribe.

    With a language, the feed's texts are in that language whatever the calendar app sends.
    """
    path = f"/calendar/{language}/events.ics" if language else "/calendar.ics"
    return "webcal://" + base_url.split("://", 1)[-1] + path


def feed_links(base_url: str) -> list[tuple[str, str, str]]:
    """(language code, language name, subscription address) for every language, for the events list."""
    return [(code, language_name(code), feed_url(base_url, code)) for code in SUPPORTED_LANGUAGES]


class EventPages(Controller):
    include_in_schema = False

    @get("/", name="home")
    async def home(
        self, event_service: EventServiceDep, viewer_zone: ViewerZone, settings: SettingsDep
    ) -> Template:
        upcoming = [present_event(event, viewer_zone) for event in await event_service.list_upcoming()]
        past = [present_event(event, viewer_zone) for event in await event_service.list_past()]
        context = {"upcoming": upcoming, "past": past, "feeds": feed_links(settings.base_url)}
        return Template("events/list.html", context=context)

    @get("/events/{slug:str}", name="event")
    async def event_page(
        self, slug: PathStr, event_service: EventServiceDep, viewer_zone: ViewerZone, settings: SettingsDep
    ) -> Template:
        event = await event_service.get_public(slug)
        if event is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        context = {
            "event": present_event(event, viewer_zone),
            "calendar_links": add_to_calendar_links(event, settings.base_url),
            "feed_url": feed_url(settings.base_url, current_language()),
        }
        return Template("events/detail.html", context=context)

    @get("/events/{slug:str}/calendar.ics", name="event_ics")
    async def event_calendar(
        self, slug: PathStr, event_service: EventServiceDep, settings: SettingsDep
    ) -> Response[bytes]:
        event = await event_service.get_public(slug)
        if event is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        headers = {"Content-Disposition": f'attachment; filename="{event.slug}.ics"'}
        return Response(event_ics(event, settings.base_url), media_type=ICS_MEDIA_TYPE, headers=headers)

    @get("/calendar.ics", name="feed")
    async def feed(self, event_service: EventServiceDep, settings: SettingsDep) -> Response[bytes]:
        """Every published (and cancelled) upcoming and past event, for calendar subscriptions."""
        events = await event_service.list_for_feed()
        body = feed_ics(events, settings.base_url, gettext("Programme events"))
        return Response(body, media_type=ICS_MEDIA_TYPE, headers={"Cache-Control": "public, max-age=300"})

    @get("/calendar/{language:str}/events.ics", name="feed_in_language")
    async def feed_in_language(
        self, language: PathStr, event_service: EventServiceDep, settings: SettingsDep
    ) -> Response[bytes]:
        """The same feed with its texts in one language (each event's base language where it lacks one)."""
        chosen = normalize_language(language)
        if chosen is None or chosen != language:
            raise NotFoundException()
        events = await event_service.list_for_feed()
        with force_locale(chosen):
            body = feed_ics(events, settings.base_url, gettext("Programme events"))
        return Response(body, media_type=ICS_MEDIA_TYPE, headers={"Cache-Control": "public, max-age=300"})


class EventsApi(Controller):
    path = "/api/events"
    tags = ["events"]

    @get("/", summary="Upcoming published events")
    async def list_events(self, event_service: EventServiceDep, settings: SettingsDep) -> list[EventOut]:
        return [event_out(event, settings.base_url) for event in await event_service.list_upcoming()]

    @get(
        "/{slug:str}",
        summary="One published event",
        responses={**API_INPUT_ERRORS, 404: ApiError.response_spec("No published event has this slug.")},
    )
    async def get_event(
        self, slug: PathStr, event_service: EventServiceDep, settings: SettingsDep
    ) -> EventOut:
        event = await event_service.get_public(slug)
        if event is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        return event_out(event, settings.base_url)
