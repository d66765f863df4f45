"""The attendee list, its exports, the registrant page and the organiser API.

Everything is narrowed by the principal: an event, registration or email outside their scope answers
404, also for ids guessed in URLs and forms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

from litestar import Controller, MediaType, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Stream, Template
from litestar.status_codes import HTTP_200_OK, HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncEngine

from events_app.db.models import Event, Registration
from events_app.deps import DbSession, RegistrationServiceDep
from events_app.domain.accounts.deps import ApiPrincipalDep, PrincipalDep
from events_app.domain.accounts.permissions import Principal
from events_app.domain.attendees import services, views
from events_app.domain.attendees.exports import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    RowLabels,
    csv_stream,
    export_filename,
    xlsx_stream,
)
from events_app.domain.attendees.schemas import (
    API_PAGE_SIZE,
    AttendeeQuery,
    AttendeeQueryInvalid,
    DecisionOut,
    RawAttendeeQuery,
    RegistrationListOut,
    parse_query,
    raw_from_pairs,
)
from events_app.domain.attendees.services import Decision
from events_app.domain.registrations.services import DecisionError, RegistrationService
from events_app.domain.registrations.views import API_INPUT_ERRORS, ApiError, FieldErrorOut
from events_app.lib.i18n import gettext

FormData = URLEncodedBody[dict[str, Any]]
PathUUID = FromPath[UUID]
LIST_TEMPLATE = "manage/attendees/list.html"
REGISTRANT_TEMPLATE = "manage/attendees/registration.html"
#: Personal data: never kept by a browser or proxy cache.
NO_STORE = {"Cache-Control": "no-store"}


def provide_attendee_query(
    q: FromQuery[str | None] = None,
    status: FromQuery[list[str] | None] = None,
    country: FromQuery[list[str] | None] = None,
    sector: FromQuery[list[str] | None] = None,
    language: FromQuery[list[str] | None] = None,
    sort: FromQuery[str | None] = None,
    order: FromQuery[str | None] = None,
    limit: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> RawAttendeeQuery:
    """The list's query string, unchecked (``schemas.parse_query`` checks it)."""
    return RawAttendeeQuery(
        q=q or "",
        status=tuple(status or ()),
        country=tuple(country or ()),
        sector=tuple(sector or ()),
        language=tuple(language or ()),
        sort=sort or "",
        order=order or "",
        limit=limit or "",
        cursor=cursor or "",
    )


AttendeeQueryDep = NamedDependency[RawAttendeeQuery]
DbEngine = NamedDependency[AsyncEngine]
_QUERY_DEPENDENCIES = {"attendee_query": Provide(provide_attendee_query, sync_to_thread=False)}


async def _event_or_404(db_session: DbSession, principal: Principal, event_id: UUID) -> Event:
    event = await services.visible_event(db_session, principal, event_id)
    if event is None:
        raise NotFoundException
    return event


async def _registration_or_404(
    db_session: DbSession, principal: Principal, registration_id: UUID
) -> Registration:
    registration = await services.visible_registration(db_session, principal, registration_id)
    if registration is None or not principal.can_decide(registration):
        raise NotFoundException
    return registration


def _decision_or_404(value: str, allowed: tuple[Decision, ...] = tuple(Decision)) -> Decision:
    if value not in {decision.value for decision in allowed}:
        raise NotFoundException
    return Decision(value)


async def _export(
    db_session: DbSession,
    db_engine: AsyncEngine,
    principal: Principal,
    event: Event,
    query: AttendeeQuery,
    fmt: str,
) -> Stream:
    """Audit the export, then stream the file (the audit entry commits before the first byte)."""
    rows = await services.count_matching(db_session, principal, event.id, query)
    services.record_export(db_session, principal, event, query, fmt, rows)
    await db_session.commit()
    labels = RowLabels.for_event(event)
    chunks = services.iter_chunks(db_engine, principal, event.id, query)
    writer: Callable[..., AsyncIterator[bytes]] = csv_stream if fmt == "csv" else xlsx_stream
    filename = export_filename(event, fmt, datetime.now(UTC))
    headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'}
    media_type = CSV_MEDIA_TYPE if fmt == "csv" else XLSX_MEDIA_TYPE
    return Stream(writer(chunks, labels), media_type=media_type, headers=headers)


