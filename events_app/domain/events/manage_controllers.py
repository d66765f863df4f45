"""Organiser pages of one event: create, look at, edit, publish, cancel and duplicate it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.domain.accounts.deps import PrincipalDep
from events_app.domain.events.manage_schemas import (
    EventFormInvalid,
    default_values,
    event_page_context,
    event_values,
    form_context,
    notice_for,
    typed_values,
    validate_event_form,
)
from events_app.domain.events.manage_services import EventManagementService
from events_app.domain.privacy.schemas import purge_view
from events_app.domain.registrations.notifications import message_id_domain
from events_app.domain.registrations.services import TokenSettings
from events_app.lib.i18n import current_language
from events_app.settings import Settings

FormData = URLEncodedBody[dict[str, Any]]
EventId = FromPath[UUID]
FORM_TEMPLATE = "manage/events/form.html"


async def provide_event_management(
    db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> EventManagementService:
    tokens = TokenSettings(secret_key=settings.secret_key, message_id_domain=message_id_domain(settings))
    return EventManagementService(session=db_session, tokens=tokens)


EventManagementDep = NamedDependency[EventManagementService]


class ManageEventPages(Controller):
    path = "/manage/events"
    include_in_schema = False
    dependencies = {"event_management": Provide(provide_event_management)}

    @get("/new", name="manage_event_new")
    async def new_form(self, principal: PrincipalDep) -> Template:
        if not principal.can_create_events():
            raise NotFoundException
        values = default_values(current_language())
        return Template(FORM_TEMPLATE, context=form_context(principal, None, values, {}))

    @post("/new", name="manage_event_create")
    async def create(
        self, principal: PrincipalDep, data: FormData, event_management: EventManagementDep
    ) -> Template | Redirect:
        if not principal.can_create_events():
            raise NotFoundException
        try:
            event = await event_management.create(principal, validate_event_form(data))
        except EventFormInvalid as invalid:
            context = form_context(principal, None, typed_values(data), invalid.errors)
            return Template(FORM_TEMPLATE, context=context, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        return Redirect(f"/manage/events/{event.id}?done=created")

    @get("/{event_id:uuid}", name="manage_event")
    async def event_page(
        self,
        principal: PrincipalDep,
        event_id: EventId,
        event_management: EventManagementDep,
        settings: NamedDependency[Settings],
        done: FromQuery[str | None] = None,
    ) -> Template:
        event = await event_management.visible_event(principal, event_id)
        seats = await event_management.seat_summary(event)
        context = event_page_context(principal, event, seats, notice_for(done))
        purge = await event_management.upcoming_purge(principal, event, settings.retention_days)
        context["purge"] = purge_view(purge) if purge else None
        return Template("manage/events/detail.html", context=context)

    @get("/{event_id:uuid}/edit", name="manage_event_edit")
    async def edit_form(
        self, principal: PrincipalDep, event_id: EventId, event_management: EventManagementDep
    ) -> Template:
        event = await event_management.editable_event(principal, event_id)
        return Template(FORM_TEMPLATE, context=form_context(principal, event, event_values(event), {}))

    @post("/{event_id:uuid}/edit", name="manage_event_update")
    async def update(
        self,
        principal: PrincipalDep,
        event_id: EventId,
        data: FormData,
        event_management: EventManagementDep,
    ) -> Template | Redirect:
        event = await event_management.editable_event(principal, event_id)
        try:
            await event_management.update(principal, event_id, validate_event_form(data))
        except EventFormInvalid as invalid:
            context = form_context(principal, event, typed_values(data), invalid.errors)
            return Template(FORM_TEMPLATE, context=context, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        return Redirect(f"/manage/events/{event_id}?done=saved")

    @post("/{event_id:uuid}/publish", name="manage_event_publish")
    async def publish(
        self, principal: PrincipalDep, event_id: EventId, event_management: EventManagementDep
    ) -> Redirect:
        await event_management.publish(principal, event_id)
        return Redirect(f"/manage/events/{event_id}?done=published")

    @get("/{event_id:uuid}/cancel", name="manage_event_cancel_confirm")
    async def cancel_confirm(
        self, principal: PrincipalDep, event_id: EventId, event_management: EventManagementDep
    ) -> Template:
        event = await event_management.managed_event(principal, event_id)
        seats = await event_management.seat_summary(event)
        return Template("manage/events/cancel.html", context=event_page_context(principal, event, seats))

    @post("/{event_id:uuid}/cancel", name="manage_event_cancel")
    async def cancel(
        self, principal: PrincipalDep, event_id: EventId, event_management: EventManagementDep
    ) -> Redirect:
        await event_management.cancel(principal, event_id)
        return Redirect(f"/manage/events/{event_id}?done=cancelled")

    @post("/{event_id:uuid}/duplicate", name="manage_event_duplicate")
    async def duplicate(
        self, principal: PrincipalDep, event_id: EventId, event_management: EventManagementDep
    ) -> Redirect:
        copy = await event_management.duplicate(principal, event_id)
        return Redirect(f"/manage/events/{copy.id}/edit")
