"""Registering through the HTML form delivers a real email with a working invite and QR ticket."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import icalendar
import pytest
import sqlalchemy as sa
import zxingcpp
from conftest import CSRF_FIELD, SmtpServer, add_event, submit_registration
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import Registration
from events_app.lib.i18n import force_locale, gettext
from events_app.lib.outbox import OutboxWorker
from events_app.lib.security import hash_token


def calendar_part(message: EmailMessage) -> EmailMessage:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            assert isinstance(part, EmailMessage)
            return part
    raise AssertionError("no text/calendar part")


def png_parts(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.walk() if part.get_content_type() == "image/png"]  # type: ignore[misc]


def text_body(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(results) == 1
    return str(results[0].text)


async def registrations(session_maker: async_sessionmaker[AsyncSession]) -> list[Registration]:
    async with session_maker() as session:
        return list((await session.execute(sa.select(Registration))).unique().scalars())


@pytest.mark.parametrize(
    ("zone", "local_start", "expected_utc"),
    [
        # Bogotá has no daylight saving time: UTC-5 all year.
        ("America/Bogota", datetime(2027, 4, 14, 10, 0), datetime(2027, 4, 14, 15, 0, tzinfo=UTC)),
        # Madrid, the week after the switch to summer time (28 March 2027): UTC+2.
        ("Europe/Madrid", datetime(2027, 4, 1, 10, 0), datetime(2027, 4, 1, 8, 0, tzinfo=UTC)),
        # Madrid, the week after the switch back (31 October 2027): UTC+1.
        ("Europe/Madrid", datetime(2027, 11, 3, 10, 0), datetime(2027, 11, 3, 9, 0, tzinfo=UTC)),
    ],
)
async def test_form_registration_sends_invite_and_ticket_in_spanish(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
    zone: str,
    local_start: datetime,
    expected_utc: datetime,
) -> None:
    await add_event(
        session_maker, timezone=zone, starts_at=expected_utc, ends_at=expected_utc + timedelta(hours=2)
    )

    response = await submit_registration(client, "launch", language="es")
    assert response.status_code == 200
    assert str(response.url).endswith("/events/launch/registered")

    assert await worker.drain() == 1
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    [registration] = await registrations(session_maker)

    assert message["To"].addresses[0].addr_spec == "jose.alvarez@policia.example.gov.co"
    assert message["Message-ID"]
    assert "Inscripción confirmada" in message["Subject"]
    with force_locale("es"):
        spanish = gettext("Your registration is confirmed.")
    assert spanish != "Your registration is confirmed."
    assert spanish in text_body(message)
    assert "Your registration is confirmed." not in text_body(message)

    part = calendar_part(message)
    assert part.get_param("method") == "REQUEST"
    calendar = icalendar.Calendar.from_ical(part.get_content())
    [vevent] = calendar.walk("VEVENT")
    assert vevent.decoded("DTSTART").astimezone(UTC) == expected_utc
    assert str(vevent["DTSTART"].params["TZID"]) == zone
    assert str(vevent["UID"]) == f"registration-{registration.id}@events-app"
    assert int(vevent["SEQUENCE"]) == 0
    assert "DTSTAMP" in vevent
    assert str(vevent["ATTENDEE"]).lower() == "mailto:jose.alvarez@policia.example.gov.co"
    assert str(vevent["ORGANIZER"]).lower() == "mailto:secretariat@programme.example.org"
    [timezone] = calendar.walk("VTIMEZONE")
    assert str(timezone["TZID"]) == zone
    assert timezone.walk("STANDARD") or timezone.walk("DAYLIGHT")
    if zone == "Europe/Madrid":
        assert timezone.walk("DAYLIGHT")

    pngs = png_parts(message)
    assert len(pngs) == 2  # inline in the HTML and as an attachment
    code = decode_qr(pngs[0].get_content())
    assert hash_token(code) == registration.ticket_hash
    assert decode_qr(pngs[1].get_content()) == code
    assert any(part.get_filename() == "invite.ics" for part in message.walk())


async def test_email_language_follows_the_registrant(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker)
    for language, email, expected in [
        ("en", "a@example.org", "Registration confirmed"),
        ("pt_BR", "b@example.org", "Inscrição confirmada"),
        ("es", "c@example.org", "Inscripción confirmada"),
    ]:
        response = await submit_registration(client, "launch", language=language, email=email)
        assert response.status_code == 200
        await worker.drain()
        assert expected in smtp_server.messages[-1]["Subject"], smtp_server.messages[-1]["Subject"]


async def test_my_registration_page_ics_and_cancel(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker, capacity=1)
    await submit_registration(client, "launch", language="en")
    await worker.drain()
    link = _manage_link(smtp_server.messages[0])
    path = link.removeprefix("http://testserver.local")

    page = await client.get(path)
    assert page.status_code == 200
    assert "José Álvarez Gutiérrez" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    ticket = await client.get(f"{path}/ticket.png")
    [registration] = await registrations(session_maker)
    assert hash_token(decode_qr(ticket.content)) == registration.ticket_hash

    ics = await client.get(f"{path}/invite.ics")
    vevent = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")[0]
    assert int(vevent["SEQUENCE"]) == 0

    # A GET never cancels: it only asks for confirmation.
    confirm = await client.get(f"{path}/cancel")
    assert confirm.status_code == 200
    [registration] = await registrations(session_maker)
    assert registration.status.value == "confirmed"

    token = _csrf(confirm.text)
    done = await client.post(f"{path}/cancel", data={"_csrf_token": token})
    assert done.status_code == 200
    [registration] = await registrations(session_maker)
    assert registration.status.value == "cancelled"
    assert registration.invite_sequence == 1

    await worker.drain()
    cancel_message = smtp_server.messages[-1]
    part = calendar_part(cancel_message)
    assert part.get_param("method") == "CANCEL"
    vevent = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")[0]
    assert str(vevent["STATUS"]) == "CANCELLED"
    assert int(vevent["SEQUENCE"]) == 1
    assert str(vevent["UID"]) == f"registration-{registration.id}@events-app"

    ics_after = await client.get(f"{path}/invite.ics")
    calendar_after = icalendar.Calendar.from_ical(ics_after.content)
    assert str(calendar_after["METHOD"]) == "CANCEL"
    # The seat is free again: somebody else can take it.
    again = await submit_registration(client, "launch", email="other@example.org")
    assert str(again.url).endswith("/registered")


def _manage_link(message: EmailMessage) -> str:
    found = re.search(r"(http://testserver\.local/my/[A-Za-z0-9_-]{43})", text_body(message))
    assert found, text_body(message)
    return found.group(1)


def _csrf(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found
    return found.group(1)


async def test_the_message_says_its_language(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker)
    await submit_registration(client, "launch", language="pt_BR")
    await worker.drain()
    assert smtp_server.messages[0]["Content-Language"] == "pt-BR"


async def test_a_name_that_looks_like_an_encoded_word_reaches_the_mailbox_as_typed(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    """Found by the form fuzzer: the email package half-decoded a display name holding ``=?utf-8?q?x?=``
    next to non-ASCII text, so the To header named someone else; such names are now encoded whole."""
    await add_event(session_maker)
    name = "=?utf-8?q?x?=…=?utf-8?q?x?=ß' Gómez"
    response = await submit_registration(client, "launch", full_name=name, email="odd@example.org")
    assert response.status_code == 200
    assert await worker.drain() == 1
    [recipient] = smtp_server.messages[0]["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == (name, "odd@example.org")
