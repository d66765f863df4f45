"""Logging in and out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_401_UNAUTHORIZED, HTTP_429_TOO_MANY_REQUESTS

from events_app.deps import DbSession, SettingsDep
from events_app.domain.accounts.deps import session_cookie_name, session_token
from events_app.domain.accounts.services import SESSION_LIFETIME, AccountService
from events_app.domain.audit.services import record
from events_app.lib.i18n import gettext
from events_app.lib.ratelimit import hashed, hit
from events_app.lib.web import client_ip

LOGIN_LIMIT_PER_EMAIL = 10
LOGIN_LIMIT_PER_IP = 30
LOGIN_WINDOW = timedelta(minutes=15)


def safe_next(target: str | None) -> str:
    """Only local paths: an open redirect after login would be a phishing aid."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/manage"


class AuthController(Controller):
    include_in_schema = False

    @get("/login", name="login")
    async def login_form(
        self, next_path: Annotated[str | None, QueryParameter(name="next")] = None
    ) -> Template:
        return Template(
            "accounts/login.html", context={"next": safe_next(next_path), "error": None, "email": ""}
        )

    @post("/login", name="login_submit")
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: URLEncodedBody[dict[str, str]],
        db_session: DbSession,
        settings: SettingsDep,
    ) -> Template | Redirect:
        email = str(data.get("email", ""))[:320]
        password = str(data.get("password", ""))[:1000]
        target = safe_next(data.get("next"))
        ip_key = hashed(settings.secret_key, client_ip(request.scope))
        email_key = hashed(settings.secret_key, email.strip().lower())
        allowed = await hit(db_session, f"login:ip:{ip_key}", LOGIN_LIMIT_PER_IP, LOGIN_WINDOW)
        allowed &= await hit(db_session, f"login:email:{email_key}", LOGIN_LIMIT_PER_EMAIL, LOGIN_WINDOW)
        await db_session.commit()  # the attempt counts even when the login fails
        if not allowed:
            context = {
                "next": target,
                "email": email,
                "error": gettext("Too many attempts. Try again in 15 minutes."),
            }
            return Template("accounts/login.html", context=context, status_code=HTTP_429_TOO_MANY_REQUESTS)
        service = AccountService(session=db_session)
        user = await service.authenticate(email, password)
        if user is None:
            context = {
                "next": target,
                "email": email,
                "error": gettext("The email or the password is not correct."),
            }
            return Template("accounts/login.html", context=context, status_code=HTTP_401_UNAUTHORIZED)
        await service.end_session(session_token(request))
        token = await service.start_session(user)
        record(db_session, None, "login", "user", user.id, actor=user.email)
        await db_session.commit()
        cookie = Cookie(
            key=session_cookie_name(settings.serves_https),
            value=token,
            path="/",
            httponly=True,
            secure=settings.serves_https,
            samesite="lax",
            max_age=int(SESSION_LIFETIME.total_seconds()),
        )
        return Redirect(target, cookies=[cookie])

    @post("/logout", name="logout")
    async def logout(
        self, request: Request[Any, Any, Any], db_session: DbSession, settings: SettingsDep
    ) -> Redirect:
        await AccountService(session=db_session).end_session(session_token(request))
        await db_session.commit()
        name = session_cookie_name(settings.serves_https)
        expired = Cookie(key=name, value="", path="/", httponly=True, secure=settings.serves_https, max_age=0)
        # The check-in scanner keeps a ticket list and a cached page on the device: wipe them too.
        return Redirect("/login", cookies=[expired], headers={"Clear-Site-Data": '"cache", "storage"'})
