"""Security headers on every route, and cross-site form posts refused."""

from __future__ import annotations

import re

from conftest import add_event, csrf_token, registration_form
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

PLACEHOLDER = re.compile(r"\{(\w+):(\w+)\}")
SAMPLE_VALUES = {
    "str": "launch",
    "uuid": "00000000-0000-7000-8000-000000000000",
    "int": "1",
    "path": "css/site.css",
}


def concrete_paths(app: Litestar) -> list[str]:
    paths = []
    for route in app.routes:
        if isinstance(route, HTTPRoute) and "GET" in route.methods:
            paths.append(PLACEHOLDER.sub(lambda match: SAMPLE_VALUES[match.group(2)], route.path))
    return sorted(set(paths))


async def test_every_route_sends_the_security_headers(
    app: Litestar, client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    paths = concrete_paths(app)
    assert "/" in paths
    assert len(paths) > 10
    for path in paths:
        response = await client.get(path, follow_redirects=False)
        assert response.status_code < 500, path
        headers = response.headers
        csp = headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, path
        assert "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp, path
        assert headers.get("x-content-type-options") == "nosniff", path
        assert headers.get("referrer-policy"), path
        if path.startswith(("/manage", "/my/", "/login", "/api/manage")):
            assert headers.get("cache-control") == "no-store", path


async def test_a_cross_site_post_is_refused(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    token = await csrf_token(client, "/events/launch/register")
    form = {"_csrf_token": token, **registration_form()}
    refused: list[dict[str, str]] = [
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
        {"Origin": "null", "Sec-Fetch-Site": "same-site"},
    ]
    for headers in refused:
        response = await client.post("/events/launch/register", data=form, headers=headers)
        assert response.status_code == 403, headers
    # What Chromium sends from our own no-referrer pages (/my/<token>/cancel): the form is ours.
    own_page = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    response = await client.post("/events/launch/register", data=form, headers=own_page)
    assert response.status_code != 403
    same_site = await client.post(
        "/events/launch/register", data=form, headers={"Origin": "http://testserver.local"}
    )
    assert same_site.status_code == 200


async def test_a_post_without_csrf_token_is_refused(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    await client.get("/events/launch/register")
    response = await client.post("/events/launch/register", data=registration_form())
    assert response.status_code == 403


async def test_an_oversized_body_is_refused_with_413(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    huge = {**registration_form(), "consent": True, "institution": "x" * (2 * 1024 * 1024)}
    response = await client.post("/api/events/launch/registrations", json=huge)
    assert response.status_code == 413
    token = await csrf_token(client, "/events/launch/register")
    form = {"_csrf_token": token, **registration_form(institution="y" * (2 * 1024 * 1024))}
    assert (await client.post("/events/launch/register", data=form)).status_code == 413
