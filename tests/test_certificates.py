"""Certificates of attendance: who qualifies, the PDF in the registrant's language, verification, mail."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
import zxingcpp
from conftest import SmtpServer, add_event, create_user, csrf_token, login
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from events_app.db.models import (
    AuditEntry,
    Certificate,
    CheckIn,
    Event,
    EventKind,
    OnlineAttendance,
    OutboxMessage,
    Registration,
    RegistrationStatus,
    Role,
    Sector,
)
from events_app.lib.i18n import force_locale, gettext
from events_app.lib.outbox import OutboxWorker
from events_app.lib.security import TokenPurpose, derive_token, hash_token
from events_app.settings import Settings

SPANISH_TITLE = "Creación de la red contra la trata de personas"
ENGLISH_TITLE = "Creation of the human trafficking network"


def registration_row(
    settings: Settings, event: Event, name: str, email: str, language: str
) -> dict[str, Any]:
    registration_id = uuid7()
    return {
        "id": registration_id,
        "event_id": event.id,
        "full_name": name,
        "email": email,
        "email_normalized": email.lower(),
        "country": "CO",
        "institution": "Institución",
        "position": "",
        "sector": Sector.POLICE,
        "language": language,
        "status": RegistrationStatus.CONFIRMED,
        "ticket_hash": hash_token(derive_token(settings.secret_key, TokenPurpose.TICKET, registration_id, 1)),
        "manage_token_hash": hash_token(
            derive_token(settings.secret_key, TokenPurpose.MANAGE, registration_id, 1)
        ),
        "privacy_notice_version": "2026-11",
        "consent_given_at": datetime.now(UTC),
    }


def manage_token(settings: Settings, registration_id: Any) -> str:
    return derive_token(settings.secret_key, TokenPurpose.MANAGE, registration_id, 1)


def certificate_code(settings: Settings, registration_id: Any) -> str:
    return derive_token(settings.secret_key, TokenPurpose.CERTIFICATE, registration_id, 1)


class People:
    """Registrants by a short key, written straight into the database."""

    def __init__(self, settings: Settings, session_maker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.session_maker = session_maker
        self.ids: dict[str, Any] = {}

    async def add(self, key: str, event: Event, name: str, language: str = "es") -> Any:
        row = registration_row(self.settings, event, name, f"{key}@example.org", language)
        async with self.session_maker() as session:
            await session.execute(sa.insert(Registration), [row])
            await session.commit()
        self.ids[key] = row["id"]
        return row["id"]

    async def check_in(self, key: str, event: Event, undone: bool = False) -> None:
        moment = event.starts_at + timedelta(minutes=5)
        async with self.session_maker() as session:
            session.add(
                CheckIn(
                    id=uuid7(),
                    event_id=event.id,
                    registration_id=self.ids[key],
                    device="door",
                    scanned_at=moment,
                    nonce=f"nonce-{key}",
                    undone_at=moment + timedelta(minutes=1) if undone else None,
                )
            )
            await session.commit()

    async def online(self, key: str, event: Event, minutes: float) -> None:
        start = event.starts_at
        end = start + timedelta(minutes=minutes)
        async with self.session_maker() as session:
            session.add(
                OnlineAttendance(
                    id=uuid7(),
                    event_id=event.id,
                    identity=f"{key}@example.org",
                    email=f"{key}@example.org",
                    display_name=key,
                    registration_id=self.ids[key],
                    segments=[[start.isoformat(), end.isoformat()]],
                    minutes=minutes,
                    matched_by="email",
                )
            )
            await session.commit()


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def pdf_qr(pdf: bytes) -> str:
    [image] = PdfReader(io.BytesIO(pdf)).pages[0].images
    [barcode] = zxingcpp.read_barcodes(image.image, formats=zxingcpp.BarcodeFormat.QRCode)
    return str(barcode.text)


async def past_events(session_maker: async_sessionmaker[AsyncSession]) -> tuple[Event, Event, Event]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    venue = await add_event(session_maker, slug="venue", starts_at=start, ends_at=start + timedelta(hours=3))
    webinar = await add_event(
        session_maker,
        slug="webinar",
        kind=EventKind.ONLINE,
        join_url="https://meet.example.org/j/1",
        starts_at=start,
        ends_at=start + timedelta(minutes=90),
    )
    future = await add_event(session_maker, slug="future")
    return venue, webinar, future


async def test_pdf_only_for_qualifying_people_after_the_end_in_their_language(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    venue, webinar, future = await past_events(session_maker)
    people = People(settings, session_maker)
    door = await people.add("door", venue, "Ōkubo Nguyễn Conceição", "es")
    await people.check_in("door", venue)
    await people.add("undone", venue, "Undone Person", "es")
    await people.check_in("undone", venue, undone=True)
    online = await people.add("online", webinar, "Ana Online", "en")
    await people.online("online", webinar, 54.0)  # exactly 60 % of 90 minutes
    await people.add("short", webinar, "Short Stay", "en")
    await people.online("short", webinar, 53.5)
    await people.add("early", future, "Too Early", "es")
    await people.check_in("early", future)

    for key in ("undone", "short", "early"):
        token = manage_token(settings, people.ids[key])
        assert (await client.get(f"/my/{token}/certificate.pdf")).status_code == 404, key
        assert "certificate.pdf" not in (await client.get(f"/my/{token}")).text, key
    assert (await client.get(f"/my/{'x' * 43}/certificate.pdf")).status_code == 404

    page = await client.get(f"/my/{manage_token(settings, door)}")
    assert f'href="/my/{manage_token(settings, door)}/certificate.pdf"' in page.text
    response = await client.get(f"/my/{manage_token(settings, door)}/certificate.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    text = pdf_text(response.content)
    code = certificate_code(settings, door)
    with force_locale("es"):
        spanish = [gettext("Certificate of attendance"), gettext("Attended in person")]
    assert "Ōkubo Nguyễn Conceição" in text
    assert SPANISH_TITLE in text
    assert ENGLISH_TITLE not in text
    for phrase in spanish:
        assert phrase in text
    assert settings.programme_name in text
    assert f"/certificates/{code}" in text.replace(" ", "")
    assert pdf_qr(response.content) == f"{settings.base_url}/certificates/{code}"

    english = pdf_text((await client.get(f"/my/{manage_token(settings, online)}/certificate.pdf")).content)
    assert "Ana Online" in english
    assert ENGLISH_TITLE in english
    assert "Attended online" in english
    assert "1.5 hours" in english

    async with session_maker() as session:
        certificates = (await session.execute(sa.select(Certificate))).scalars().all()
    assert {c.registration_id: c.basis for c in certificates} == {door: "in_person", online: "online"}
    assert {c.code_hash for c in certificates} == {
        hash_token(certificate_code(settings, door)),
        hash_token(certificate_code(settings, online)),
    }
    # Downloading again gives the same certificate (no second row).
    assert (await client.get(f"/my/{manage_token(settings, door)}/certificate.pdf")).status_code == 200
    async with session_maker() as session:
        assert (await session.execute(sa.select(sa.func.count()).select_from(Certificate))).scalar_one() == 2


async def test_verification_accepts_the_real_code_only_until_revoked(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    venue, _, _ = await past_events(session_maker)
    people = People(settings, session_maker)
    door = await people.add("door", venue, "Conceição Ōkubo", "es")
    await people.check_in("door", venue)
    assert (await client.get(f"/my/{manage_token(settings, door)}/certificate.pdf")).status_code == 200
    code = certificate_code(settings, door)

    valid = await client.get(f"/certificates/{code}?lang=es")
    assert valid.status_code == 200
    assert "Conceição Ōkubo" in valid.text
    assert SPANISH_TITLE in valid.text
    assert "door@example.org" not in valid.text  # no other personal data
    assert "Institución" not in valid.text
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    for bad in (forged, "not-a-code", certificate_code(settings, uuid7())):
        response = await client.get(f"/certificates/{bad}")
        assert response.status_code == 404, bad
        assert "Conceição" not in response.text

    await create_user(session_maker, "manager@programme.example.org", Role.EVENT_MANAGER, events=[venue])
    await create_user(session_maker, "other@programme.example.org", Role.EVENT_MANAGER, events=[])
    async with session_maker() as session:
        certificate_id = (await session.execute(sa.select(Certificate.id))).scalar_one()
    await login(client, "other@programme.example.org")
    token = await csrf_token(client, "/manage")
    response = await client.post(f"/manage/certificates/{certificate_id}/revoke", data={"_csrf_token": token})
    assert response.status_code == 404
    assert (await client.get(f"/certificates/{code}")).status_code == 200
    await client.post("/logout", data={"_csrf_token": token})

    await login(client, "manager@programme.example.org")
    page = f"/manage/events/{venue.id}/certificates"
    listing = await client.get(page)
    assert "Conceição Ōkubo" in listing.text
    token = await csrf_token(client, page)
    response = await client.post(
        f"/manage/certificates/{certificate_id}/revoke", data={"_csrf_token": token}, follow_redirects=False
    )
    assert response.status_code in (302, 303)
    revoked = await client.get(f"/certificates/{code}")
    assert revoked.status_code == 404
    assert "Conceição" not in revoked.text
    assert (await client.get(f"/my/{manage_token(settings, door)}/certificate.pdf")).status_code == 404
    async with session_maker() as session:
        actions = Counter((await session.execute(sa.select(AuditEntry.action))).scalars())
    assert actions["certificate_revoked"] == 1


def attachments(message: EmailMessage) -> dict[str, bytes]:
    found = {}
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        content = part.get_content()
        assert isinstance(content, bytes)
        found[str(part.get_filename())] = content
    return found


async def test_send_to_all_queues_one_mail_per_qualifying_person_once(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    venue, webinar, future = await past_events(session_maker)
    people = People(settings, session_maker)
    await people.add("door", webinar, "Nguyễn Văn An", "es")
    await people.check_in("door", webinar)
    await people.add("online", webinar, "Ana Online", "en")
    await people.online("online", webinar, 80)
    await people.add("short", webinar, "Short Stay", "en")
    await people.online("short", webinar, 20)
    await people.add("absent", webinar, "Never Came", "es")
    await people.add("elsewhere", venue, "Other Event", "es")
    await people.check_in("elsewhere", venue)
    await create_user(
        session_maker, "manager@programme.example.org", Role.EVENT_MANAGER, events=[webinar, future]
    )
    await login(client, "manager@programme.example.org")

    page = f"/manage/events/{webinar.id}/certificates"
    listing = await client.get(page)
    assert re.search(r'data-count="qualifying">2 ', listing.text)
    token = await csrf_token(client, page)
    send = f"/manage/events/{webinar.id}/certificates/send"
    response = await client.post(send, data={"_csrf_token": token}, follow_redirects=False)
    assert response.status_code in (302, 303)
    assert "2 certificate emails were queued." in (await client.get(response.headers["location"])).text
    again = await client.post(send, data={"_csrf_token": token}, follow_redirects=False)
    assert "0 certificate emails were queued." in (await client.get(again.headers["location"])).text
    early = await client.post(
        f"/manage/events/{future.id}/certificates/send", data={"_csrf_token": token}, follow_redirects=False
    )
    assert early.status_code == 409
    foreign = await client.post(f"/manage/events/{venue.id}/certificates/send", data={"_csrf_token": token})
    assert foreign.status_code == 404

    async with session_maker() as session:
        queued = (
            (await session.execute(sa.select(OutboxMessage).where(OutboxMessage.kind == "certificate")))
            .scalars()
            .all()
        )
        actions = Counter((await session.execute(sa.select(AuditEntry.action))).scalars())
    assert sorted(message.recipient for message in queued) == ["door@example.org", "online@example.org"]
    assert actions["certificates_sent"] == 2

    await worker.drain()
    by_recipient = {message["To"].addresses[0].addr_spec: message for message in smtp_server.messages}
    assert set(by_recipient) == {"door@example.org", "online@example.org"}
    spanish = by_recipient["door@example.org"]
    files = attachments(spanish)
    assert set(files) == {"certificate.pdf"}
    text = pdf_text(files["certificate.pdf"])
    assert "Nguyễn Văn An" in text
    assert SPANISH_TITLE in text
    body = spanish.get_body(preferencelist=("plain",))
    assert body is not None
    assert f"/certificates/{certificate_code(settings, people.ids['door'])}" in body.get_content()
    assert "Ana Online" in pdf_text(attachments(by_recipient["online@example.org"])["certificate.pdf"])
