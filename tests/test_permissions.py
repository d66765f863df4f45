"""The permission matrix: every organiser route and API endpoint, for every role and for anonymous users.

Routes come from the app's own route table, so a new organiser route that is not classified here fails
the test. Other events' and other countries' ids answer 404: guessing ids reveals nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import (
    add_event,
    api_token_for,
    create_user,
    csrf_token,
    login,
    make_settings,
    registration_form,
)
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from events_app.app import create_app
from events_app.db.engine import configure_sqlite
from events_app.db.models import Certificate, OnlineAttendance, OutboxMessage, Registration, Role

ROLES = ("anonymous", "admin", "manager_a", "manager_b", "focal_co", "focal_br", "checkin_a", "checkin_b")
ALL_STAFF = frozenset(ROLES) - {"anonymous"}

# Capabilities: who may reach a route on event A (Colombian registrant) -------------------------------
ADMIN = frozenset({"admin"})
MANAGE_A = frozenset({"admin", "manager_a"})
SEE_A = frozenset({"admin", "manager_a", "focal_co", "focal_br"})
SEE_REGISTRANT_CO = frozenset({"admin", "manager_a", "focal_co"})
CHECKIN_A = frozenset({"admin", "manager_a", "checkin_a"})
CREATE_EVENTS = frozenset({"admin", "manager_a", "manager_b"})

#: (method, path pattern) -> roles allowed; checked in order, first match wins.
MATRIX: list[tuple[str, str, frozenset[str]]] = [
    ("GET", r"^/manage$", ALL_STAFF),
    ("GET", r"^/manage/dashboard$", ALL_STAFF - {"checkin_a", "checkin_b"}),
    ("GET", r"^/manage/checkin$", ALL_STAFF),
    ("GET", r"^/manage/privacy$", ALL_STAFF - {"checkin_a", "checkin_b"}),
    ("GET", r"^/manage/checkin-sw\.js$", ALL_STAFF | {"anonymous"}),
    ("*", r"^/manage/(users|tokens|audit)", ADMIN),
    ("*", r"^/manage/events/new$", CREATE_EVENTS),
    ("*", r"^/manage/events/{event}/checkin$", CHECKIN_A),
    (
        "*",
        r"^/manage/events/{event}/(edit|cancel|publish|duplicate|messages|certificates|attendance/import"
        r"|attendance/threshold|attendance/{attendance}/match)",
        MANAGE_A,
    ),
    (
        "POST",
        r"^/manage/events/{event}/attendees/",
        frozenset({"admin", "manager_a", "focal_co", "focal_br"}),
    ),
    ("GET", r"^/manage/events/{event}(/attendees(\.csv|\.xlsx)?|/dashboard|/attendance(\.csv)?)?$", SEE_A),
    ("*", r"^/manage/registrations/{registration}/reissue-ticket$", SEE_REGISTRANT_CO),
    ("*", r"^/manage/registrations/{registration}", SEE_REGISTRANT_CO),
    ("POST", r"^/manage/outbox/{message}/resend$", SEE_REGISTRANT_CO),
    ("POST", r"^/manage/certificates/{certificate}/revoke$", MANAGE_A),
    ("GET", r"^/api/manage/events/{event}/registrations(\.csv)?$", SEE_A),
    ("POST", r"^/api/manage/registrations/{registration}/", SEE_REGISTRANT_CO),
    ("GET", r"^/api/checkin/events/{event}/", CHECKIN_A),
    ("POST", r"^/api/checkin(/undo)?$", CHECKIN_A),
]
ORGANISER_PREFIXES = ("/manage", "/api/manage", "/api/checkin")


@dataclass
class World:
    """One client; each role is its session cookie (several test clients on one app hang at shutdown)."""

    client: AsyncTestClient[Litestar]
    ids: dict[str, str]
    sessions: dict[str, str]
    tokens: dict[str, str]

    def act_as(self, role: str) -> AsyncTestClient[Litestar]:
        self.client.cookies.clear()
        if role in self.sessions:
            self.client.cookies.set("session", self.sessions[role], domain="testserver.local")
        return self.client


def classify(method: str, path: str) -> frozenset[str] | None:
    for wanted_method, pattern, roles in MATRIX:
        regex = (
            pattern.replace("{event}", "[^/]+")
            .replace("{registration}", "[^/]+")
            .replace("{message}", "[^/]+")
            .replace("{certificate}", "[^/]+")
            .replace("{attendance}", "[^/]+")
        )
        if wanted_method in ("*", method) and re.search(regex, path):
            return roles
    return None


def organiser_routes(app: Litestar) -> Iterator[tuple[str, str]]:
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith(ORGANISER_PREFIXES):
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                yield method, route.path


PARAMETER = re.compile(r"\{(\w+):(\w+)\}")


def concrete(path: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "decision":
            return "approve"
        return ids[name]

    return PARAMETER.sub(value, path)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The matrix is about routing and scopes, not SQL dialects: SQLite keeps it fast."""
    return sqlite_url


