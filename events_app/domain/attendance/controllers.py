"""Attendance pages: personal join links, report imports, the overview, certificates.

Organiser pages answer 404 outside the principal's scope: importing, matching, the threshold and
certificates need ``manages(event)``; the overview and its export need ``sees_event`` (focal points
see their countries' registrants only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, MultipartBody, URLEncodedBody
from litestar.response import Redirect, Stream, Template
from litestar.status_codes import (
    HTTP_303_SEE_OTHER,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from events_app.db.models import Event
from events_app.deps import DbSession, PathStr, RegistrationServiceDep, SettingsDep
from events_app.domain.accounts.deps import PrincipalDep
from events_app.domain.accounts.permissions import Principal
from events_app.domain.attendance import schemas, services, views
from events_app.domain.attendance.schemas import FormInvalid
from events_app.domain.attendance.services import MatchOutcome
from events_app.domain.attendance.views import ImportPageState
from events_app.lib.attendance_reports import ReportError
from events_app.lib.i18n import N_, current_language, gettext

FormData = URLEncodedBody[dict[str, Any]]
UploadData = MultipartBody[dict[str, Any]]
PathUUID = FromPath[UUID]
DbEngine = NamedDependency[AsyncEngine]
NO_STORE = {"Cache-Control": "no-store"}
#: Pages reached by a secret link: not cached, and the link never leaks through a Referer.
SECRET_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
IMPORT_TEMPLATE = "manage/attendance/import.html"
MSG_UNREADABLE = N_("The file could not be read as a Zoom or Teams attendance report: %(reason)s")


def _now() -> datetime:
    return datetime.now(UTC)


async def _managed_or_404(db_session: DbSession, principal: Principal, event_id: UUID) -> Event:
    event = await services.managed_event(db_session, principal, event_id)
    if event is None:
        raise NotFoundException
    return event


async def _import_page(
    db_session: DbSession, principal: Principal, event: Event, state: ImportPageState, status: int = 200
) -> Template:
    context = await views.import_context(db_session, principal, event, state)
    return Template(IMPORT_TEMPLATE, context=context, status_code=status, headers=NO_STORE)


async def _upload(data: dict[str, Any]) -> tuple[bytes, str]:
    """The uploaded file's bytes and name (empty when no file was chosen)."""
    upload = data.get("file")
    if not isinstance(upload, UploadFile):
        return b"", ""
    return await upload.read(), upload.filename or ""


