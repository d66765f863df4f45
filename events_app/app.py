"""The one place where the application is wired together."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlencode

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from litestar.template.config import TemplateConfig
from sqlalchemy.ext.asyncio import AsyncSession

from events_app import deps
from events_app.db.engine import make_sqlalchemy_config
from events_app.domain.accounts.controllers import AuthController
from events_app.domain.accounts.deps import LoginRequired, provide_api_principal, provide_principal
from events_app.domain.attendance.controllers import AttendancePublicPages
from events_app.domain.bench.controllers import BenchApi
from events_app.domain.events.controllers import EventPages, EventsApi
from events_app.domain.manage.routes import ORGANISER_CONTROLLERS
from events_app.domain.messages.services import mass_message_hook
from events_app.domain.privacy.controllers import PrivacyPages
from events_app.domain.privacy.retention import retention_job
from events_app.domain.registrations.abuse import purge_job
from events_app.domain.registrations.controllers import RegistrationPages, RegistrationsApi
from events_app.domain.registrations.notifications import RegistrationMailComposer, make_composer
from events_app.domain.registrations.schemas import MSG_REQUIRED
from events_app.domain.registrations.services import MailKind
from events_app.domain.reminders.services import reminder_context, reminder_job
from events_app.domain.system.controllers import SystemController
from events_app.lib import redaction
from events_app.lib.api_errors import framework_message
from events_app.lib.i18n import gettext, set_language
from events_app.lib.mail import make_transport
from events_app.lib.outbox import OutboxWorker, RetryPolicy
from events_app.lib.templating import make_environment
from events_app.lib.web import LocaleMiddleware, SecurityMiddleware, choose_language
from events_app.settings import PROJECT_ROOT, Settings, get_settings

logger = logging.getLogger(__name__)
MAX_REQUEST_BODY_BYTES = 1024 * 1024


def make_mail_composer(settings: Settings) -> RegistrationMailComposer:
    """Builds every registration email (the worker sends them; "download my data" lists their subjects)."""
    composer = make_composer(settings, make_environment())
    composer.add_hook(MailKind.MASS_MESSAGE, mass_message_hook(settings))
    composer.add_hook(MailKind.REMINDER, reminder_context)
    return composer


def make_worker(
    settings: Settings, session_maker: Callable[[], AsyncSession], name: str | None = None
) -> OutboxWorker:
    return OutboxWorker(
        session_maker,
        make_mail_composer(settings),
        lambda: make_transport(settings),
        RetryPolicy(
            base_seconds=settings.outbox_retry_base_seconds,
            max_attempts=settings.outbox_max_attempts,
            lease_seconds=settings.outbox_lease_seconds,
        ),
        batch_size=settings.outbox_batch_size,
        poll_seconds=settings.outbox_poll_seconds,
        name=name,
        periodic_jobs=[reminder_job(settings), retention_job(settings), purge_job(settings)],
    )


def _is_api(request: Request) -> bool:  # type: ignore[type-arg]
    return request.url.path.startswith("/api/") or request.url.path == "/health"


def _use_request_language(request: Request) -> None:  # type: ignore[type-arg]
    """Routing errors (no such path, wrong method) are raised before LocaleMiddleware runs: choose the
    request's language here, for the rest of this request, so their answer follows it too."""
    if "language" not in request.scope.get("state", {}):
        set_language(choose_language(request.scope, request.app.state.settings.default_language)[0])


