"""Dependency providers shared by the controllers (one place, so controllers stay thin)."""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.domain.events.services import EventService
from events_app.domain.registrations.notifications import message_id_domain
from events_app.domain.registrations.services import RegistrationService, TokenSettings
from events_app.lib.web import viewer_timezone
from events_app.settings import Settings


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


async def provide_event_service(db_session: NamedDependency[AsyncSession]) -> EventService:
    return EventService(session=db_session)


async def provide_registration_service(
    db_session: NamedDependency[AsyncSession], state: State
) -> RegistrationService:
    # The settings from the app's state, not as a second dependency: Litestar resolves the dependencies
    # of one level together in an anyio task group (tasks per request on the registration path).
    return RegistrationService(session=db_session, tokens=registration_tokens(state.settings))


def registration_tokens(settings: Settings) -> TokenSettings:
    return TokenSettings(secret_key=settings.secret_key, message_id_domain=message_id_domain(settings))


def provide_viewer_zone(request: Request) -> str | None:  # type: ignore[type-arg]
    return viewer_timezone(request.scope)


#: Handler parameter types: Litestar 3 wants dependencies and path parameters marked explicitly.
DbSession = NamedDependency[AsyncSession]
EventServiceDep = NamedDependency[EventService]
RegistrationServiceDep = NamedDependency[RegistrationService]
SettingsDep = NamedDependency[Settings]
ViewerZone = NamedDependency[str | None]
PathStr = FromPath[str]