class AttendancePages(Controller):
    """Organiser pages of one event's attendance."""

    include_in_schema = False

    @get("/manage/events/{event_id:uuid}/attendance", name="attendance_overview")
    async def overview(self, event_id: PathUUID, principal: PrincipalDep, db_session: DbSession) -> Template:
        event = await services.visible_event(db_session, principal, event_id)
        if event is None:
            raise NotFoundException
        overview = await services.overview(db_session, principal, event)
        context = views.overview_context(principal, event, overview)
        return Template("manage/attendance/overview.html", context=context, headers=NO_STORE)

    @get("/manage/events/{event_id:uuid}/attendance.csv", name="attendance_csv")
    async def export_csv(
        self, event_id: PathUUID, principal: PrincipalDep, db_session: DbSession, db_engine: DbEngine
    ) -> Stream:
        event = await services.visible_event(db_session, principal, event_id)
        if event is None:
            raise NotFoundException
        rows = await services.count_export(db_session, principal, event.id)
        services.record_export(db_session, principal, event, rows)
        await db_session.commit()  # the audit entry is kept before the first byte leaves
        chunks = services.iter_export(db_engine, principal, event.id)
        filename = views.export_filename(event, _now())
        headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'}
        labels = views.ExportLabels.for_event(event)
        return Stream(views.csv_stream(chunks, labels), media_type=views.CSV_MEDIA_TYPE, headers=headers)

    @get("/manage/events/{event_id:uuid}/attendance/import", name="attendance_import")
    async def import_form(
        self,
        event_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        notice: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
    ) -> Template:
        event = await _managed_or_404(db_session, principal, event_id)
        state = ImportPageState(
            values=schemas.upload_values({}, event.timezone),
            notice=views.notice_text(notice),
            match_q=(q or "").strip()[:200],
        )
        return await _import_page(db_session, principal, event, state)

    @post(
        "/manage/events/{event_id:uuid}/attendance/import",
        name="attendance_import_submit",
        request_max_body_size=schemas.MAX_UPLOAD_REQUEST_BYTES,
    )
    async def import_submit(
        self, event_id: PathUUID, data: UploadData, principal: PrincipalDep, db_session: DbSession
    ) -> Template | Redirect:
        event = await _managed_or_404(db_session, principal, event_id)
        raw, filename = await _upload(data)
        state = ImportPageState(values=schemas.upload_values(data, event.timezone))
        try:
            result = await services.import_report(
                db_session, principal, event, schemas.parse_upload(data, raw, filename)
            )
        except FormInvalid as invalid:
            state.error_for = invalid.errors
            return await _import_page(db_session, principal, event, state, HTTP_422_UNPROCESSABLE_ENTITY)
        except ReportError as error:  # raised before anything was written
            state.error_for = {"file": gettext(MSG_UNREADABLE) % {"reason": str(error)}}
            return await _import_page(db_session, principal, event, state, HTTP_422_UNPROCESSABLE_ENTITY)
        notice = "duplicate" if result.duplicate else "imported"
        return Redirect(f"/manage/events/{event_id}/attendance/import?notice={notice}")

    @post("/manage/events/{event_id:uuid}/attendance/threshold", name="attendance_threshold")
    async def threshold(
        self, event_id: PathUUID, data: FormData, principal: PrincipalDep, db_session: DbSession
    ) -> Template | Redirect:
        event = await _managed_or_404(db_session, principal, event_id)
        try:
            percent = schemas.parse_threshold(data)
        except FormInvalid as invalid:
            typed = str(data.get("attendance_threshold_percent", ""))[:20]
            state = ImportPageState(
                values=schemas.upload_values({}, event.timezone),
                error_for=invalid.errors,
                threshold_value=typed,
            )
            return await _import_page(db_session, principal, event, state, HTTP_422_UNPROCESSABLE_ENTITY)
        await services.set_threshold(db_session, principal, event, percent)
        return Redirect(f"/manage/events/{event_id}/attendance/import?notice=threshold")

    @post("/manage/events/{event_id:uuid}/attendance/{attendance_id:uuid}/match", name="attendance_match")
    async def match(
        self,
        event_id: PathUUID,
        attendance_id: PathUUID,
        data: FormData,
        principal: PrincipalDep,
        db_session: DbSession,
    ) -> Template | Redirect:
        event = await _managed_or_404(db_session, principal, event_id)
        try:
            registration_id = schemas.parse_registration_choice(data)
            outcome = await services.match_by_hand(
                db_session, principal, event, attendance_id, registration_id
            )
        except FormInvalid:
            outcome = MatchOutcome.NO_REGISTRATION
        if outcome is MatchOutcome.NO_ROW:
            raise NotFoundException
        if outcome is MatchOutcome.NO_REGISTRATION:
            state = ImportPageState(
                values=schemas.upload_values({}, event.timezone),
                match_errors={str(attendance_id): gettext(schemas.MSG_NO_REGISTRANT)},
            )
            return await _import_page(db_session, principal, event, state, HTTP_422_UNPROCESSABLE_ENTITY)
        return Redirect(f"/manage/events/{event_id}/attendance/import?notice=matched")

    @get("/manage/events/{event_id:uuid}/certificates", name="attendance_certificates")
    async def certificates(
        self,
        event_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        notice: FromQuery[str | None] = None,
        queued: FromQuery[int | None] = None,
    ) -> Template:
        event = await _managed_or_404(db_session, principal, event_id)
        text = (
            views.sent_notice(queued)
            if notice == "sent" and queued is not None
            else views.notice_text(notice)
        )
        context = await views.certificates_context(
            db_session, principal, event, services.has_ended(event, _now()), text
        )
        return Template("manage/attendance/certificates.html", context=context, headers=NO_STORE)

    @post("/manage/events/{event_id:uuid}/certificates/send", name="attendance_certificates_send")
    async def send_certificates(
        self,
        event_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        registration_service: RegistrationServiceDep,
    ) -> Template | Redirect:
        event = await _managed_or_404(db_session, principal, event_id)
        queued = await services.send_certificates(
            db_session, principal, event, registration_service.tokens, _now()
        )
        if queued is None:
            error = gettext("Certificates can be sent once the event has ended.")
            context = await views.certificates_context(db_session, principal, event, False, None)
            context["error"] = error
            return Template(
                "manage/attendance/certificates.html", context=context, status_code=HTTP_409_CONFLICT
            )
        return Redirect(f"/manage/events/{event_id}/certificates?notice=sent&queued={queued}")

    @post("/manage/certificates/{certificate_id:uuid}/revoke", name="attendance_certificate_revoke")
    async def revoke(
        self, certificate_id: PathUUID, principal: PrincipalDep, db_session: DbSession
    ) -> Redirect:
        event_id = await services.revoke(db_session, principal, certificate_id, _now())
        if event_id is None:
            raise NotFoundException
        return Redirect(f"/manage/events/{event_id}/certificates?notice=revoked")


class AttendancePublicPages(Controller):
    """The personal join link, the certificate download and the public verification page."""

    include_in_schema = False

    @get("/j/{token:str}", name="join_link")
    async def join(self, token: PathStr, db_session: DbSession) -> Redirect:
        target = await services.follow_join_link(db_session, token)
        if target is None:
            raise NotFoundException(gettext("This link is not valid."))
        return Redirect(target, status_code=HTTP_303_SEE_OTHER, headers=SECRET_PAGE_HEADERS)

    @get("/my/{token:str}/certificate.pdf", name="my_certificate")
    async def my_certificate(
        self, token: PathStr, registration_service: RegistrationServiceDep, settings: SettingsDep
    ) -> Response[bytes]:
        registration = await registration_service.get_by_manage_token(token)
        if registration is None:
            raise NotFoundException(gettext("This link is not valid."))
        pdf = await services.my_certificate_pdf(registration_service.session, settings, registration, _now())
        if pdf is None:
            raise NotFoundException(gettext("There is no certificate for this registration."))
        filename = f"certificate-{registration.event.slug}.pdf"
        headers = {**SECRET_PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(pdf, media_type="application/pdf", headers=headers)

    @get("/certificates/{code:str}", name="certificate_verify")
    async def verify(self, code: PathStr, db_session: DbSession) -> Template:
        found = await services.verify(db_session, code, current_language())
        context = {"certificate": found}
        status = 200 if found is not None else HTTP_404_NOT_FOUND
        return Template(
            "attendance/certificate.html", context=context, status_code=status, headers=SECRET_PAGE_HEADERS
        )
