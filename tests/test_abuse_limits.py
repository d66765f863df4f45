"""Abuse limits: rate limits on registration and "resend my link", the honeypot, and the resend page.

The limits live in the database, so the last test runs two real server processes on one PostgreSQL
and shows that the 11th attempt is refused whichever process it reaches.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import (
    CSRF_FIELD,
    PASSWORD,
    SmtpServer,
    add_event,
    create_user,
    csrf_token,
    login,
    make_settings,
    registration_form,
    submit_registration,
)
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from support.servers import events_env, running, web_server

from events_app.app import create_app
from events_app.db.models import OutboxMessage, OutboxStatus, RateLimitBucket, Registration, Role
from events_app.domain.registrations.services import MailKind
from events_app.lib.outbox import OutboxWorker
from events_app.settings import Settings

BASE = "http://testserver.local"


@pytest.fixture
def limited_settings(tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> Settings:
    """Small limits, so a test reaches them in a few requests."""
    return make_settings(
        tmp_path,
        database_url,
        smtp_server.port,
        registration_limit_per_ip=3,
        registration_limit_per_email=2,
        resend_limit_per_ip=3,
        resend_limit_per_email=2,
    )


@pytest.fixture
async def limited_client(limited_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(limited_settings), base_url=BASE) as test_client:
        yield test_client


async def count(session_maker: async_sessionmaker[AsyncSession], model: type[Any]) -> int:
    async with session_maker() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def api_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**registration_form(), "consent": True}
    body.update(overrides)
    return body


def assert_rate_limited_page(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "Too many attempts" in response.text


# --- registration ----------------------------------------------------------------------------------


async def test_registration_form_is_limited_per_address(
    limited_client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    for number in range(3):
        response = await submit_registration(
            limited_client, "launch", email=f"person{number}@example.org", language="en"
        )
        assert response.status_code == 200, response.text
        assert response.url.path == "/events/launch/registered"
    response = await submit_registration(
        limited_client, "launch", email="fourth@example.org", full_name="Ana Cuarta", language="en"
    )
    assert_rate_limited_page(response)
    # What was typed is kept.
    assert 'value="fourth@example.org"' in response.text
    assert 'value="Ana Cuarta"' in response.text
    assert await count(session_maker, Registration) == 3


async def test_registration_form_message_is_translated(
    limited_client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    for number in range(3):
        await submit_registration(limited_client, "launch", email=f"p{number}@example.org")
    token = await csrf_token(limited_client, "/events/launch/register?lang=es")
    form = {"_csrf_token": token, **registration_form(email="p9@example.org")}
    response = await limited_client.post("/events/launch/register", data=form)
    assert response.status_code == 429
    assert "Demasiados intentos" in response.text


async def test_invalid_attempts_count_per_address(
    limited_client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    for _ in range(3):
        response = await submit_registration(limited_client, "launch", email="not an email")
        assert response.status_code == 422
    response = await submit_registration(limited_client, "launch", email="valid@example.org")
    assert response.status_code == 429


async def test_registration_is_limited_per_email(
    limited_settings: Settings, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """Several addresses, one email: the third attempt with the email (any spelling) is refused."""
    await add_event(session_maker)
    limited_settings.registration_limit_per_ip = 100
    async with AsyncTestClient(app=create_app(limited_settings), base_url=BASE) as client:
        first = await submit_registration(client, "launch", email="Same.Person@Example.org")
        again = await submit_registration(client, "launch", email="same.person@example.org")
        third = await submit_registration(client, "launch", email="SAME.PERSON@example.org")
        other = await submit_registration(client, "launch", email="someone.else@example.org")
    assert first.status_code == again.status_code == 200
    assert_rate_limited_page(third)
    assert other.status_code == 200
    async with session_maker() as session:
        kinds = (await session.execute(sa.select(OutboxMessage.kind))).scalars().all()
    # The refused attempt sent nothing: one confirmation and one "already registered" for the person.
    assert sorted(kinds) == sorted(
        [MailKind.CONFIRMED.value, MailKind.ALREADY_REGISTERED.value, MailKind.CONFIRMED.value]
    )


async def test_api_shares_the_limits_and_answers_429_json(
    limited_client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    # A script cannot double its budget by switching between the form and the API.
    form = await submit_registration(limited_client, "launch", email="form@example.org")
    assert form.status_code == 200
    for number in range(2):
        response = await limited_client.post(
            "/api/events/launch/registrations", json=api_body(email=f"api{number}@example.org")
        )
        assert response.status_code == 201, response.text
    response = await limited_client.post(
        "/api/events/launch/registrations", json=api_body(email="api9@example.org")
    )
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert response.json()["detail"]
    assert 0 < int(response.headers["retry-after"]) <= 60
    # Invalid bodies are refused with 429 too once over the limit (no free probing).
    response = await limited_client.post("/api/events/launch/registrations", json=api_body(email="x"))
    assert response.status_code == 429


async def test_api_is_limited_per_email(
    limited_client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    statuses = [
        (
            await limited_client.post(
                "/api/events/launch/registrations", json=api_body(email="api.person@example.org")
            )
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [201, 201, 429]


async def test_attempts_count_when_the_registration_rolls_back(
    limited_client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """A full event rolls the registration back; the attempt was committed before and still counts."""
    await add_event(session_maker, capacity=1, seats_taken=1)
    statuses = [
        (
            await limited_client.post(
                "/api/events/launch/registrations", json=api_body(email=f"late{number}@example.org")
            )
        ).status_code
        for number in range(4)
    ]
    assert statuses == [409, 409, 409, 429]
    async with session_maker() as session:
        hits = await session.scalar(
            sa.select(RateLimitBucket.hits).where(RateLimitBucket.key.like("register:ip:%"))
        )
    assert hits == 4


async def test_zero_turns_the_limits_off(
    tmp_path: Path, database_url: str, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    settings = make_settings(
        tmp_path, database_url, registration_limit_per_ip=0, registration_limit_per_email=0
    )
    await add_event(session_maker)
    async with AsyncTestClient(app=create_app(settings), base_url=BASE) as client:
        for number in range(12):
            response = await client.post(
                "/api/events/launch/registrations", json=api_body(email=f"bench{number % 2}@example.org")
            )
            assert response.status_code == 201
    assert await count(session_maker, RateLimitBucket) == 0


async def test_default_limits_let_an_office_register_together(
    tmp_path: Path, database_url: str, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """Thirty officials behind one NAT address, in the same minute, with the default settings."""
    names = ("registration_limit_per_ip", "registration_limit_per_email")
    defaults = {name: Settings.model_fields[name].default for name in names}
    assert defaults == {"registration_limit_per_ip": 30, "registration_limit_per_email": 10}
    settings = make_settings(tmp_path, database_url, **defaults)
    await add_event(session_maker)
    async with AsyncTestClient(app=create_app(settings), base_url=BASE) as client:
        statuses = [
            (
                await client.post(
                    "/api/events/launch/registrations", json=api_body(email=f"officer{number}@example.gov")
                )
            ).status_code
            for number in range(31)
        ]
    assert statuses == [201] * 30 + [429]


async def test_counter_keys_are_keyed_hashes_not_reversible(
    limited_client: AsyncTestClient[Litestar],
    limited_settings: Settings,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """No counter keeps an address or email readable, nor as a plain hash anyone can recompute."""
    await add_event(session_maker)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    email = "person@example.org"
    await submit_registration(limited_client, "launch", email=email)
    await resend(limited_client, email)
    await login(limited_client, "Admin@Example.org", "wrong")
    async with session_maker() as session:
        keys = (await session.execute(sa.select(RateLimitBucket.key))).scalars().all()
    forms = sorted(key.split(":")[:2] for key in keys)
    assert forms == [[form, kind] for form in ("login", "register", "resend") for kind in ("email", "ip")]
    ip = "testclient"  # the test client's address (scope["client"])
    identifiers = (ip, email, "admin@example.org")
    plain = {hashlib.sha256(value.encode()).hexdigest()[:32] for value in identifiers}
    secret = limited_settings.secret_key.encode()
    keyed = {
        hmac.new(secret, f"ratelimit:{value}".encode(), hashlib.sha256).hexdigest()[:32]
        for value in identifiers
    }
    for key in keys:
        part = key.split(":", 2)[2]
        assert not any(value in key for value in identifiers), key
        assert part not in plain, key
        assert part in keyed, key


# --- honeypot --------------------------------------------------------------------------------------


#: Words autofill heuristics of browsers and password managers look for in a field's name, id or label.
AUTOFILL_WORDS = ("url", "web", "site", "company", "organi", "name", "mail", "phone", "tel", "address")


async def test_public_forms_carry_a_hidden_honeypot(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    for path in ("/events/launch/register", "/my/resend"):
        page = (await client.get(path + "?lang=en")).text
        block = re.search(r'<div class="hp-field" aria-hidden="true">(.*?)</div>', page, re.S)
        assert block, path
        field = re.search(r"<input [^>]*name=\"hp_leave_blank\"[^>]*>", block.group(1))
        assert field, path
        assert 'tabindex="-1"' in field.group(0)
        assert 'autocomplete="off"' in field.group(0)
        # Nothing for autofill to recognise (a filled honeypot must not catch a real person).
        label = re.search(r"<label [^>]*>(.*?)</label>", block.group(1), re.S)
        assert label, path
        words = [*re.findall(r'(?:name|id|for)="([^"]*)"', block.group(1)), label.group(1)]
        for text in words:
            found = [word for word in AUTOFILL_WORDS if word in text.lower()]
            assert not found, (path, found, text)
    css = (await client.get("/static/css/site.css")).text
    assert re.search(r"\.hp-field \{[^}]*left: -10000px", css)


HIDDEN_FIELD_FILLED = "Your browser filled in a field that must stay empty"


async def test_filled_honeypot_stores_nothing_and_a_person_can_submit_again(
    limited_client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """No fake success: the form comes back with what was typed, the honeypot empty and a neutral
    message; nothing is stored or sent. A second submit (the field now empty) goes through."""
    await add_event(session_maker)
    token = await csrf_token(limited_client, "/events/launch/register?lang=en")
    form = {"_csrf_token": token, **registration_form(full_name="Ana Autofill", language="en")}
    refused = await limited_client.post(
        "/events/launch/register", data={**form, "hp_leave_blank": "http://spam.example"}
    )
    assert refused.status_code == 422
    assert refused.url.path == "/events/launch/register"
    assert HIDDEN_FIELD_FILLED in refused.text
    assert 'value="Ana Autofill"' in refused.text
    assert 'value="jose.alvarez@policia.example.gov.co"' in refused.text
    assert "spam.example" not in refused.text
    assert re.search(r'name="hp_leave_blank"[^>]*value=""', refused.text)

    resend_token = await csrf_token(limited_client, "/my/resend?lang=en")
    resend_refused = await limited_client.post(
        "/my/resend",
        data={"_csrf_token": resend_token, "email": "someone@example.org", "hp_leave_blank": "x"},
    )
    assert resend_refused.status_code == 422
    assert HIDDEN_FIELD_FILLED in resend_refused.text
    assert 'value="someone@example.org"' in resend_refused.text

    assert await count(session_maker, Registration) == 0
    assert await count(session_maker, OutboxMessage) == 0
    # The honeypot posts left no trace, not even in the counters.
    assert await count(session_maker, RateLimitBucket) == 0

    # The person submits again, as the page asks.
    registered = await limited_client.post("/events/launch/register", data=form)
    assert registered.status_code == 200
    assert registered.url.path == "/events/launch/registered"
    resent = await limited_client.post(
        "/my/resend", data={"_csrf_token": resend_token, "email": "someone@example.org"}
    )
    assert resent.status_code == 200
    assert "Check your email" in resent.text
    assert await count(session_maker, Registration) == 1


async def test_honeypot_message_is_translated(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    token = await csrf_token(client, "/my/resend?lang=fr")
    response = await client.post(
        "/my/resend", data={"_csrf_token": token, "email": "a@example.org", "hp_leave_blank": "x"}
    )
    assert response.status_code == 422
    assert HIDDEN_FIELD_FILLED not in response.text
    assert "navigateur" in response.text


# --- resend my registration link ------------------------------------------------------------------


async def resend(client: AsyncTestClient[Litestar], email: str, lang: str = "en") -> Any:
    token = await csrf_token(client, f"/my/resend?lang={lang}")
    return await client.post("/my/resend", data={"_csrf_token": token, "email": email})


def without_csrf(text: str) -> str:
    return CSRF_FIELD.sub("", text)


async def test_resend_answers_the_same_and_mails_only_known_addresses(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker)
    await add_event(
        session_maker,
        slug="webinar",
        texts={
            "en": {"title": "Webinar on cybercrime"},
            "fr": {"title": "Webinaire sur la cybercriminalité"},
        },
    )
    await add_event(session_maker, slug="other")
    email = "lucie.martin@gendarmerie.example.fr"
    await submit_registration(client, "launch", email=email, language="en")
    await submit_registration(client, "webinar", email=email, language="fr")
    await submit_registration(client, "other", email=email, language="fr")
    await worker.drain()
    smtp_server.messages.clear()

    known = await resend(client, " Lucie.Martin@Gendarmerie.example.fr ")
    unknown = await resend(client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert without_csrf(known.text) == without_csrf(unknown.text)
    assert "Check your email" in known.text

    async def links_rows() -> list[OutboxMessage]:
        async with session_maker() as session:
            query = sa.select(OutboxMessage).where(OutboxMessage.kind == "registration_links")
            return list((await session.execute(query.order_by(OutboxMessage.id))).scalars())

    # The request does the same work for both (one row each, addressed as typed): its timing tells
    # nothing. The worker decides.
    rows = await links_rows()
    assert [row.recipient for row in rows] == [email, "nobody@example.org"]
    assert [row.registration_id for row in rows] == [None, None]

    assert await worker.drain() == 2
    assert len(smtp_server.messages) == 1
    sent, skipped = await links_rows()
    assert (sent.status, sent.recipient) == (OutboxStatus.SENT, email)
    assert sent.language == "fr"  # the newest registration's language
    assert sent.registration_id is not None
    # The stranger's typed address is not kept once the row is skipped.
    assert (skipped.status, skipped.recipient) == (OutboxStatus.SKIPPED, "")
    assert "nobody" not in (skipped.last_error or "")
    mail = smtp_server.messages[0]
    assert mail["To"].addresses[0].addr_spec == email
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Webinaire sur la cybercriminalité" in text  # in French, the registration's language
    links = re.findall(r"http://testserver\.local/my/[A-Za-z0-9_-]+", text)
    assert len(links) == 3
    for link in links:
        page = await client.get(link.removeprefix("http://testserver.local"))
        assert page.status_code == 200
        assert "Lucie" in page.text or email in page.text


async def test_resend_lists_only_active_registrations(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker)
    await add_event(session_maker, slug="second")
    email = "cancelled.one@example.org"
    await submit_registration(client, "launch", email=email, language="en")
    await submit_registration(client, "second", email=email, language="en")
    async with session_maker() as session:
        await session.execute(
            sa.update(Registration).where(Registration.event.has(slug="second")).values(status="cancelled")
        )
        await session.commit()
    await worker.drain()
    smtp_server.messages.clear()
    assert (await resend(client, email)).status_code == 200
    await worker.drain()
    body = smtp_server.messages[0].get_body(("plain",))
    assert body is not None
    assert len(re.findall(r"/my/[A-Za-z0-9_-]{20,}", body.get_content())) == 1


async def test_resend_rejects_a_bad_email_inline(client: AsyncTestClient[Litestar]) -> None:
    response = await resend(client, "not-an-email@", lang="es")
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.text
    assert 'value="not-an-email@"' in response.text
    assert "Ingrese una dirección" in response.text or "correo" in response.text
    empty = await resend(client, "")
    assert empty.status_code == 422


async def test_resend_is_limited_the_same_for_known_and_unknown(
    limited_client: AsyncTestClient[Litestar],
    limited_settings: Settings,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    await add_event(session_maker)
    await submit_registration(limited_client, "launch", email="known@example.org")
    known = [(await resend(limited_client, "known@example.org")).status_code for _ in range(3)]
    assert known == [200, 200, 429]
    async with AsyncTestClient(app=create_app(limited_settings), base_url=BASE) as fresh:
        # The per-address limit (3) is already reached from this client's address.
        response = await resend(fresh, "unknown@example.org")
    assert_rate_limited_page(response)
    assert 'value="unknown@example.org"' in response.text
    async with session_maker() as session:
        links = await session.scalar(
            sa.select(sa.func.count()).where(OutboxMessage.kind == MailKind.LINKS.value)
        )
    assert links == 2


async def test_pages_link_to_resend(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    for path in ("/events/launch", "/events/launch/register", "/events/launch/registered"):
        assert 'href="/my/resend"' in (await client.get(path)).text, path


# --- across two server processes (acceptance) ------------------------------------------------------


@pytest.mark.postgres
async def test_limits_hold_across_two_server_processes(tmp_path: Path, postgres_url: str) -> None:
    """The 11th attempt gets 429 whichever process it reaches: registration, resend and login."""
    engine = create_async_engine(postgres_url)
    session_maker = async_sessionmaker(engine, expire_on_commit=False)
    await add_event(session_maker)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    env = events_env(
        tmp_path / "var",
        postgres_url,
        EVENTS_RUN_WORKER_IN_APP="false",
        EVENTS_REGISTRATION_LIMIT_PER_IP="10",
        EVENTS_REGISTRATION_LIMIT_PER_EMAIL="10",
        EVENTS_RESEND_LIMIT_PER_IP="10",
        EVENTS_RESEND_LIMIT_PER_EMAIL="10",
    )
    servers = (web_server(env, tmp_path / "web-a.log"), web_server(env, tmp_path / "web-b.log"))
    try:
        with running(*servers) as (first, second):
            bases = [first.base_url, second.base_url]
            async with httpx.AsyncClient(timeout=30) as http:
                # Cookies ignore ports: one CSRF cookie and token serve both processes (same secret).
                page = await http.get(f"{bases[0]}/events/launch/register")
                found = CSRF_FIELD.search(page.text)
                assert found
                token = found.group(1)

                async def post(index: int, path: str, data: dict[str, str], ip: str) -> int:
                    response = await http.post(
                        f"{bases[index % 2]}{path}",
                        data={"_csrf_token": token, **data},
                        headers={"X-Forwarded-For": ip},  # uvicorn trusts it from loopback
                    )
                    return response.status_code

                async def eleven(path: str, data: Any, ip: Any, expected: int) -> None:
                    statuses = [await post(n, path, data(n), ip(n)) for n in range(10)]
                    assert statuses == [expected] * 10, (path, statuses)
                    # The 11th and 12th attempts, one on each process.
                    assert await post(10, path, data(10), ip(10)) == 429, path
                    assert await post(11, path, data(11), ip(11)) == 429, path

                register = "/events/launch/register"
                # Per address: ten people from one office address, then a script's 11th.
                await eleven(
                    register,
                    lambda n: registration_form(email=f"ip{n}@example.org"),
                    lambda n: "192.0.2.1",
                    302,
                )
                # Per email: one email from ever-changing addresses.
                await eleven(
                    register,
                    lambda n: registration_form(email="target@example.org"),
                    lambda n: f"198.51.100.{n}",
                    302,
                )
                await eleven(
                    "/my/resend", lambda n: {"email": f"r{n}@example.org"}, lambda n: "192.0.2.2", 200
                )
                await eleven(
                    "/my/resend",
                    lambda n: {"email": "target@example.org"},
                    lambda n: f"203.0.113.{n}",
                    200,
                )
                # Login: 10 wrong passwords for one email, alternating; then even the right one is refused.
                await eleven(
                    "/login",
                    lambda n: {"email": "admin@example.org", "password": PASSWORD if n >= 10 else "wrong"},
                    lambda n: f"198.18.0.{n}",
                    401,
                )
        async with session_maker() as session:
            registrations = await session.scalar(sa.select(sa.func.count()).select_from(Registration))
        assert registrations == 11  # ten from the office, one for the target email
    finally:
        await engine.dispose()


async def test_worker_forgets_old_counters(
    limited_client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
) -> None:
    await add_event(session_maker)
    await submit_registration(limited_client, "launch", email="old@example.org")
    await submit_registration(limited_client, "launch", email="new@example.org")
    async with session_maker() as session:
        await session.execute(
            sa.update(RateLimitBucket)
            .where(RateLimitBucket.key.like("register:email:%"))
            .values(updated_at=datetime.now(UTC) - timedelta(days=2))
        )
        await session.commit()
    await worker.run_periodic_jobs()
    async with session_maker() as session:
        keys = (await session.execute(sa.select(RateLimitBucket.key))).scalars().all()
    assert [key.split(":")[:2] for key in keys] == [["register", "ip"]]
