"""Door check-in: the scanner API, the scanner page, and re-issuing a ticket.

The API takes a Bearer API token, or the organiser's session cookie together with the ``X-CSRFToken``
header (the scanner page's script sends it; ``/api/`` is outside the CSRF middleware, so it is checked
here). An event the principal does not check people in at answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from hmac import compare_digest
from typing import Any
from uuid import UUID, uuid4

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, generate_csrf_hash
from litestar.params import FromPath, FromQuery, JSONBody, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
)

from events_app.db.models import Event, Registration
from events_app.deps import DbSession, RegistrationServiceDep, SettingsDep
from events_app.domain.accounts.deps import PrincipalDep, session_token
from events_app.domain.accounts.permissions import Principal
from events_app.domain.accounts.services import AccountService, Caller, api_token_caller, session_caller
from events_app.domain.checkin import services, views
from events_app.domain.checkin.schemas import (
    CheckinInvalid,
    FieldError,
    ManifestOut,
    Scan,
    ScanAnswer,
    ScanIn,
    SearchOut,
    StatsOut,
    UndoIn,
    UndoOut,
    parse_manual_form,
    parse_scan,
    parse_undo,
    search_terms,
)
from events_app.domain.checkin.services import RateLimited, Refusal
from events_app.domain.registrations.views import API_INPUT_ERRORS, ApiError
from events_app.lib.i18n import gettext
from events_app.lib.ratelimit import hashed
from events_app.lib.web import client_ip
from events_app.settings import PROJECT_ROOT

CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
NO_STORE = {"Cache-Control": "no-store"}
PathUUID = FromPath[UUID]
FormData = URLEncodedBody[dict[str, Any]]
SCANNER_TEMPLATE = "manage/checkin/scanner.html"
REISSUE_TEMPLATE = "manage/checkin/reissue.html"
SERVICE_WORKER = PROJECT_ROOT / "static" / "js" / "checkin-sw.js"


# --- who is asking ----------------------------------------------------------------------------------


def _csrf_secret(token: str, secret: str) -> str | None:
    if len(token) <= CSRF_SECRET_LENGTH:
        return None
    value, signature = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
    return value if compare_digest(signature, generate_csrf_hash(value, secret)) else None


def csrf_header_matches(request: Request[Any, Any, Any], secret: str) -> bool:
    """The ``X-CSRFToken`` header and the ``csrftoken`` cookie: both signed by us, and the same token."""
    header = _csrf_secret(request.headers.get(CSRF_HEADER, ""), secret)
    cookie = _csrf_secret(request.cookies.get(CSRF_COOKIE, ""), secret)
    return header is not None and cookie is not None and compare_digest(header, cookie)


def _caller(request: Request[Any, Any, Any], secret_key: str) -> Caller | None:
    """Who says they are asking: a Bearer API token, or a session cookie sent with the CSRF header; None
    when neither was sent."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme:
        token = token.strip()
        return api_token_caller(token) if scheme.lower() == "bearer" and token else None
    cookie = session_token(request)
    return session_caller(cookie) if cookie and csrf_header_matches(request, secret_key) else None


def _not_logged_in() -> NotAuthorizedException:
    return NotAuthorizedException(
        gettext("Log in, or send an API token."), headers={"WWW-Authenticate": "Bearer"}
    )


async def provide_checkin_principal(
    request: Request[Any, Any, Any], db_session: DbSession, settings: SettingsDep
) -> Principal:
    """A Bearer API token, or a session cookie sent with the CSRF header; else 401."""
    caller = _caller(request, settings.secret_key)
    principal = None
    if caller is not None:
        async with services.write_turn(db_session):
            principal = await AccountService(session=db_session).principal_for(caller)
            await db_session.commit()  # ends the transaction (and its SQLite write lock) at once
    if principal is None:
        raise _not_logged_in()
    return principal


CheckinPrincipal = NamedDependency[Principal]


async def _event_or_404(db_session: DbSession, principal: Principal, event_id: UUID) -> Event:
    event = await services.event_for_checkin(db_session, principal, event_id)
    if event is None:
        raise NotFoundException()
    return event


def _invalid(errors: CheckinInvalid) -> Response[ApiError]:
    body = ApiError(detail=gettext("Some fields are not valid."), code="invalid", errors=errors.out())
    return Response(body, status_code=HTTP_422_UNPROCESSABLE_ENTITY, headers=NO_STORE)


def _nonce_reused() -> Response[ApiError]:
    return _invalid(CheckinInvalid([FieldError("nonce", gettext(views.MSG_NONCE_REUSED))]))


