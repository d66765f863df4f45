"""Organiser pages: messages to an event's registrants (list, compose, preview, send)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from events_app.db.models import Event
from events_app.deps import PathStr
from events_app.domain.accounts.deps import PrincipalDep
from events_app.domain.accounts.permissions import Principal
from events_app.domain.events.schemas import present_event
from events_app.domain.messages import schemas
from events_app.domain.messages.schemas import MSG_NO_RECIPIENTS, MessageInvalid
from events_app.domain.messages.services import MessageService
from events_app.domain.registrations.views import status_label
from events_app.lib.i18n import LANGUAGE_NAMES, SUPPORTED_LANGUAGES, gettext
from events_app.settings import Settings

FormData = URLEncodedBody[dict[str, Any]]


async def provide_message_service(
    db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> MessageService:
    return MessageService(db_session, settings)


MessageServiceDep = NamedDependency[MessageService]


async def _event_or_404(service: MessageService, principal: Principal, event_id: str) -> Event:
    event = await service.managed_event(principal, event_id)
    if event is None:
        raise NotFoundException()
    return event


def _base(principal: Principal, event: Event) -> dict[str, Any]:
    return {"principal": principal, "event": present_event(event), "event_id": str(event.id)}


async def _compose(
    service: MessageService,
    principal: Principal,
    event: Event,
    values: dict[str, Any],
    errors: dict[str, str],
) -> Template:
    context = {
        **_base(principal, event),
        "values": values,
        "errors": [
            (name, errors[name]) for name in schemas.form_fields(event.base_language) if name in errors
        ],
        "error_for": errors,
        "statuses": [(status.value, status_label(status)) for status in schemas.MESSAGE_STATUSES],
        "countries": await service.registrant_countries(event, str(values.get("country", ""))),
        "languages": [(code, LANGUAGE_NAMES[code]) for code in SUPPORTED_LANGUAGES],
        "text_languages": [
            (code, LANGUAGE_NAMES.get(code, code), code == event.base_language)
            for code in schemas.text_languages(event.base_language)
        ],
        "base_language_name": LANGUAGE_NAMES.get(event.base_language, event.base_language),
    }
    status = HTTP_422_UNPROCESSABLE_ENTITY if errors else 200
    return Template("manage/messages/compose.html", context=context, status_code=status)


class MessagePages(Controller):
    path = "/manage/events/{event_id:str}/messages"
    include_in_schema = False
    dependencies = {"message_service": Provide(provide_message_service)}

    @get("/", name="messages_list")
    async def index(
        self,
        event_id: PathStr,
        principal: PrincipalDep,
        message_service: MessageServiceDep,
        sent: Annotated[str | None, QueryParameter(name="sent")] = None,
    ) -> Template:
        event = await _event_or_404(message_service, principal, event_id)
        context = {
            **_base(principal, event),
            "messages": await message_service.sent_messages(event),
            "just_sent": sent == "1",
        }
        return Template("manage/messages/list.html", context=context)

    @get("/new", name="messages_new")
    async def new(
        self, event_id: PathStr, principal: PrincipalDep, message_service: MessageServiceDep
    ) -> Template:
        event = await _event_or_404(message_service, principal, event_id)
        return await _compose(message_service, principal, event, schemas.default_values(), {})

    @post("/edit", name="messages_edit", status_code=200)
    async def edit(
        self, event_id: PathStr, data: FormData, principal: PrincipalDep, message_service: MessageServiceDep
    ) -> Template:
        """Back from the preview to the form, with everything as it was typed."""
        event = await _event_or_404(message_service, principal, event_id)
        return await _compose(message_service, principal, event, schemas.form_values(data), {})

    @post("/preview", name="messages_preview", status_code=200)
    async def preview(
        self, event_id: PathStr, data: FormData, principal: PrincipalDep, message_service: MessageServiceDep
    ) -> Template:
        event = await _event_or_404(message_service, principal, event_id)
        values = schemas.form_values(data)
        try:
            draft = schemas.parse(data, event.base_language)
        except MessageInvalid as invalid:
            return await _compose(message_service, principal, event, values, invalid.errors)
        context = {
            **_base(principal, event),
            "preview": await message_service.preview(event, draft),
            "values": values,
            "message_key": str(uuid7()),
            "language_names": LANGUAGE_NAMES,
        }
        return Template("manage/messages/preview.html", context=context)

    @post("/send", name="messages_send", status_code=HTTP_303_SEE_OTHER)
    async def send(
        self, event_id: PathStr, data: FormData, principal: PrincipalDep, message_service: MessageServiceDep
    ) -> Template | Redirect:
        event = await _event_or_404(message_service, principal, event_id)
        values = schemas.form_values(data)
        try:
            draft = schemas.parse(data, event.base_language)
        except MessageInvalid as invalid:
            return await _compose(message_service, principal, event, values, invalid.errors)
        done = f"/manage/events/{event.id}/messages?sent=1"
        if await message_service.send(principal, event, draft) is None:
            errors = {"status": gettext(MSG_NO_RECIPIENTS)}
            return await _compose(message_service, principal, event, values, errors)
        return Redirect(done, status_code=HTTP_303_SEE_OTHER)
