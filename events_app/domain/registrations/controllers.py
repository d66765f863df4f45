"""Registering (form and API) and the participant's "my registration" pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_201_CREATED,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
)

from events_app.db.models import Registration
from events_app.deps import EventServiceDep, PathStr, RegistrationServiceDep, SettingsDep, ViewerZone
from events_app.domain.attendance.services import certificate_available
from events_app.domain.events.schemas import present_event
from events_app.domain.events.services import RegistrationState
from events_app.domain.privacy.controllers import registration_by_link
from events_app.domain.registrations import abuse, schemas
from events_app.domain.registrations.notifications import calendar_for, join_link, ticket_code
from events_app.domain.registrations.schemas import RegistrationInvalid, RegistrationRequest
from events_app.domain.registrations.services import ACCEPTED_OUTCOMES, RegistrationService
from events_app.domain.registrations.views import (
    API_INPUT_ERRORS,
    ApiError,
    RegistrationAccepted,
    form_context,
    my_registration_context,
    outcome_message,
)
from events_app.lib.i18n import current_language, gettext
from events_app.lib.tickets import ticket_qr_png
from events_app.lib.web import client_ip
from events_app.settings import Settings

FormData = URLEncodedBody[dict[str, Any]]
AnyRequest = Request[Any, Any, Any]
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
        request: AnyRequest,
        slug: PathStr,
        data: FormData,
        event_service: EventServiceDep,
        registration_service: RegistrationServiceDep,
        settings: SettingsDep,
        viewer_zone: ViewerZone,
    ) -> Template | Redirect:
        event = await event_service.get_public(slug)
        if event is None:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        values = {key: value for key, value in data.items() if isinstance(value, str)}
        values.pop(abuse.HONEYPOT_FIELD, None)  # the form comes back with it empty
        if abuse.honeypot_filled(data):  # nothing stored or sent; a person submits again (see abuse)
            context = form_context(present_event(event, viewer_zone), values, {})
            context["form_message"] = abuse.honeypot_message()
            return Template(
                "registrations/form.html", context=context, status_code=HTTP_422_UNPROCESSABLE_ENTITY
            )
        invalid: RegistrationInvalid | None = None
        try:
            registration_data = schemas.validate(data)
        except RegistrationInvalid as error:
            invalid = error
        email = None if invalid else registration_data.email_normalized
        verdict = await registration_service.count_attempt(
            abuse.registration_limits(settings, client_ip(request.scope), email)
        )
        if invalid is not None or not verdict.allowed:
            errors = invalid.by_field() if invalid else {}
            context = form_context(present_event(event, viewer_zone), values, errors)
            status = HTTP_422_UNPROCESSABLE_ENTITY
            if not verdict.allowed:  # what was typed stays, with the message above the form
                context["form_message"] = abuse.too_many_attempts(verdict)
                status = HTTP_429_TOO_MANY_REQUESTS
            return Template(
                "registrations/form.html",
                context=context,
                status_code=status,
                headers=verdict.retry_after_header,
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

    @get("/my/resend", name="my_resend")
    async def resend_form(self) -> Template:
        return Template("registrations/resend.html", context=abuse.resend_context({}, None))

    @post("/my/resend", name="my_resend_submit")
    async def resend(
        self,
        request: AnyRequest,
        data: FormData,
        registration_service: RegistrationServiceDep,
        settings: SettingsDep,
    ) -> Template:
        """The same answer for known and unknown addresses; only a known one gets an email."""
        values = {"email": data["email"]} if isinstance(data.get("email"), str) else {}
        if abuse.honeypot_filled(data):  # nothing queued; a person submits again (see abuse)
            context = abuse.resend_context(values, None, abuse.honeypot_message())
            return Template(
                "registrations/resend.html", context=context, status_code=HTTP_422_UNPROCESSABLE_ENTITY
            )
        try:
            email: str | None = abuse.validate_resend_email(data)
            error = None
        except abuse.ResendInvalid as invalid:
            email, error = None, invalid.message
        verdict = await registration_service.count_attempt(
            abuse.resend_limits(settings, client_ip(request.scope), email)
        )
        if not verdict.allowed:
            context = abuse.resend_context(values, error, abuse.too_many_attempts(verdict))
            return Template(
                "registrations/resend.html",
                context=context,
                status_code=HTTP_429_TOO_MANY_REQUESTS,
                headers=verdict.retry_after_header,
            )
        if email is None:
            context = abuse.resend_context(values, error)
            return Template(
                "registrations/resend.html", context=context, status_code=HTTP_422_UNPROCESSABLE_ENTITY
            )
        await registration_service.send_links(email)
        return Template("registrations/resend_sent.html")

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
            **API_INPUT_ERRORS,
            404: ApiError.response_spec("No published event has this slug."),
            409: ApiError.response_spec("The event is full, closed or not open for registration."),
            422: ApiError.response_spec("Invalid fields; `errors` lists them."),
            429: ApiError.response_spec(
                "Too many attempts from this address or with this email (`code` is `rate_limited`); "
                "the `Retry-After` header says how many seconds to wait."
            ),
        },
    )
    async def register(
        self,
        request: AnyRequest,
        slug: PathStr,
        data: JSONBody[RegistrationRequest],
        registration_service: RegistrationServiceDep,
    ) -> Response[RegistrationAccepted] | Response[ApiError]:
        # One dependency (its own are one each): Litestar resolves several of one level in an anyio task
        # group, tasks per request. The settings come from the app's state.
        settings: Settings = request.app.state.settings
        invalid: RegistrationInvalid | None = None
        try:
            registration_data = schemas.validate(
                {field: getattr(data, field) for field in data.__struct_fields__}
            )
        except RegistrationInvalid as error:
            invalid = error
        email = None if invalid else registration_data.email_normalized
        limits = abuse.registration_limits(settings, client_ip(request.scope), email)
        # An unknown event is a 404 before field errors and rate limits; on the common path (valid
        # input, no limits) the registration's own read of the event tells, saving a query.
        if (invalid is not None or any(limit.active for limit in limits)) and not (
            await registration_service.event_is_public(slug)
        ):
            raise NotFoundException(gettext("This event does not exist or is not published."))
        verdict = await registration_service.count_attempt(limits)
        if not verdict.allowed:
            return Response(
                ApiError(detail=abuse.too_many_attempts(verdict), code="rate_limited"),
                status_code=HTTP_429_TOO_MANY_REQUESTS,
                headers=verdict.retry_after_header,
            )
        if invalid is not None:
            return Response(ApiError.invalid(invalid), status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        result = await registration_service.register(slug, registration_data)
        if result.outcome in ACCEPTED_OUTCOMES:
            return Response(RegistrationAccepted.for_slug(slug), status_code=HTTP_201_CREATED)
        if result.state is RegistrationState.NOT_PUBLISHED:
            raise NotFoundException(gettext("This event does not exist or is not published."))
        return Response(ApiError.conflict(result), status_code=HTTP_409_CONFLICT)


async def _registration_or_404(service: RegistrationService, token: str) -> Registration:
    """404 for an unknown link; 410 with a plain explanation once the registration's data was erased."""
    return await registration_by_link(service, token)