async def _scan(
    request: Request[Any, Any, Any], db_session: DbSession, caller: Caller, scan: Scan
) -> Response[ScanAnswer] | Response[ApiError]:
    # The counters keep the address only as a keyed hash (see events_app.lib.ratelimit.hashed).
    ip = hashed(request.app.state.settings.secret_key, client_ip(request.scope))
    outcome = await services.scan_as(db_session, caller, scan, ip)
    if isinstance(outcome, ScanAnswer):
        return Response(outcome, headers=NO_STORE)
    if isinstance(outcome, RateLimited):
        body = ApiError(detail=gettext(views.MSG_TOO_MANY), code="rate_limited")
        headers = {"Retry-After": str(outcome.retry_after)}
        return Response(body, status_code=HTTP_429_TOO_MANY_REQUESTS, headers=headers)
    if outcome is Refusal.NONCE_REUSED:
        return _nonce_reused()
    if outcome is Refusal.NOT_LOGGED_IN:
        raise _not_logged_in()
    raise NotFoundException()


_API_ERRORS = {
    **API_INPUT_ERRORS,
    401: ApiError.response_spec("No API token, or a session cookie without the CSRF header."),
    404: ApiError.response_spec("No such event, or the caller does not check people in there."),
}


class CheckinApi(Controller):
    """Door check-in for scanners: decide on a ticket, undo, and what offline scanners download."""

    path = "/api/checkin"
    tags = ["check-in"]
    dependencies = {"checkin_principal": Provide(provide_checkin_principal)}

    @post(
        "/",
        summary="Check a ticket (or a registration chosen by hand) in at the door",
        description=(
            "Send `code` (the ticket's QR content) or `registration_id`, with a client-made `nonce`: "
            "the same nonce again gets the same answer and never checks in twice. `result` is one of `ok`, "
            "`already_checked_in`, `invalid`, `other_event`, `cancelled`, `not_approved`, `waitlisted`."
        ),
        status_code=HTTP_200_OK,
        responses={
            **_API_ERRORS,
            422: ApiError.response_spec("Invalid fields; `errors` lists them."),
            429: ApiError.response_spec("Too many scans from this device or address."),
        },
    )
    async def scan(
        self, request: Request[Any, Any, Any], data: JSONBody[ScanIn], db_session: DbSession
    ) -> Response[ScanAnswer] | Response[ApiError]:
        # No principal dependency: who is asking is read in the scan's own single statement. The settings
        # come from the app's state, not as a second dependency: Litestar resolves two dependencies of one
        # handler in an anyio task group (two tasks per request).
        caller = _caller(request, request.app.state.settings.secret_key)
        if caller is None:
            raise _not_logged_in()
        try:
            scan = parse_scan(data, datetime.now(UTC))
        except CheckinInvalid as invalid:
            if not await services.caller_is_known(db_session, caller):
                raise _not_logged_in() from None
            return _invalid(invalid)
        return await _scan(request, db_session, caller, scan)

    @post(
        "/undo",
        summary="Undo a check-in (the person is no longer checked in; the record is kept)",
        status_code=HTTP_200_OK,
        responses={
            **_API_ERRORS,
            409: ApiError.response_spec("The person is not checked in."),
            422: ApiError.response_spec("Invalid fields; `errors` lists them."),
        },
    )
    async def undo(
        self, data: JSONBody[UndoIn], checkin_principal: CheckinPrincipal, db_session: DbSession
    ) -> Response[UndoOut] | Response[ApiError]:
        try:
            registration_id, nonce = parse_undo(data)
        except CheckinInvalid as invalid:
            return _invalid(invalid)
        event = await _event_or_404(db_session, checkin_principal, data.event_id)
        undone = await services.undo(db_session, checkin_principal, event, registration_id, nonce)
        if undone is None:
            body = ApiError(detail=gettext(views.MSG_NOT_CHECKED_IN), code="not_checked_in")
            return Response(body, status_code=HTTP_409_CONFLICT, headers=NO_STORE)
        return Response(undone, headers=NO_STORE)

    @get(
        "/events/{event_id:uuid}/manifest",
        summary="Every ticket of the event (hashes, names, status) for scanning offline",
        description="Personal data: the download is recorded in the audit log. Never cached.",
        responses=_API_ERRORS,
    )
    async def manifest(
        self, event_id: PathUUID, checkin_principal: CheckinPrincipal, db_session: DbSession
    ) -> Response[ManifestOut]:
        event = await _event_or_404(db_session, checkin_principal, event_id)
        return Response(await services.manifest(db_session, checkin_principal, event), headers=NO_STORE)

    @get(
        "/events/{event_id:uuid}/stats", summary="How many are checked in, of how many", responses=_API_ERRORS
    )
    async def stats(
        self, event_id: PathUUID, checkin_principal: CheckinPrincipal, db_session: DbSession
    ) -> Response[StatsOut]:
        event = await _event_or_404(db_session, checkin_principal, event_id)
        return Response(await services.stats(db_session, event.id), headers=NO_STORE)

    @get(
        "/events/{event_id:uuid}/search",
        summary="Find registrations of the event by name or email (at most 20)",
        responses=_API_ERRORS,
    )
    async def search(
        self,
        event_id: PathUUID,
        checkin_principal: CheckinPrincipal,
        db_session: DbSession,
        q: FromQuery[str | None] = None,
    ) -> Response[SearchOut]:
        event = await _event_or_404(db_session, checkin_principal, event_id)
        hits = await services.search(db_session, event.id, search_terms(q))
        return Response(SearchOut(results=hits), headers=NO_STORE)