def _registration_ids(data: dict[str, Any]) -> tuple[list[UUID], int]:
    """The ids chosen on the form, and how many values were not ids at all."""
    raw = data.get("registration_id", [])
    values = raw if isinstance(raw, list) else [raw]
    ids = []
    for value in values:
        try:
            ids.append(UUID(str(value)))
        except ValueError:
            continue
    return ids, len(values) - len(ids)


async def _list_page(
    db_session: DbSession,
    principal: Principal,
    event: Event,
    raw: RawAttendeeQuery,
    notice: list[str] | None = None,
    error_for: dict[str, str] | None = None,
) -> Template:
    """The attendee page; 422 with the errors inline when the filters (or a form) are not valid."""
    try:
        query = parse_query(raw)
    except AttendeeQueryInvalid as invalid:
        context = await views.list_context(db_session, principal, event, raw, None, None)
        context["error_for"] = {**invalid.by_field(), **(error_for or {})}
        return Template(LIST_TEMPLATE, context=context, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
    page = await services.list_page(db_session, principal, event.id, query)
    context = await views.list_context(db_session, principal, event, raw, query, page)
    context["notice"] = notice or []
    context["error_for"] = error_for or {}
    status = HTTP_422_UNPROCESSABLE_ENTITY if error_for else HTTP_200_OK
    return Template(LIST_TEMPLATE, context=context, status_code=status, headers=NO_STORE)


def _list_url(event_id: UUID, return_query: object, **notice: object) -> str:
    """Back to the list the form was sent from, with only the list's own parameters kept."""
    pairs = parse_qsl(str(return_query or ""))[:2000]
    try:
        query = parse_query(raw_from_pairs(pairs))
        kept = query.query_string(query.cursor.encode() if query.cursor else None)
    except AttendeeQueryInvalid:
        kept = ""
    extra = urlencode({key: str(value) for key, value in notice.items()})
    return f"/manage/events/{event_id}/attendees?" + "&".join(part for part in (kept, extra) if part)


class AttendeePages(Controller):
    include_in_schema = False
    dependencies = _QUERY_DEPENDENCIES

    @get("/manage/events/{event_id:uuid}/attendees", name="manage_attendees")
    async def attendees(
        self,
        event_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        attendee_query: AttendeeQueryDep,
        notice: FromQuery[str | None] = None,
        n: FromQuery[str | None] = None,
        skipped: FromQuery[str | None] = None,
    ) -> Template:
        event = await _event_or_404(db_session, principal, event_id)
        return await _list_page(
            db_session, principal, event, attendee_query, notice=views.bulk_notice(notice, n, skipped)
        )

    @get("/manage/events/{event_id:uuid}/attendees.csv", name="manage_attendees_csv")
    async def export_csv(
        self,
        event_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        db_engine: DbEngine,
        attendee_query: AttendeeQueryDep,
    ) -> Stream | Template:
        return await self._export(event_id, principal, db_session, db_engine, attendee_query, "csv")

    @get("/manage/events/{event_id:uuid}/attendees.xlsx", name="manage_attendees_xlsx")
    async def export_xlsx(
        self,
        event_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        db_engine: DbEngine,
        attendee_query: AttendeeQueryDep,
    ) -> Stream | Template:
        return await self._export(event_id, principal, db_session, db_engine, attendee_query, "xlsx")

    @staticmethod
    async def _export(
        event_id: UUID,
        principal: Principal,
        db_session: DbSession,
        db_engine: AsyncEngine,
        raw: RawAttendeeQuery,
        fmt: str,
    ) -> Stream | Template:
        event = await _event_or_404(db_session, principal, event_id)
        try:
            query = parse_query(raw)
        except AttendeeQueryInvalid:
            return await _list_page(db_session, principal, event, raw)
        return await _export(db_session, db_engine, principal, event, query, fmt)

    @post("/manage/events/{event_id:uuid}/attendees/{decision:str}", name="manage_attendees_bulk")
    async def bulk_decision(
        self,
        event_id: PathUUID,
        decision: FromPath[str],
        data: FormData,
        principal: PrincipalDep,
        db_session: DbSession,
        registration_service: RegistrationServiceDep,
    ) -> Redirect | Template:
        chosen = _decision_or_404(decision, services.BULK_DECISIONS)
        event = await _event_or_404(db_session, principal, event_id)
        ids, not_ids = _registration_ids(data)
        if not ids and not not_ids:
            raw = raw_from_pairs(parse_qsl(str(data.get("return_query") or ""))[:2000])
            error = {"registration_id": gettext("Select at least one registration first.")}
            return await _list_page(db_session, principal, event, raw, error_for=error)
        result = await services.decide_many(registration_service, principal, event.id, ids, chosen)
        skipped = result.skipped + not_ids
        target = _list_url(
            event.id, data.get("return_query"), notice=chosen.value, n=result.done, skipped=skipped
        )
        return Redirect(target)

    @get("/manage/registrations/{registration_id:uuid}", name="manage_registration")
    async def registrant(
        self,
        registration_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        notice: FromQuery[str | None] = None,
    ) -> Template:
        registration = await _registration_or_404(db_session, principal, registration_id)
        context = await views.registrant_context(db_session, principal, registration)
        context["notice"] = views.registrant_notice(notice)
        return Template(REGISTRANT_TEMPLATE, context=context, headers=NO_STORE)

    @post("/manage/registrations/{registration_id:uuid}/{decision:str}", name="manage_registration_decide")
    async def decide(
        self,
        registration_id: PathUUID,
        decision: FromPath[str],
        principal: PrincipalDep,
        db_session: DbSession,
        registration_service: RegistrationServiceDep,
    ) -> Template | Redirect:
        chosen = _decision_or_404(decision)
        registration = await _registration_or_404(db_session, principal, registration_id)
        try:
            await services.decide(registration_service, principal, registration, chosen)
        except DecisionError:
            return await _registrant_conflict(db_session, principal, registration_id, chosen)
        return Redirect(f"/manage/registrations/{registration_id}?notice={chosen.value}")

    @post("/manage/outbox/{message_id:uuid}/resend", name="manage_outbox_resend")
    async def resend(
        self, message_id: PathUUID, principal: PrincipalDep, db_session: DbSession
    ) -> Template | Redirect:
        found = await services.visible_mail(db_session, principal, message_id)
        if found is None:
            raise NotFoundException
        message, registration = found
        registration_id = registration.id  # the objects expire if the resend is refused
        if not await services.resend(db_session, principal, message, registration):
            error = gettext("Only an email that failed can be sent again.")
            return await _registrant_error(db_session, principal, registration_id, error)
        return Redirect(f"/manage/registrations/{registration_id}?notice=resent")


async def _registrant_conflict(
    db_session: DbSession, principal: Principal, registration_id: UUID, decision: Decision
) -> Template:
    registration = await _registration_or_404(db_session, principal, registration_id)
    return await _registrant_error(
        db_session, principal, registration_id, views.decision_error(registration, decision)
    )


async def _registrant_error(
    db_session: DbSession, principal: Principal, registration_id: UUID, error: str
) -> Template:
    registration = await _registration_or_404(db_session, principal, registration_id)
    context = await views.registrant_context(db_session, principal, registration)
    context["error"] = error
    return Template(REGISTRANT_TEMPLATE, context=context, status_code=HTTP_409_CONFLICT, headers=NO_STORE)


_API_ERRORS = {
    **API_INPUT_ERRORS,
    404: ApiError.response_spec("Not found, or outside the token's scope."),
    401: ApiError.response_spec("No valid API token."),
}


def _api_invalid(invalid: AttendeeQueryInvalid) -> Response[ApiError]:
    errors = [FieldErrorOut(field=error.field, message=error.message) for error in invalid.errors]
    body = ApiError(detail=gettext("Some fields are not valid."), code="invalid", errors=errors)
    return Response(body, status_code=HTTP_422_UNPROCESSABLE_ENTITY, media_type=MediaType.JSON)


class OrganiserApi(Controller):
    """The organiser API: an event's registrations and decisions, with a Bearer API token."""

    path = "/api/manage"
    tags = ["organiser"]
    dependencies = _QUERY_DEPENDENCIES

    @get(
        "/events/{event_id:uuid}/registrations",
        summary="List an event's registrations",
        description="Filters as on the attendee page; pass `next_cursor` back as `cursor` for the next page.",
        responses={**_API_ERRORS, 422: ApiError.response_spec("Invalid filters; `errors` lists them.")},
    )
    async def registrations(
        self,
        event_id: PathUUID,
        api_principal: ApiPrincipalDep,
        db_session: DbSession,
        attendee_query: AttendeeQueryDep,
    ) -> Response[RegistrationListOut] | Response[ApiError]:
        event = await _event_or_404(db_session, api_principal, event_id)
        try:
            query = parse_query(attendee_query, default_limit=API_PAGE_SIZE)
        except AttendeeQueryInvalid as invalid:
            return _api_invalid(invalid)
        page = await services.list_page(db_session, api_principal, event.id, query)
        return Response(views.registration_list_out(page), headers=NO_STORE)

    @get(
        "/events/{event_id:uuid}/registrations.csv",
        summary="Export an event's registrations as CSV",
        description="The filtered list, every page, streamed as UTF-8 CSV with localised headers.",
        media_type=CSV_MEDIA_TYPE,
        responses={**_API_ERRORS, 422: ApiError.response_spec("Invalid filters; `errors` lists them.")},
    )
    async def registrations_csv(
        self,
        event_id: PathUUID,
        api_principal: ApiPrincipalDep,
        db_session: DbSession,
        db_engine: DbEngine,
        attendee_query: AttendeeQueryDep,
    ) -> Stream | Response[ApiError]:
        event = await _event_or_404(db_session, api_principal, event_id)
        try:
            query = parse_query(attendee_query, default_limit=API_PAGE_SIZE)
        except AttendeeQueryInvalid as invalid:
            return _api_invalid(invalid)
        return await _export(db_session, db_engine, api_principal, event, query, "csv")

    @post(
        "/registrations/{registration_id:uuid}/approve",
        summary="Approve a pending registration",
        status_code=HTTP_200_OK,
        responses={**_API_ERRORS, 409: ApiError.response_spec("The registration is not pending.")},
    )
    async def approve(
        self,
        registration_id: PathUUID,
        api_principal: ApiPrincipalDep,
        db_session: DbSession,
        registration_service: RegistrationServiceDep,
    ) -> Response[DecisionOut] | Response[ApiError]:
        return await _api_decide(
            db_session, registration_service, api_principal, registration_id, Decision.APPROVE
        )

    @post(
        "/registrations/{registration_id:uuid}/reject",
        summary="Reject a registration",
        status_code=HTTP_200_OK,
        responses={**_API_ERRORS, 409: ApiError.response_spec("The registration is no longer active.")},
    )
    async def reject(
        self,
        registration_id: PathUUID,
        api_principal: ApiPrincipalDep,
        db_session: DbSession,
        registration_service: RegistrationServiceDep,
    ) -> Response[DecisionOut] | Response[ApiError]:
        return await _api_decide(
            db_session, registration_service, api_principal, registration_id, Decision.REJECT
        )

    @post(
        "/registrations/{registration_id:uuid}/promote",
        summary="Promote a waitlisted registration out of turn (adds a seat when the event is full)",
        status_code=HTTP_200_OK,
        responses={
            **_API_ERRORS,
            409: ApiError.response_spec("The registration is not on the waiting list."),
        },
    )
    async def promote(
        self,
        registration_id: PathUUID,
        api_principal: ApiPrincipalDep,
        db_session: DbSession,
        registration_service: RegistrationServiceDep,
    ) -> Response[DecisionOut] | Response[ApiError]:
        return await _api_decide(
            db_session, registration_service, api_principal, registration_id, Decision.PROMOTE
        )


async def _api_decide(
    db_session: DbSession,
    service: RegistrationService,
    principal: Principal,
    registration_id: UUID,
    decision: Decision,
) -> Response[DecisionOut] | Response[ApiError]:
    registration = await _registration_or_404(db_session, principal, registration_id)
    try:
        status = await services.decide(service, principal, registration, decision)
    except DecisionError:
        registration = await _registration_or_404(db_session, principal, registration_id)
        body = ApiError(detail=views.decision_error(registration, decision), code="conflict")
        return Response(body, status_code=HTTP_409_CONFLICT)
    position = await service.waitlist_position(registration)
    return Response(DecisionOut(id=registration.id, status=status.value, waitlist_position=position))
