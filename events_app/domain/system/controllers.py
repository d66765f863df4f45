"""Operational endpoints."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import SQLAlchemyError

from events_app.deps import DbSession
from events_app.lib.outbox import backlog


class Health(msgspec.Struct):
    status: str
    database: str
    outbox_backlog: int | None


class SystemController(Controller):
    tags = ["system"]

    @get("/health", summary="Liveness and database reachability", cache_control=None)
    async def health(self, db_session: DbSession) -> Response[Health]:
        try:
            pending = await backlog(db_session)
        except (SQLAlchemyError, OSError):
            return Response(
                Health("unavailable", "unreachable", None), status_code=HTTP_503_SERVICE_UNAVAILABLE
            )
        return Response(Health("ok", "ok", pending), status_code=HTTP_200_OK)