async def _build_world(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> World:
    event_a = await add_event(session_maker, slug="event-a", capacity=50, approval_required=True)
    event_b = await add_event(session_maker, slug="event-b")
    users = {
        "admin": await create_user(session_maker, "admin@example.org", Role.ADMIN),
        "manager_a": await create_user(session_maker, "manager.a@example.org", Role.EVENT_MANAGER, [event_a]),
        "manager_b": await create_user(session_maker, "manager.b@example.org", Role.EVENT_MANAGER, [event_b]),
        "focal_co": await create_user(
            session_maker, "focal.co@example.org", Role.FOCAL_POINT, countries=["CO"]
        ),
        "focal_br": await create_user(
            session_maker, "focal.br@example.org", Role.FOCAL_POINT, countries=["BR"]
        ),
        "checkin_a": await create_user(session_maker, "checkin.a@example.org", Role.CHECKIN_STAFF, [event_a]),
        "checkin_b": await create_user(session_maker, "checkin.b@example.org", Role.CHECKIN_STAFF, [event_b]),
    }
    # The target of user-administration routes: deactivating it must not log out a role under test.
    victim = await create_user(session_maker, "victim@example.org", Role.EVENT_MANAGER, [event_b])
    body = {**registration_form(email="colombian@example.org", country="CO"), "consent": True}
    assert (await client.post("/api/events/event-a/registrations", json=body)).status_code == 201
    async with session_maker() as session:
        registration = (await session.execute(sa.select(Registration))).unique().scalar_one()
        message_id = (await session.execute(sa.select(OutboxMessage.id))).scalars().first()
        attendance = OnlineAttendance(
            event_id=event_a.id, identity="row:x:1", display_name="Guest", minutes=5.0
        )
        certificate = Certificate(
            registration_id=registration.id,
            code_hash="c" * 64,
            basis="door",
            issued_at=registration.created_at,
        )
        session.add_all([attendance, certificate])
        await session.commit()
        ids = {
            "event_id": str(event_a.id),
            "registration_id": str(registration.id),
            "message_id": str(message_id),
            "user_id": str(victim.id),
            "token_id": "00000000-0000-7000-8000-000000000001",
            "attendance_id": str(attendance.id),
            "certificate_id": str(certificate.id),
        }
    sessions = {}
    tokens = {}
    for role, user in users.items():
        client.cookies.clear()
        assert (await login(client, user.email)).status_code == 200
        sessions[role] = str(client.cookies.get("session"))
        tokens[role] = await api_token_for(session_maker, user, name=role)
    return World(client=client, ids=ids, sessions=sessions, tokens=tokens)


def _denied(status: int, role: str, path: str, location: str) -> bool:
    if role == "anonymous":
        return status in (401, 403) or (status in (302, 303) and location.startswith("/login"))
    return status == 404


async def test_every_organiser_route_for_every_role(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    app = create_app(settings)
    engine = create_async_engine(sqlite_url)
    configure_sqlite(engine)
    session_maker = async_sessionmaker(engine, expire_on_commit=False)
    unclassified = []
    failures = []
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        world = await _build_world(client, session_maker)
        for method, path in organiser_routes(app):
            allowed = classify(method, path)
            if allowed is None:
                unclassified.append(f"{method} {path}")
                continue
            url = concrete(path, world.ids)
            for role in ROLES:
                status, location = await _request(world, role, method, url)
                if role in allowed:
                    if method == "GET" and (status in (401, 403, 404) or status >= 500):
                        failures.append(f"{role} should reach GET {url}: {status}")
                elif not _denied(status, role, url, location):
                    failures.append(f"{role} must not reach {method} {url}: {status}")
    await engine.dispose()
    assert not unclassified, f"routes missing from the permission matrix: {unclassified}"
    assert not failures, "\n".join(failures)


async def _request(world: World, role: str, method: str, url: str) -> tuple[int, str]:
    headers: dict[str, str] = {}
    if url.startswith("/api/"):
        client = world.act_as("anonymous")
        if role != "anonymous":
            headers["Authorization"] = f"Bearer {world.tokens[role]}"
    else:
        client = world.act_as(role)
    if method == "GET":
        response = await client.get(url, headers=headers, follow_redirects=False)
    elif url.startswith("/api/"):
        response = await client.post(
            url, json=_api_body(world, role, url), headers=headers, follow_redirects=False
        )
    else:
        token = await csrf_token(client, "/login")
        response = await client.post(
            url, data={"_csrf_token": token}, headers=headers, follow_redirects=False
        )
    return response.status_code, response.headers.get("location", "")


def _api_body(world: World, role: str, url: str) -> dict[str, str]:
    """A well-formed body, so that refusals come from the permission check, not from validation."""
    if url.endswith("/undo"):
        return {"event_id": world.ids["event_id"], "registration_id": world.ids["registration_id"]}
    return {
        "event_id": world.ids["event_id"],
        "nonce": f"matrix-{role}",
        "device": "matrix",
        "code": "A" * 43,
    }
