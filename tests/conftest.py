"""Shared fixtures: real SQLite files and a real PostgreSQL cluster, a real SMTP server, the real app."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from hypothesis import settings as hypothesis_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from support.postgres import PostgresCluster

from events_app.app import create_app, make_worker
from events_app.db import migrate
from events_app.db.engine import configure_sqlite
from events_app.db.models import Event, EventKind, EventStatus, Role, User
from events_app.domain.accounts.services import AccountService
from events_app.lib.outbox import OutboxWorker
from events_app.settings import Settings

# ---------------------------------------------------------------------------------------------------
# Hypothesis: the suite gates every change, so by default each property test replays the same examples
# (a red run then means a regression, not an unlucky draw). HYPOTHESIS_PROFILE=explore draws new ones.

hypothesis_settings.register_profile("gate", derandomize=True, database=None, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))


# ---------------------------------------------------------------------------------------------------
# SMTP: aiosmtpd on loopback, keeping what it receives


@dataclass
class SmtpHandler:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    #: recipient substring -> SMTP reply to give instead of accepting (e.g. "550 5.1.1 no such user")
    reject: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        for needle, reply in self.reject.items():
            if needle in address:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = SmtpHandler()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------------
# Databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy (migrations are tested on their own)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(tmp_path_factory.mktemp("pg"))
    cluster.start()
    cluster.create_database("events_template")
    migrate.upgrade(cluster.url("events_template"))
    yield cluster
    cluster.stop()


_pg_counter = 0


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    global _pg_counter
    _pg_counter += 1
    name = f"events_test_{_pg_counter}"
    postgres_cluster.create_database(name, template="events_template")
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "events.sqlite3"
        shutil.copy(sqlite_template, target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    target = tmp_path / "events.sqlite3"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


# ---------------------------------------------------------------------------------------------------
# Settings, app, client, worker


def make_settings(
    tmp_path: Path, database_url: str, smtp_port: int | None = None, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "var_dir": tmp_path / "var",
        "database_url": database_url,
        "base_url": "http://testserver.local",
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "mail_from": "events@programme.example.org",
        "run_worker_in_app": False,
        "outbox_retry_base_seconds": 0,
        "outbox_poll_seconds": 0.05,
        "default_language": "en",
        # Abuse limits off: most tests register many people from one address. test_abuse_limits.py
        # (and any test about the limits) sets its own.
        "registration_limit_per_ip": 0,
        "registration_limit_per_email": 0,
        "resend_limit_per_ip": 0,
        "resend_limit_per_email": 0,
    }
    if smtp_port is not None:
        values.update(smtp_host="127.0.0.1", smtp_port=smtp_port)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> Settings:
    return make_settings(tmp_path, database_url, smtp_server.port)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
async def live_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind a real uvicorn server on loopback.

    Litestar's AsyncTestClient runs requests one after another, so concurrency tests need real sockets.
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as http:
        yield http
    server.should_exit = True
    await task


@pytest.fixture
async def session_maker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(settings.database_url)
    if settings.is_sqlite:
        configure_sqlite(engine)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
def worker(settings: Settings, session_maker: async_sessionmaker[AsyncSession]) -> OutboxWorker:
    return make_worker(settings, session_maker, name="test-worker")


# ---------------------------------------------------------------------------------------------------
# Data


def event_fields(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    starts_at = now + timedelta(days=30)
    fields: dict[str, Any] = {
        "slug": "launch",
        "kind": EventKind.IN_PERSON,
        "status": EventStatus.PUBLISHED,
        "base_language": "en",
        "texts": {
            "en": {"title": "Creation of the human trafficking network", "summary": "Launch"},
            "es": {"title": "Creación de la red contra la trata de personas", "summary": "Lanzamiento"},
        },
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=3),
        "timezone": "America/Bogota",
        "venue_name": "Ágora Bogotá",
        "venue_address": "Calle 24 # 38-47",
        "venue_city": "Bogotá",
        "venue_country": "CO",
        "capacity": None,
        "registration_opens_at": now - timedelta(days=1),
        "registration_closes_at": None,
        "approval_required": False,
        "waitlist_enabled": False,
        "contact_name": "Programme secretariat",
        "contact_email": "secretariat@programme.example.org",
    }
    fields.update(overrides)
    return fields


async def add_event(session_maker: async_sessionmaker[AsyncSession], **overrides: Any) -> Event:
    async with session_maker() as session:
        event = Event(**event_fields(**overrides))
        session.add(event)
        await session.commit()
        return event


def registration_form(**overrides: str) -> dict[str, str]:
    form = {
        "full_name": "José Álvarez Gutiérrez",
        "email": "jose.alvarez@policia.example.gov.co",
        "country": "CO",
        "institution": "Policía Nacional",
        "position": "Investigador",
        "sector": "police",
        "language": "es",
        "consent": "yes",
    }
    form.update(overrides)
    return form


CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def csrf_token(client: AsyncTestClient[Litestar], path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    found = CSRF_FIELD.search(response.text)
    assert found, "the form carries no CSRF token"
    return found.group(1)


async def submit_registration(client: AsyncTestClient[Litestar], slug: str, **overrides: str) -> Any:
    token = await csrf_token(client, f"/events/{slug}/register")
    form = {"_csrf_token": token, **registration_form(**overrides)}
    return await client.post(f"/events/{slug}/register", data=form)


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------------------------
# Organisers

PASSWORD = "correct horse battery staple"


async def create_user(
    session_maker: async_sessionmaker[AsyncSession],
    email: str,
    role: Role,
    events: list[Event] | None = None,
    countries: list[str] | None = None,
) -> User:
    async with session_maker() as session:
        user = await AccountService(session=session).create_user(
            email, PASSWORD, role, email.split("@")[0], [event.id for event in events or []], countries
        )
        await session.commit()
        return user


async def login(client: AsyncTestClient[Litestar], email: str, password: str = PASSWORD) -> Any:
    token = await csrf_token(client, "/login")
    return await client.post("/login", data={"_csrf_token": token, "email": email, "password": password})


async def api_token_for(
    session_maker: async_sessionmaker[AsyncSession], user: User, name: str = "test"
) -> str:
    async with session_maker() as session:
        account = AccountService(session=session)
        stored = await account.get(user.id)
        _, token = await account.create_api_token(stored, name, created_by=None)
        await session.commit()
        return token