# --- pages ------------------------------------------------------------------------------------------


async def _scanner_page(
    db_session: DbSession,
    principal: Principal,
    event: Event,
    q: str | None,
    outcome: ScanAnswer | ApiError | None = None,
    status_code: int = HTTP_200_OK,
) -> Template:
    terms = search_terms(q)
    hits = await services.search(db_session, event.id, terms) if terms else None
    counts = await services.stats(db_session, event.id)
    context = views.scanner_context(principal, event, q or "", hits, counts, outcome, str(uuid4()))
    return Template(SCANNER_TEMPLATE, context=context, status_code=status_code, headers=NO_STORE)


async def _reissue_target(db_session: DbSession, principal: Principal, registration_id: UUID) -> Registration:
    registration = await services.decidable_registration(db_session, principal, registration_id)
    if registration is None:
        raise NotFoundException()
    return registration


class CheckinPages(Controller):
    include_in_schema = False

    @get("/manage/checkin-sw.js", name="checkin_service_worker", media_type="text/javascript")
    async def service_worker(self) -> Response[bytes]:
        """The scanner's service worker, served under /manage so it may control the scanner pages."""
        return Response(SERVICE_WORKER.read_bytes(), media_type="text/javascript", headers=NO_STORE)

    @get("/manage/checkin", name="checkin_events")
    async def events(self, principal: PrincipalDep, db_session: DbSession) -> Template:
        events = await services.checkin_events(db_session, principal)
        context = views.events_context(principal, events)
        return Template("manage/checkin/events.html", context=context, headers=NO_STORE)

    @get("/manage/events/{event_id:uuid}/checkin", name="checkin_scanner")
    async def scanner(
        self,
        event_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        q: FromQuery[str | None] = None,
    ) -> Template:
        event = await _event_or_404(db_session, principal, event_id)
        return await _scanner_page(db_session, principal, event, q)

    @post("/manage/events/{event_id:uuid}/checkin", name="checkin_manual")
    async def manual(
        self,
        request: Request[Any, Any, Any],
        event_id: PathUUID,
        data: FormData,
        principal: PrincipalDep,
        db_session: DbSession,
    ) -> Template:
        """Check a person in by hand without JavaScript (the form carries its own nonce: a resend is safe)."""
        event = await _event_or_404(db_session, principal, event_id)
        scan = parse_manual_form(event.id, data, datetime.now(UTC), gettext(views.MANUAL_DEVICE))
        q = str(data.get("q") or "")
        if scan is None:
            return await _scanner_page(
                db_session, principal, event, q, status_code=HTTP_422_UNPROCESSABLE_ENTITY
            )
        caller = session_caller(session_token(request) or "")
        response = await _scan(request, db_session, caller, scan)
        return await _scanner_page(
            db_session, principal, event, q, response.content, response.status_code or 200
        )

    @get("/manage/registrations/{registration_id:uuid}/reissue-ticket", name="ticket_reissue_form")
    async def reissue_form(
        self,
        registration_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        done: FromQuery[str | None] = None,
    ) -> Template:
        registration = await _reissue_target(db_session, principal, registration_id)
        context = views.reissue_context(principal, registration, done=bool(done))
        return Template(REISSUE_TEMPLATE, context=context, headers=NO_STORE)

    @post("/manage/registrations/{registration_id:uuid}/reissue-ticket", name="ticket_reissue")
    async def reissue(
        self,
        registration_id: PathUUID,
        principal: PrincipalDep,
        db_session: DbSession,
        registration_service: RegistrationServiceDep,
    ) -> Template | Redirect:
        registration = await _reissue_target(db_session, principal, registration_id)
        if not await services.reissue_ticket(
            db_session, registration_service.tokens, principal, registration
        ):
            registration = await _reissue_target(db_session, principal, registration_id)
            context = views.reissue_context(principal, registration, done=False, refused=True)
            return Template(
                REISSUE_TEMPLATE, context=context, status_code=HTTP_409_CONFLICT, headers=NO_STORE
            )
        return Redirect(f"/manage/registrations/{registration_id}/reissue-ticket?done=1")
