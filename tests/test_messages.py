"""Organisers write to a filtered set of an event's registrants: compose, preview, send, delivery counts."""

from __future__ import annotations

import html
import re
from email.message import EmailMessage
from urllib.parse import urlsplit

import sqlalchemy as sa
from conftest import SmtpServer, add_event, create_user, csrf_token, login, registration_form
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import AuditEntry, Event, MassMessage, OutboxMessage, Registration, Role
from events_app.lib.outbox import OutboxWorker

ENGLISH_TITLE = "Creation of the human trafficking network"
SPANISH_TITLE = "Creación de la red contra la trata de personas"
SEND_FORM = re.compile(r'<form method="post" action="[^"]*/messages/send">(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')

MESSAGE = {
    "status": ["confirmed"],
    "country": "CO",
    "language": "",
    "subject_en": "News about {event}",
    "body_en": "Dear {name},\r\n<b>Bring</b> your ID & badge.\r\nYour page: {link}",
    "subject_es": "Novedades de {event}",
    "body_es": "Hola {name},\r\n<b>Traiga</b> su documento.\r\nSu página: {link}",
}


async def register(client: AsyncTestClient[Litestar], slug: str, **fields: str) -> None:
    body = {**registration_form(**fields), "consent": True}
    response = await client.post(f"/api/events/{slug}/registrations", json=body)
    assert response.status_code == 201, response.text


async def cancel_registration(session_maker: async_sessionmaker[AsyncSession], email: str) -> None:
    async with session_maker() as session:
        await session.execute(
            sa.update(Registration).where(Registration.email == email).values(status="cancelled")
        )
        await session.commit()


async def setup_event(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> tuple[Event, Event]:
    event = await add_event(session_maker)
    other = await add_event(session_maker, slug="other")
    people = [
        ("Ana Gómez", "ana@example.org", "CO", "es"),
        ("Bruno Silva", "bruno@example.org", "CO", "en"),
        ("Chloé Martin", "chloe@example.org", "CO", "fr"),
        ("Diego Pérez", "diego@example.org", "MX", "es"),
        ("Elena Ruiz", "elena@example.org", "CO", "es"),
    ]
    for name, email, country, language in people:
        await register(client, "launch", full_name=name, email=email, country=country, language=language)
    await register(client, "other", full_name="Otto Other", email="otto@example.org", country="CO")
    await cancel_registration(session_maker, "elena@example.org")
    return event, other


def text_body(message: EmailMessage, kind: str = "plain") -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def hidden_fields(page: str) -> list[tuple[str, str]]:
    found = SEND_FORM.search(page)
    assert found, "the preview has no send form"
    return [(name, html.unescape(value)) for name, value in HIDDEN.findall(found.group(1))]


def as_form(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {}
    for name, value in pairs:
        if name == "status":
            statuses = form.setdefault("status", [])
            assert isinstance(statuses, list)
            statuses.append(value)
        else:
            form[name] = value
    return form


async def test_compose_preview_send_reaches_exactly_the_filtered_registrants_in_their_language(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event, _ = await setup_event(client, session_maker)
    await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[event])
    await worker.drain()  # the confirmation emails
    smtp_server.messages.clear()
    await login(client, "manager@example.org")
    base = f"/manage/events/{event.id}/messages"

    listing = await client.get(base)
    assert listing.status_code == 200
    form_page = await client.get(f"{base}/new")
    assert 'name="subject_en"' in form_page.text
    assert 'value="confirmed" checked' in form_page.text

    token = await csrf_token(client, f"{base}/new")
    preview = await client.post(f"{base}/preview", data={"_csrf_token": token, **MESSAGE})
    assert preview.status_code == 200, preview.text
    assert "This message will be sent to 3 people." in preview.text
    assert f"Novedades de {SPANISH_TITLE}" in preview.text
    assert "Hola Ana Gómez,<br>" in preview.text
    assert "&lt;b&gt;Traiga&lt;/b&gt;" in preview.text
    assert "<b>Traiga</b>" not in preview.text
    assert f"News about {ENGLISH_TITLE}" in preview.text
    assert "Chloé Martin" in preview.text  # French readers get the English text
    assert "/my/…" in preview.text  # personal links stay secret in the preview
    async with session_maker() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(MassMessage)) == 0

    confirmation = {"_csrf_token": token, **as_form(hidden_fields(preview.text))}
    sent = await client.post(f"{base}/send", data=confirmation)
    assert sent.status_code == 200
    assert str(sent.url).endswith(f"{base}?sent=1")
    again = await client.post(f"{base}/send", data=confirmation)  # a double click sends nothing more
    assert again.status_code == 200

    assert await worker.drain() == 3
    received = {message["To"].addresses[0].addr_spec: message for message in smtp_server.messages}
    assert set(received) == {"ana@example.org", "bruno@example.org", "chloe@example.org"}

    ana = received["ana@example.org"]
    assert ana["Subject"] == f"Novedades de {SPANISH_TITLE}"
    assert text_body(ana).startswith("Hola Ana Gómez,\n<b>Traiga</b> su documento.\n")
    ana_html = text_body(ana, "html")
    assert "&lt;b&gt;Traiga&lt;/b&gt;" in ana_html
    assert "<b>Traiga</b>" not in ana_html
    assert "Hola Ana Gómez,<br>" in ana_html
    assert received["bruno@example.org"]["Subject"] == f"News about {ENGLISH_TITLE}"
    assert "Dear Bruno Silva," in text_body(received["bruno@example.org"])
    assert "&amp; badge" in text_body(received["bruno@example.org"], "html")
    assert "Dear Chloé Martin," in text_body(received["chloe@example.org"])

    links = {}
    for email, message in received.items():
        found = re.search(r"(?:Your page|Su página): (\S+)", text_body(message))
        assert found, text_body(message)
        links[email] = found.group(1)
        page = await client.get(urlsplit(found.group(1)).path)
        assert page.status_code == 200
        assert email in page.text  # {link} is the recipient's own registration page
    assert len(set(links.values())) == 3

    listing = await client.get(base)
    assert "News about {event}" in listing.text
    assert '<td data-count="recipients">3</td>' in listing.text
    assert '<td data-count="sent">3</td>' in listing.text
    assert '<td data-count="queued">0</td>' in listing.text
    assert '<td data-count="failed">0</td>' in listing.text

    async with session_maker() as session:
        [message] = (await session.execute(sa.select(MassMessage))).scalars().all()
        assert message.recipient_count == 3
        assert message.filters == {"statuses": ["confirmed"], "country": "CO", "language": ""}
        [entry] = (
            (await session.execute(sa.select(AuditEntry).where(AuditEntry.action == "message_sent")))
            .scalars()
            .all()
        )
        assert entry.actor_label == "manager@example.org"
        assert entry.event_id == event.id
        assert entry.object_id == str(message.id)
        assert entry.details["recipients"] == 3


async def test_unknown_placeholders_and_missing_texts_are_shown_next_to_their_fields(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event, _ = await setup_event(client, session_maker)
    await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[event])
    await login(client, "manager@example.org")
    base = f"/manage/events/{event.id}/messages"
    token = await csrf_token(client, f"{base}/new")

    typed = {**MESSAGE, "body_en": "Dear {nombre}, see {link}", "subject_es": "", "status": ["confirmed"]}
    for action in ("preview", "send"):
        response = await client.post(f"{base}/{action}", data={"_csrf_token": token, **typed})
        assert response.status_code == 422
        assert 'id="body_en-error"' in response.text
        assert "Unknown placeholder: {nombre}" in response.text
        assert 'aria-invalid="true" aria-describedby="body_en-error' in response.text
        assert "Dear {nombre}, see {link}</textarea>" in response.text  # what was typed stays
        assert 'id="subject_es-error"' in response.text  # Spanish body without a subject
        assert 'href="#body_en"' in response.text  # the error summary links to the field

    missing_base = {"_csrf_token": token, "status": "confirmed", "subject_es": "Hola", "body_es": "Hola"}
    response = await client.post(f"{base}/preview", data=missing_base)
    assert response.status_code == 422
    assert 'id="subject_en-error"' in response.text
    assert 'id="body_en-error"' in response.text

    no_status = {"_csrf_token": token, **{k: v for k, v in MESSAGE.items() if k != "status"}}
    response = await client.post(f"{base}/preview", data=no_status)
    assert response.status_code == 422
    assert 'id="status-error"' in response.text

    nobody = {"_csrf_token": token, **MESSAGE, "country": "AR"}
    response = await client.post(f"{base}/send", data=nobody)
    assert response.status_code == 422
    assert 'id="status-error"' in response.text
    async with session_maker() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(MassMessage)) == 0


