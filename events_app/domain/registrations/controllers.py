"""Registering (form and API) and the participant's "my registration" pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_201_CREATED, HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY

from events_app.db.models import Registration
from events_app.deps import EventServiceDep, PathStr, RegistrationServiceDep, SettingsDep, ViewerZone
from events_app.domain.attendance.services import certificate_available
from events_app.domain.events.schemas import present_event
from events_app.domain.registrations import schemas
from events_app.domain.registrations.notifications import calendar_for, join_link, ticket_code
from events_app.domain.registrations.schemas import RegistrationInvalid, RegistrationRequest
from events_app.domain.registrations.services import ACCEPTED_OUTCOMES, RegistrationService
from events_app.domain.registrations.views import (
    ApiError,
    RegistrationAccepted,
    form_context,
    my_registration_context,
    outcome_message,
)
from events_app.lib.i18n import current_language, gettext
from events_app.lib.tickets import ticket_qr_png

FormData = URLEncodedBody[dict[str, Any]]
#: Pages reached by a secret link: no caching, and the link never leaks through a Referer.
SECRET_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class RegistrationPages(Controller):
    include_in_schema = False

    @get("/events/{slug:str}/register", name="register")
    async def form(self, slug: PathStr, event_service: EventServiceDep, viewer_zone: ViewerZone) -> Template:
        event = await event_service.get_public(slug)
        if event is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        view = present_event(event, viewer_zone)
        return Template(
            "registrations/form.html", context=form_context(view, {"language": current_language()}, {})
        )

    @post("/events/{slug:str}/register", name="register_submit")
    async def submit(
        self,
        slug: PathStr,
        data: FormData,
        event_service: EventServiceDep,
        registration_service: RegistrationServiceDep,
        viewer_zone: ViewerZone,
    ) -> Template | Redirect:
        event = await event_service.get_public(slug)
        if event is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        values = {key: value for key, value in data.items() if isinstance(value, str)}
        try:
            registration_data = schemas.validate(data)
        except RegistrationInvalid as invalid:
            context = form_context(present_event(event, viewer_zone), values, invalid.by_field())
            return Template(
                "registrations/form.html", context=context, status_code=HTTP_422_UNPROCESSABLE_ENTITY
            )
        result = await registration_service.register(slug, registration_data)
        if result.outcome in ACCEPTED_OUTCOMES:
            return Redirect(f"/events/{slug}/registered")
        await event_service.repository.session.refresh(event)
        context = form_context(present_event(event, viewer_zone), values, {})
        context["form_message"] = outcome_message(result)
        return Template("registrations/form.html", context=context, status_code=HTTP_409_CONFLICT)

    @get("/events/{slug:str}/registered", name="registered")
    async def registered(
        self, slug: PathStr, event_service: EventServiceDep, viewer_zone: ViewerZone
    ) -> Template:
        event = await event_service.get_public(slug)
        if event is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        return Template("registrations/registered.html", context={"event": present_event(event, viewer_zone)})

    @get("/my/{token:str}", name="my_registration")
    async def my_registration(
        self,
        token: PathStr,
        registration_service: RegistrationServiceDep,
        settings: SettingsDep,
        viewer_zone: ViewerZone,
    ) -> Template:
        registration = await _registration_or_404(registration_service, token)
        position = await registration_service.waitlist_position(registration)
        certificate = await certificate_available(
            registration_service.session, registration, datetime.now(UTC)
        )
        context = my_registration_context(
            registration,
            token,
            viewer_zone,
            position,
            join_link=join_link(settings, registration),
            certificate_available=certificate,
        )
        return Template("registrations/my.html", context=context, headers=SECRET_PAGE_HEADERS)

    @get("/my/{token:str}/ticket.png", name="my_ticket")
    async def ticket(
        self, token: PathStr, registration_service: RegistrationServiceDep, settings: SettingsDep
    ) -> Response[bytes]:
        registration = await _registration_or_404(registration_service, token)
        if not registration.is_active:
            raise NotFoundException(gettext("This registration has no valid ticket."))
        png = ticket_qr_png(ticket_code(settings, registration))
        return Response(png, media_type="image/png", headers=SECRET_PAGE_HEADERS)

    @get("/my/{token:str}/invite.ics", name="my_invite")
    async def invite(
        self, token: PathStr, registration_service: RegistrationServiceDep, settings: SettingsDep
    ) -> Response[bytes]:
        registration = await _registration_or_404(registration_service, token)
        calendar, method = calendar_for(settings, registration, registration.invite_sequence)
        headers = {**SECRET_PAGE_HEADERS, "Content-Disposition": 'attachment; filename="invite.ics"'}
        return Response(
            calendar, media_type=f"text/calendar; charset=utf-8; method={method.value}", headers=headers
        )

    @get("/my/{token:str}/cancel", name="my_cancel")
    async def cancel_confirm(
        self, token: PathStr, registration_service: RegistrationServiceDep, viewer_zone: ViewerZone
    ) -> Template:
        registration = await _registration_or_404(registration_service, token)
        context = my_registration_context(registration, token, viewer_zone)
        return Template("registrations/cancel.html", context=context, headers=SECRET_PAGE_HEADERS)

    @post("/my/{token:str}/cancel", name="my_cancel_submit")
    async def cancel(self, token: PathStr, registration_service: RegistrationServiceDep) -> Redirect:
        registration = await _registration_or_404(registration_service, token)
        await registration_service.cancel(registration)
        return Redirect(f"/my/{token}", headers=SECRET_PAGE_HEADERS)


class RegistrationsApi(Controller):
    path = "/api/events/{slug:str}/registrations"
    tags = ["registrations"]

    @post(
        "/",
        summary="Register for an event",
        status_code=HTTP_201_CREATED,
        responses={
            409: ApiError.response_spec("The event is full, closed or not open for registration."),
            422: ApiError.response_spec("Invalid fields; `errors` lists them."),
        },
    )
    async def register(
        self,
        slug: PathStr,
        data: JSONBody[RegistrationRequest],
        registration_service: RegistrationServiceDep,
        event_service: EventServiceDep,
    ) -> Response[RegistrationAccepted] | Response[ApiError]:
        if await event_service.get_public(slug) is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        try:
            registration_data = schemas.validate(
                {field: getattr(data, field) for field in data.__struct_fields__}
            )
        except RegistrationInvalid as invalid:
            return Response(ApiError.invalid(invalid), status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        result = await registration_service.register(slug, registration_data)
        if result.outcome in ACCEPTED_OUTCOMES:
            return Response(RegistrationAccepted.for_slug(slug), status_code=HTTP_201_CREATED)
        return Response(ApiError.conflict(result), status_code=HTTP_409_CONFLICT)


async def _registration_or_404(service: RegistrationService, token: str) -> Registration:
    registration = await service.get_by_manage_token(token)
    if registration is None:
        raise NotFoundException(gettext("This link is not valid. Check the link in your email."))
    return registration
