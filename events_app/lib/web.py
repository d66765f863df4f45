"""Cross-cutting web pieces: the locale middleware and the viewer's time zone."""

from __future__ import annotations

from http.cookies import SimpleCookie

from litestar.datastructures import MutableScopeHeaders
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from events_app.lib import i18n

LANGUAGE_COOKIE = "lang"
TIMEZONE_COOKIE = "tz"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600


def _cookies(scope: Scope) -> dict[str, str]:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            parsed: SimpleCookie = SimpleCookie()
            try:
                parsed.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header is ignored, never a 500
                return {}
            return {key: morsel.value for key, morsel in parsed.items()}
    return {}


def _header(scope: Scope, wanted: bytes) -> str:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return ""


def _query_language(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == "lang":
            return i18n.normalize_language(value)
    return None


def choose_language(scope: Scope, default: str) -> tuple[str, bool]:
    """(language, chosen now): the switcher's ``?lang=``, then the cookie, then Accept-Language."""
    chosen = _query_language(scope)
    if chosen:
        return chosen, True
    cookie_language = i18n.normalize_language(_cookies(scope).get(LANGUAGE_COOKIE))
    if cookie_language:
        return cookie_language, False
    negotiated = i18n.negotiate_from_header(_header(scope, b"accept-language"))
    return negotiated or default, False


def viewer_timezone(scope: Scope) -> str | None:
    """The zone the visitor's browser reported (a cookie set by static/js/localtime.js)."""
    return _cookies(scope).get(TIMEZONE_COOKIE)


class LocaleMiddleware(ASGIMiddleware):
    """Sets the request's language for gettext and Babel; remembers a switcher choice in a cookie."""

    def __init__(self, default_language: str, secure_cookies: bool) -> None:
        self.default_language = i18n.normalize_language(default_language) or i18n.SOURCE_LANGUAGE
        self.secure_cookies = secure_cookies

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        language, chosen_now = choose_language(scope, self.default_language)
        scope.setdefault("state", {})["language"] = language

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers.add("Content-Language", language.replace("_", "-"))
                headers.add("Vary", "Accept-Language, Cookie")
                if chosen_now:
                    secure = "; Secure" if self.secure_cookies else ""
                    cookie = f"{LANGUAGE_COOKIE}={language}; Path=/; Max-Age={LANGUAGE_COOKIE_MAX_AGE}"
                    headers.add("Set-Cookie", f"{cookie}; SameSite=Lax{secure}")
            await send(message)

        with i18n.force_locale(language):
            await next_app(scope, receive, send_with_language)


def client_ip(scope: Scope) -> str:
    """The client's address as uvicorn reports it (behind a proxy, run uvicorn with --proxy-headers)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