async def test_other_events_managers_and_other_roles_get_404(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event, other = await setup_event(client, session_maker)
    await create_user(session_maker, "other@example.org", Role.EVENT_MANAGER, events=[other])
    await create_user(session_maker, "door@example.org", Role.CHECKIN_STAFF, events=[event])
    await create_user(session_maker, "focal@example.org", Role.FOCAL_POINT, countries=["CO"])
    base = f"/manage/events/{event.id}/messages"

    assert (await client.get(base, follow_redirects=False)).status_code in (302, 303)
    for email in ("other@example.org", "door@example.org", "focal@example.org"):
        await login(client, email)
        token = await csrf_token(client, "/manage")
        assert (await client.get(base)).status_code == 404
        assert (await client.get(f"{base}/new")).status_code == 404
        for action in ("preview", "edit", "send"):
            response = await client.post(f"{base}/{action}", data={"_csrf_token": token, **MESSAGE})
            assert response.status_code == 404, (email, action)
    await login(client, "other@example.org")
    assert (await client.get(f"/manage/events/{other.id}/messages")).status_code == 200
    assert (await client.get("/manage/events/not-an-id/messages")).status_code == 404
    async with session_maker() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(MassMessage)) == 0
        assert (
            await session.scalar(sa.select(sa.func.count()).where(OutboxMessage.kind == "mass_message")) == 0
        )


async def test_a_subject_that_looks_like_an_encoded_word_arrives_as_typed(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    """Found by the form fuzzer: the email package decoded ``=?utf-8?q?x?=`` typed in a subject, so the
    reader saw ``x``; such a subject is now sent as encoded words from end to end."""
    event = await add_event(session_maker)
    await register(client, "launch", full_name="Bruno Silva", email="bruno@example.org", language="en")
    await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[event])
    await worker.drain()
    smtp_server.messages.clear()
    await login(client, "manager@example.org")
    base = f"/manage/events/{event.id}/messages"
    token = await csrf_token(client, f"{base}/new")
    subject = "Codes =?utf-8?q?x?= and =?UTF-8?B?eQ==?= stay literal"
    form = {"_csrf_token": token, "status": ["confirmed"], "subject_en": subject, "body_en": "Hello {name}"}
    preview = await client.post(f"{base}/preview", data=form)
    assert preview.status_code == 200, preview.text
    confirmation = {"_csrf_token": token, **as_form(hidden_fields(preview.text))}
    assert (await client.post(f"{base}/send", data=confirmation)).status_code == 200
    assert await worker.drain() == 1
    assert smtp_server.messages[0]["Subject"] == subject
