"""Cross-cutting web pieces: the locale middleware and the viewer's time zone."""

from __future__ import annotations

from http.cookies import SimpleCookie

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

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


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: Paths whose answers hold personal data or secrets: never stored by browsers or proxies.
PRIVATE_PREFIXES = ("/manage", "/api/manage", "/my/", "/login", "/logout", "/j/", "/api/checkin")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _same_origin(origin: str, expected: str) -> bool:
    return origin.rstrip("/").lower() == expected.rstrip("/").lower()


def is_cross_site_request(scope: Scope, base_url: str) -> bool:
    """A state-changing browser request sent from another site (checked before CSRF tokens)."""
    if scope.get("method", "GET") not in UNSAFE_METHODS:
        return False
    if _header(scope, b"sec-fetch-site") == "cross-site":
        return True
    origin = _header(scope, b"origin")
    if origin == "null":
        # Browsers send "null" from our own no-referrer pages (the secret /my/ links); then only a
        # Sec-Fetch-Site of same-origin (a header pages cannot set) says the form is ours.
        return _header(scope, b"sec-fetch-site") != "same-origin"
    if not origin:
        return False
    host = _header(scope, b"host")
    scheme = scope.get("scheme", "http")
    return not (_same_origin(origin, base_url) or (host and _same_origin(origin, f"{scheme}://{host}")))


class SecurityMiddleware(ASGIMiddleware):
    """Security headers on every answer; cross-site state-changing requests are refused."""

    def __init__(self, base_url: str, serves_https: bool) -> None:
        self.base_url = base_url
        self.serves_https = serves_https

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] == ScopeType.HTTP and is_cross_site_request(scope, self.base_url):
            await self._refuse(send)
            return
        path = str(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                self._add_headers(headers, path)
            await send(message)

        await next_app(scope, receive, send_with_headers)

    def _add_headers(self, headers: MutableScopeHeaders, path: str) -> None:
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
        if "referrer-policy" not in headers:
            headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        if self.serves_https:
            headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if path.startswith(PRIVATE_PREFIXES):
            headers["Cache-Control"] = "no-store"

    @staticmethod
    async def _refuse(send: Send) -> None:
        body = b"Cross-site request refused."
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        await send(start)
        end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
        await send(end)
