"""Who is asking: the organiser behind a session cookie or an API token."""

from __future__ import annotations

from litestar import Request
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.domain.accounts.permissions import Principal
from events_app.domain.accounts.services import AccountService

SESSION_COOKIE = "session"
SECURE_SESSION_COOKIE = "__Host-session"


class LoginRequired(NotAuthorizedException):
    """Raised on organiser pages without a valid session; answered with a redirect to the login page."""


def session_cookie_name(secure: bool) -> str:
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


def session_token(request: Request) -> str | None:  # type: ignore[type-arg]
    return request.cookies.get(SECURE_SESSION_COOKIE) or request.cookies.get(SESSION_COOKIE)


async def provide_account_service(db_session: NamedDependency[AsyncSession]) -> AccountService:
    return AccountService(session=db_session)


async def provide_principal(
    request: Request,  # type: ignore[type-arg]
    db_session: NamedDependency[AsyncSession],
) -> Principal:
    """The logged-in organiser of an HTML page; others are sent to the login page."""
    principal = await AccountService(session=db_session).principal_for_session(session_token(request))
    if principal is None:
        raise LoginRequired("login required")
    return principal


async def provide_api_principal(
    request: Request,  # type: ignore[type-arg]
    db_session: NamedDependency[AsyncSession],
) -> Principal:
    """The organiser behind ``Authorization: Bearer <token>``.

    Cookies are not accepted here: the API is outside CSRF protection, so ambient credentials must not work.
    """
    service = AccountService(session=db_session)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    principal = None
    if scheme.lower() == "bearer" and token:
        principal = await service.principal_for_api_token(token.strip())
    if principal is None:
        raise NotAuthorizedException("a valid API token is required", headers={"WWW-Authenticate": "Bearer"})
    return principal


PrincipalDep = NamedDependency[Principal]
"""An organiser page's logged-in user (handler parameter ``principal``)."""
ApiPrincipalDep = NamedDependency[Principal]
"""An organiser API call's token holder (handler parameter ``api_principal``)."""