def _http_error(request: Request, exc: HTTPException) -> Response:  # type: ignore[type-arg]
    _use_request_language(request)
    if _is_api(request):
        body = {"detail": exc.detail, "code": "error", "errors": []}
        return Response(body, status_code=exc.status_code, headers=exc.headers)
    return Template(
        "errors/error.html",
        context={"status": exc.status_code, "detail": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _login_required(request: Request, exc: LoginRequired) -> Response:  # type: ignore[type-arg]
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?{urlencode({'next': target})}")


def _not_found(request: Request, exc: NotFoundException) -> Response:  # type: ignore[type-arg]
    _use_request_language(request)
    detail = exc.detail if exc.detail and exc.detail != "Not Found" else gettext("This page does not exist.")
    return _http_error(request, NotFoundException(detail))


#: msgspec's wording when a JSON object lacks a field: "Object missing required field `email`".
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def _field_errors(exc: ValidationException) -> list[dict[str, str]]:
    """Litestar's validation errors as ``{"field", "message"}``, named after the field that is wrong.

    msgspec reports a missing field against the whole body (``data``) and an empty body as ``'data'``;
    both are rewritten so a client sees which field to fix.
    """
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        key = str(item.get("key") or item.get("source") or "body")
        message = str(item.get("message", ""))
        if missing := _MISSING_FIELD.search(message):
            key, message = missing.group(1), gettext(MSG_REQUIRED)
        elif key == "data" and message in ("", "'data'"):  # no body at all
            key, message = "body", gettext(MSG_REQUIRED)
        else:  # msgspec's English ("Expected `str`, got `int`") in the request's language
            key, message = ("body" if key == "data" else key), framework_message(message)
        errors.append({"field": key, "message": message})
    return errors


def _validation_error(request: Request, exc: ValidationException) -> Response:  # type: ignore[type-arg]
    """Malformed API bodies answer 422 with field errors, like our own validation does."""
    _use_request_language(request)
    body = {"detail": gettext("Some fields are not valid."), "code": "invalid", "errors": _field_errors(exc)}
    if _is_api(request):
        return Response(body, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
    return Template(
        "errors/error.html",
        context={"status": 400, "detail": gettext("The form could not be read.")},
        status_code=400,
    )


def _raised_reading_body(exc: BaseException) -> bool:
    """Whether ``exc`` came out of Litestar decoding the request body (and not from our own code)."""
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_globals.get("__name__") == "litestar.connection.request":
            return True
        frame = frame.tb_next
    return False


def _undecodable_body(request: Request, exc: UnicodeDecodeError) -> Response:  # type: ignore[type-arg]
    """A JSON body that is not UTF-8 makes msgspec raise UnicodeDecodeError: the client's fault, a 400."""
    if not _raised_reading_body(exc):
        return _server_error(request, exc)
    # Untranslated, like Litestar's own "JSON is malformed" answers: it is for the client's developer.
    detail = "The request body is not valid UTF-8."
    return _http_error(request, HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=detail))


def _server_error(request: Request, exc: Exception) -> Response:  # type: ignore[type-arg]
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _http_error(
        request,
        HTTPException(
            status_code=HTTP_500_INTERNAL_SERVER_ERROR, detail=gettext("Something went wrong on our side.")
        ),
    )


def _freeze_startup_objects() -> None:
    """Keep what start-up loaded (modules, templates, catalogs, compiled statements: most of the heap) out
    of the garbage collector's full collections, whose pauses were the p99 of short requests (a check-in
    scan's p99 at 20 scanners: ~130 ms -> ~55 ms, the p50 unchanged). What an earlier app in the same
    process froze (tests start many) is thawed first, so it can still be collected once it is garbage."""
    gc.unfreeze()
    gc.freeze()


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    redaction.install()
    sqlalchemy_config = make_sqlalchemy_config(settings)

    @asynccontextmanager
    async def outbox_worker(app: Litestar) -> AsyncIterator[None]:
        if not settings.run_worker_in_app:
            yield
            return
        stop = asyncio.Event()
        worker = make_worker(settings, sqlalchemy_config.create_session_maker())
        task = asyncio.create_task(worker.run_forever(stop), name="outbox-worker")
        app.state.outbox_worker = worker
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)

    return Litestar(
        route_handlers=[
            EventPages,
            EventsApi,
            RegistrationPages,
            RegistrationsApi,
            AttendancePublicPages,
            PrivacyPages,
            SystemController,
            AuthController,
            *ORGANISER_CONTROLLERS,
            *([BenchApi] if settings.bench_endpoints else []),
            create_static_files_router(
                path="/static", directories=[PROJECT_ROOT / "static"], include_in_schema=False
            ),
        ],
        plugins=[SQLAlchemyPlugin(config=sqlalchemy_config)],
        dependencies={
            "settings": Provide(deps.provide_settings, sync_to_thread=False),
            "event_service": Provide(deps.provide_event_service),
            "registration_service": Provide(deps.provide_registration_service),
            "viewer_zone": Provide(deps.provide_viewer_zone, sync_to_thread=False),
            "principal": Provide(provide_principal),
            "api_principal": Provide(provide_api_principal),
        },
        middleware=[
            SecurityMiddleware(settings.base_url, settings.serves_https),
            LocaleMiddleware(settings.default_language, settings.serves_https),
        ],
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_secure=settings.serves_https,
            cookie_httponly=True,
            cookie_samesite="lax",
            exclude=["/api/"],
        ),
        template_config=TemplateConfig(instance=JinjaTemplateEngine.from_environment(make_environment())),
        openapi_config=OpenAPIConfig(
            title="events_app API",
            version="0.1.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
        ),
        exception_handlers={
            NotFoundException: _not_found,
            LoginRequired: _login_required,
            ValidationException: _validation_error,
            HTTPException: _http_error,
            UnicodeDecodeError: _undecodable_body,
            HTTP_500_INTERNAL_SERVER_ERROR: _server_error,
        },
        lifespan=[outbox_worker],
        on_startup=[_freeze_startup_objects],
        request_max_body_size=MAX_REQUEST_BODY_BYTES,
        state=State({"settings": settings, "mail_composer": make_mail_composer(settings)}),
        debug=settings.debug,
    )
