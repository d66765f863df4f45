"""Organiser login: argon2id, database sessions renewed at login and dead after logout, rate limits."""

from __future__ import annotations

import time

import sqlalchemy as sa
from conftest import PASSWORD, create_user, csrf_token, login
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import AuditEntry, Role, User, UserSession


async def test_login_sets_a_fresh_http_only_session_and_logout_kills_it(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    assert (await client.get("/manage", follow_redirects=False)).status_code in (302, 303)

    client.cookies.set("session", "planted-by-an-attacker", domain="testserver.local")
    response = await login(client, "admin@example.org")
    assert response.status_code == 200
    assert str(response.url).endswith("/manage")
    set_cookie = next(
        h for h in response.history[0].headers.get_list("set-cookie") if h.startswith("session=")
    )
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie or "SameSite=Lax" in set_cookie
    first_session = client.cookies.get("session")
    assert first_session
    assert first_session != "planted-by-an-attacker"
    assert "admin@example.org" in (await client.get("/manage")).text

    # Logging in again gives a new session id.
    await login(client, "admin@example.org")
    assert client.cookies.get("session") != first_session

    token = await csrf_token(client, "/manage")
    stolen = client.cookies.get("session")
    logout = await client.post("/logout", data={"_csrf_token": token}, follow_redirects=False)
    assert logout.headers["clear-site-data"] == '"cache", "storage"'
    assert (await client.get("/manage", follow_redirects=False)).status_code in (302, 303)
    client.cookies.set("session", stolen or "", domain="testserver.local")
    assert (await client.get("/manage", follow_redirects=False)).status_code in (302, 303)
    async with session_maker() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 0
        assert await session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "login")) == 2


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER)
    timings = {}
    answers = {}
    for label, email, password in [
        ("wrong password", "manager@example.org", "not the password"),
        ("unknown email", "nobody@example.org", PASSWORD),
    ]:
        started = time.perf_counter()
        response = await login(client, email, password)
        timings[label] = time.perf_counter() - started
        answers[label] = (response.status_code, response.text.replace(email, "EMAIL"))
    assert answers["wrong password"] == answers["unknown email"]
    assert answers["unknown email"][0] == 401
    # Both paths run one argon2 verification: neither is several times faster than the other.
    assert max(timings.values()) < 3 * min(timings.values())


async def test_passwords_are_stored_as_argon2id(session_maker: async_sessionmaker[AsyncSession]) -> None:
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    async with session_maker() as session:
        stored = await session.scalar(sa.select(User.password_hash))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_login_is_rate_limited_per_email(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    statuses = [(await login(client, "admin@example.org", "wrong")).status_code for _ in range(10)]
    assert statuses == [401] * 10
    # The 11th attempt is refused even with the right password.
    assert (await login(client, "admin@example.org")).status_code == 429


async def test_login_needs_the_csrf_token(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post("/login", data={"email": "a@example.org", "password": "x"})
    assert response.status_code == 403


async def test_next_parameter_only_allows_local_paths(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    token = await csrf_token(client, "/login")
    data = {
        "_csrf_token": token,
        "email": "admin@example.org",
        "password": PASSWORD,
        "next": "//evil.example",
    }
    response = await client.post("/login", data=data, follow_redirects=False)
    assert response.headers["location"] == "/manage"
