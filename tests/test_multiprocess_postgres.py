"""Two web processes and two outbox workers on one PostgreSQL database, driven together.

Real processes (``python -m events_app run`` and ``python -m events_app worker``) configured through the
environment as in production, one throwaway PostgreSQL database migrated by ``events_app db upgrade``,
and a real SMTP server (aiosmtpd) run by the test in its own event loop, so it can hold one message
inside DATA while the test kills the worker sending it.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from conftest import CSRF_FIELD, PASSWORD, add_event, create_user, registration_form
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from support.postgres import PostgresCluster
from support.servers import ServerProcess, events_env, free_port, running, web_server, worker_process

from events_app.db.models import Event, OutboxMessage, OutboxStatus, Registration, RegistrationStatus, Role

pytestmark = pytest.mark.postgres

LEASE_SECONDS = 4  # short, to keep the test short; a normal send takes milliseconds
RUSH = 40  # registrations at once: half for an event that refuses when full, half for one with a waitlist
SEATS = 5
STALLED_RECIPIENT = "stalled.in.data@example.org"


@dataclass
class RecordingHandler:
    """Keeps the Message-ID and recipients of everything it receives; can hold one message in DATA."""

    received: list[tuple[str, list[str]]] = field(default_factory=list)
    stall_recipient: str | None = None
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    stalled_message_id: str | None = None

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message_id = str(message_from_bytes(raw, policy=policy.default)["Message-ID"])
        recipients = [str(address) for address in envelope.rcpt_tos]
        # The whole message is here: count it as delivered even if the sender dies before our answer
        # (the worst case for duplicates).
        self.received.append((message_id, recipients))
        if self.stall_recipient in recipients and not self.stalled.is_set():
            self.stalled_message_id = message_id
            self.stalled.set()
            await self.release.wait()
        return "250 Message accepted"

    def counts(self) -> Counter[str]:
        return Counter(message_id for message_id, _ in self.received)


@pytest.fixture
async def smtp_handler() -> AsyncIterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler()
    port = free_port()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTPServer(handler, hostname="smtp.test"), "127.0.0.1", port)
    yield handler, port
    handler.release.set()
    server.close()
    await server.wait_closed()


@pytest.fixture
def multiproc_database(postgres_cluster: PostgresCluster, tmp_path: Path) -> str:
    """A fresh database migrated by the real command, as the deployment's migrations step does."""
    postgres_cluster.execute("DROP DATABASE IF EXISTS events_multiproc")
    postgres_cluster.create_database("events_multiproc")
    url = postgres_cluster.url("events_multiproc")
    env = events_env(tmp_path / "var", url)
    done = subprocess.run(
        [sys.executable, "-m", "events_app", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return url


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not in {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def form_token(http: httpx.AsyncClient, url: str) -> str:
    response = await http.get(url)
    assert response.status_code == 200, response.text
    found = CSRF_FIELD.search(response.text)
    assert found, f"no CSRF token on {url}"
    return found.group(1)


async def post_login(http: httpx.AsyncClient, base_url: str, email: str, password: str) -> httpx.Response:
    token = await form_token(http, f"{base_url}/login")
    data = {"_csrf_token": token, "email": email, "password": password}
    return await http.post(f"{base_url}/login", data=data, follow_redirects=False)


async def test_two_web_processes_and_two_workers_share_one_postgresql(
    tmp_path: Path, multiproc_database: str, smtp_handler: tuple[RecordingHandler, int]
) -> None:
    handler, smtp_port = smtp_handler
    url = multiproc_database
    engine = create_async_engine(url)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    env = events_env(
        tmp_path / "var",
        url,
        EVENTS_RUN_WORKER_IN_APP="false",
        EVENTS_SMTP_HOST="127.0.0.1",
        EVENTS_SMTP_PORT=str(smtp_port),
        EVENTS_OUTBOX_POLL_SECONDS="0.2",
        EVENTS_OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS),
        EVENTS_OUTBOX_RETRY_BASE_SECONDS="1",
    )
    await add_event(maker, slug="refuses", capacity=SEATS, waitlist_enabled=False)
    await add_event(maker, slug="waitlist", capacity=SEATS, waitlist_enabled=True)
    await create_user(maker, "admin@example.org", Role.ADMIN)
    await create_user(maker, "manager@example.org", Role.ADMIN)
    servers = (
        web_server(env, tmp_path / "web-a.log"),
        web_server(env, tmp_path / "web-b.log"),
        worker_process(env, tmp_path / "worker-1.log"),
        worker_process(env, tmp_path / "worker-2.log"),
    )
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    try:
        with running(*servers, timeout=60):
            web_a, web_b, worker_1, worker_2 = servers
            async with httpx.AsyncClient(timeout=60, limits=limits) as http:
                async with asyncio.timeout(30):
                    await sessions_hold_across_processes(http, web_a, web_b)
                    await login_rate_limit_holds_across_processes(http, web_a, web_b)
                async with asyncio.timeout(60):
                    await capacity_is_exact_across_processes(http, maker, web_a, web_b)
                    await every_message_is_delivered_once(maker, handler, timeout=30)
                async with asyncio.timeout(60):
                    await killing_a_worker_mid_send_loses_nothing(
                        http, maker, handler, web_a, web_b, (worker_1, worker_2)
                    )
    finally:
        await engine.dispose()


async def sessions_hold_across_processes(
    http: httpx.AsyncClient, web_a: ServerProcess, web_b: ServerProcess
) -> None:
    # Log in on A; the cookie (and the CSRF token) work on B.
    response = await post_login(http, web_a.base_url, "admin@example.org", PASSWORD)
    assert response.status_code in (302, 303), response.text
    session_cookie = http.cookies.get("session")
    assert session_cookie
    page = await http.get(f"{web_b.base_url}/manage", follow_redirects=False)
    assert page.status_code == 200
    assert "admin@example.org" in page.text

    # Log out on B; the same cookie is dead on A.
    token = await form_token(http, f"{web_b.base_url}/manage")
    logout = await http.post(f"{web_b.base_url}/logout", data={"_csrf_token": token}, follow_redirects=False)
    assert logout.status_code in (302, 303)
    async with httpx.AsyncClient(cookies={"session": session_cookie}) as stolen:
        after = await stolen.get(f"{web_a.base_url}/manage", follow_redirects=False)
    assert after.status_code in (302, 303)
    assert "/login" in after.headers["location"]


async def login_rate_limit_holds_across_processes(
    http: httpx.AsyncClient, web_a: ServerProcess, web_b: ServerProcess
) -> None:
    # Ten failed logins for one email, alternating between the processes: each process saw only five.
    for attempt in range(10):
        server = (web_a, web_b)[attempt % 2]
        response = await post_login(http, server.base_url, "manager@example.org", "not the password")
        assert response.status_code == 401, (attempt, response.status_code)
    # The 11th is refused on whichever process it reaches, even with the right password.
    for server in (web_a, web_b):
        response = await post_login(http, server.base_url, "manager@example.org", PASSWORD)
        assert response.status_code == 429, (server.base_url, response.status_code)


async def capacity_is_exact_across_processes(
    http: httpx.AsyncClient,
    maker: async_sessionmaker[AsyncSession],
    web_a: ServerProcess,
    web_b: ServerProcess,
) -> None:
    barrier = asyncio.Barrier(RUSH)

    async def register(index: int) -> tuple[str, int]:
        server = (web_a, web_b)[index % 2]
        slug = ("refuses", "waitlist")[(index // 2) % 2]  # each event gets requests on both processes
        body = {**registration_form(email=f"rush{index}@example.org"), "consent": True}
        # Each registrant comes from their own address (through the proxy), as in a real rush.
        headers = {"X-Forwarded-For": f"10.20.{index // 250}.{index % 250 + 1}"}
        await http.get(f"{server.base_url}/health")  # open this request's connection before the line-up
        await barrier.wait()
        response = await http.post(
            f"{server.base_url}/api/events/{slug}/registrations", json=body, headers=headers
        )
        return slug, response.status_code

    results = await asyncio.gather(*(register(index) for index in range(RUSH)))

    assert all(status in (201, 409) for _, status in results), results
    per_event = {
        slug: Counter(status for s, status in results if s == slug) for slug in ("refuses", "waitlist")
    }
    assert per_event["refuses"] == Counter({201: SEATS, 409: RUSH // 2 - SEATS})
    assert per_event["waitlist"] == Counter({201: RUSH // 2})
    async with maker() as session:
        rows = (
            await session.execute(
                sa.select(Event.slug, Registration.status, sa.func.count())
                .join(Registration, Registration.event_id == Event.id)
                .group_by(Event.slug, Registration.status)
            )
        ).all()
        taken = dict((await session.execute(sa.select(Event.slug, Event.seats_taken))).tuples().all())
    statuses = {(slug, status): count for slug, status, count in rows}
    assert statuses == {
        ("refuses", RegistrationStatus.CONFIRMED): SEATS,
        ("waitlist", RegistrationStatus.CONFIRMED): SEATS,
        ("waitlist", RegistrationStatus.WAITLISTED): RUSH // 2 - SEATS,
    }
    assert taken == {"refuses": SEATS, "waitlist": SEATS}


async def outbox(maker: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with maker() as session:
        return list((await session.execute(sa.select(OutboxMessage))).scalars())


async def every_message_is_delivered_once(
    maker: async_sessionmaker[AsyncSession], handler: RecordingHandler, timeout: float
) -> None:
    async def all_sent() -> bool:
        return all(row.status is OutboxStatus.SENT for row in await outbox(maker))

    await eventually(all_sent, timeout, "every outbox row sent")
    await asyncio.sleep(LEASE_SECONDS / 2)  # a duplicate, if there were one, has time to arrive
    rows = await outbox(maker)
    counts = handler.counts()
    assert set(counts) == {row.message_id for row in rows}
    assert max(counts.values()) == 1, [mid for mid, count in counts.items() if count > 1]
    await every_registration_got_its_mail(maker, handler)


async def every_registration_got_its_mail(
    maker: async_sessionmaker[AsyncSession], handler: RecordingHandler
) -> None:
    async with maker() as session:
        emails = set((await session.execute(sa.select(Registration.email))).scalars())
    delivered_to = {recipient for _, recipients in handler.received for recipient in recipients}
    assert emails <= delivered_to, emails - delivered_to


async def killing_a_worker_mid_send_loses_nothing(
    http: httpx.AsyncClient,
    maker: async_sessionmaker[AsyncSession],
    handler: RecordingHandler,
    web_a: ServerProcess,
    web_b: ServerProcess,
    workers: tuple[ServerProcess, ServerProcess],
) -> None:
    handler.stall_recipient = STALLED_RECIPIENT
    emails = [f"late{index}@example.org" for index in range(3)]
    emails += [STALLED_RECIPIENT]
    emails += [f"late{index}@example.org" for index in range(3, 6)]

    # At once, so that the stalled message likely shares a batch with others (sent before it, or left
    # behind it): only the one in flight may be repeated.
    async def register(index: int, email: str) -> None:
        server = (web_a, web_b)[index % 2]
        body = {**registration_form(email=email), "consent": True}
        headers = {"X-Forwarded-For": f"10.30.0.{index + 1}"}
        response = await http.post(
            f"{server.base_url}/api/events/waitlist/registrations", json=body, headers=headers
        )
        assert response.status_code == 201, response.text

    await asyncio.gather(*(register(index, email) for index, email in enumerate(emails)))

    # A worker is provably in the middle of sending that message: the SMTP server holds it in DATA,
    # and the row is leased to that worker, whose name carries its process id.
    await asyncio.wait_for(handler.stalled.wait(), timeout=20)
    stalled_id = handler.stalled_message_id
    async with maker() as session:
        row = (
            await session.execute(sa.select(OutboxMessage).where(OutboxMessage.message_id == stalled_id))
        ).scalar_one()
    assert row.status is OutboxStatus.SENDING
    assert row.locked_by is not None
    match = re.fullmatch(r".*:(\d+):[0-9a-f]+", row.locked_by)
    assert match, row.locked_by
    pid = int(match.group(1))
    [victim] = [worker for worker in workers if worker.process and worker.process.pid == pid]
    victim.kill()  # SIGKILL: no clean-up, no chance to mark anything
    handler.release.set()

    # The other worker takes the stuck row over once its lease has run out; nothing is lost.
    async def all_sent() -> bool:
        return all(row.status is OutboxStatus.SENT for row in await outbox(maker))

    await eventually(all_sent, LEASE_SECONDS * 5, "every outbox row sent after the kill")
    await asyncio.sleep(LEASE_SECONDS / 2)
    rows = await outbox(maker)
    counts = handler.counts()
    assert set(counts) == {row.message_id for row in rows}
    # Only the message in flight when the worker died was delivered twice, with the same Message-ID.
    assert counts[stalled_id] == 2
    assert {mid: count for mid, count in counts.items() if count > 1} == {stalled_id: 2}
    [taken_over] = [row for row in rows if row.message_id == stalled_id]
    assert taken_over.attempts == 2
    await every_registration_got_its_mail(maker, handler)
