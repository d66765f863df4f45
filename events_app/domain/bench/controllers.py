"""Endpoints that exist only for the benchmarks in ``bench/`` (``EVENTS_BENCH_ENDPOINTS=true``).

They give a benchmark its yardsticks inside the same app, measured in the same run: a bare insert (one
INSERT and a commit through the same session machinery) and a registration that queues no email. They
are not routed at all unless the setting is on, and never appear in the OpenAPI document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from litestar import Controller, Response, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY
from uuid_utils.compat import uuid7

from events_app.db.models import Event, Registration, RegistrationStatus
from events_app.deps import DbSession, PathStr, RegistrationServiceDep, registration_tokens
from events_app.domain.events.services import RegistrationState
from events_app.domain.registrations import schemas
from events_app.domain.registrations.schemas import RegistrationInvalid, RegistrationRequest
from events_app.domain.registrations.services import ACCEPTED_OUTCOMES, MailKind, RegistrationService
from events_app.domain.registrations.views import ApiError, RegistrationAccepted


class MaillessRegistrationService(RegistrationService):
    """The real registration, minus the outbox row: the yardstick for "mail costs nothing here"."""

    def _queue_mail(self, registration: Registration, kind: MailKind, **payload: Any) -> None:
        return None

    def _new_mail(self, values: dict[str, Any], kind: MailKind) -> dict[str, Any] | None:
        return None


async def provide_mailless_registration_service(db_session: DbSession, state: State) -> RegistrationService:
    """Provided as the app provides the real service (same dependencies, one object per request)."""
    return MaillessRegistrationService(session=db_session, tokens=registration_tokens(state.settings))


class BenchApi(Controller):
    path = "/api/bench/events/{slug:str}"
    include_in_schema = False
    #: Here ``registration_service`` is the mail-less one.
    dependencies = {"registration_service": Provide(provide_mailless_registration_service)}

    @post("/bare", status_code=HTTP_201_CREATED)
    async def bare_insert(
        self, slug: PathStr, data: JSONBody[RegistrationRequest], db_session: DbSession
    ) -> Response[RegistrationAccepted]:
        """One INSERT of a registration row (no checks, no capacity, no mail) and a commit.

        On PostgreSQL the INSERT commits by itself, as the registration's statements do on its first
        try (``RegistrationService._commits_alone``): the yardstick gets the same saving."""
        if db_session.get_bind().dialect.name == "postgresql":
            await db_session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        key = uuid7()
        await db_session.execute(
            sa.insert(Registration).values(
                id=key,
                event_id=sa.select(Event.id).where(Event.slug == slug).scalar_subquery(),
                full_name=data.full_name,
                email=data.email,
                email_normalized=data.email.lower(),
                country=data.country,
                institution=data.institution,
                sector=data.sector,
                language=data.language,
                status=RegistrationStatus.CONFIRMED,
                ticket_hash=f"t{key.hex}",
                manage_token_hash=f"m{key.hex}",
                privacy_notice_version="bench",
                consent_given_at=datetime.now(UTC),
            )
        )
        await db_session.commit()
        return Response(RegistrationAccepted.for_slug(slug), status_code=HTTP_201_CREATED)

    @post("/registrations-without-mail", status_code=HTTP_201_CREATED)
    async def register_without_mail(
        self,
        slug: PathStr,
        data: JSONBody[RegistrationRequest],
        registration_service: RegistrationServiceDep,
    ) -> Response[RegistrationAccepted] | Response[ApiError]:
        """The public registration API's steps, with a service that writes no outbox row (see the
        controller's dependencies)."""
        try:
            registration_data = schemas.validate(
                {field: getattr(data, field) for field in data.__struct_fields__}
            )
        except RegistrationInvalid as invalid:
            if not await registration_service.event_is_public(slug):
                raise NotFoundException() from None
            return Response(ApiError.invalid(invalid), status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        result = await registration_service.register(slug, registration_data)
        if result.outcome in ACCEPTED_OUTCOMES:
            return Response(RegistrationAccepted.for_slug(slug), status_code=HTTP_201_CREATED)
        if result.state is RegistrationState.NOT_PUBLISHED:
            raise NotFoundException()
        return Response(ApiError.conflict(result), status_code=HTTP_409_CONFLICT)
