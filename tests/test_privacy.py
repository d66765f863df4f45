"""Privacy: the versioned notice, acceptance stored with its version, "download my data", "erase my
data" and the retention job (acceptance item 4 of the hardening issue), on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import (
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
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from events_app.db.models import (
    AttendanceImport,
    AuditEntry,
    CheckIn,
    Event,
    JoinClick,
    OnlineAttendance,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationChange,
    RegistrationStatus,
    Role,
    ScanAttempt,
    metadata,
)
from events_app.domain.accounts.permissions import Principal
from events_app.domain.audit.services import record
from events_app.domain.events.manage_services import EventManagementService
from events_app.domain.messages.schemas import MessageDraft, RecipientFilter
from events_app.domain.messages.services import MessageService
from events_app.domain.privacy.notices import NOTICE_VERSIONS, PRIVACY_NOTICE_VERSION
from events_app.domain.privacy.retention import anonymise_expired
from events_app.domain.privacy.services import ERASED_NAME, erase
from events_app.domain.registrations import schemas
from events_app.domain.registrations.notifications import message_id_domain
from events_app.domain.registrations.services import RegistrationService, TokenSettings
from events_app.lib.i18n import force_locale, format_date_in_zone
from events_app.lib.outbox import OutboxWorker
from events_app.lib.security import TokenPurpose, derive_token, hash_token
from events_app.settings import Settings

Client = AsyncTestClient[Litestar]
Maker = async_sessionmaker[AsyncSession]

NOTICE_WORDS = {
    "es": "Quién es responsable de sus datos",
    "pt_BR": "Quem é responsável pelos seus dados",
    "en": "Who is responsible for your data",
    "fr": "Qui est responsable de vos données",
}
OLD_NOTICE_WORDS = {
    "es": "se eliminan un año después",
    "pt_BR": "são excluídos um ano depois",
    "en": "is deleted one year after it",
    "fr": "sont supprimées un an après",
}


async def only_registration(session_maker: Maker, email: str) -> Registration:
    async with session_maker() as session:
        statement = sa.select(Registration).where(Registration.email_normalized == email.lower())
        return (await session.execute(statement)).unique().scalar_one()


def manage_token(settings: Settings, registration: Registration) -> str:
    return derive_token(
        settings.secret_key, TokenPurpose.MANAGE, registration.id, registration.manage_token_version
    )


# --- the notice ---------------------------------------------------------------------------------------


async def test_notice_in_every_language_and_every_version_stays_readable(
    client: Client, settings: Settings
) -> None:
    assert NOTICE_VERSIONS[-1].version == PRIVACY_NOTICE_VERSION
    for language, words in NOTICE_WORDS.items():
        page = await client.get(f"/privacy?lang={language}")
        assert page.status_code == 200
        assert words in page.text
        assert PRIVACY_NOTICE_VERSION in page.text
        assert settings.privacy_contact in page.text
        assert f"{settings.retention_days} " in page.text
        for old in NOTICE_VERSIONS[:-1]:
            assert f'href="/privacy/{old.version}"' in page.text
            old_page = await client.get(f"/privacy/{old.version}?lang={language}")
            assert old_page.status_code == 200
            assert OLD_NOTICE_WORDS[language] in old_page.text
            assert 'href="/privacy"' in old_page.text  # to the current version
    assert (await client.get(f"/privacy/{PRIVACY_NOTICE_VERSION}")).status_code == 200
    missing = await client.get("/privacy/1999-01?lang=fr")
    assert missing.status_code == 404
    text = html.unescape(missing.text)
    assert "Il n'existe pas d'avis de confidentialité avec cette version." in text
    assert "There is no privacy notice" not in text


async def test_every_public_page_links_the_notice(client: Client, session_maker: Maker) -> None:
    await add_event(session_maker)
    for path in ("/", "/events/launch", "/events/launch/register", "/privacy", "/login"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert '<a href="/privacy">' in page.text, path


# --- acceptance ---------------------------------------------------------------------------------------


async def test_form_stores_the_accepted_version_with_the_time(client: Client, session_maker: Maker) -> None:
    await add_event(session_maker)
    form = await client.get("/events/launch/register")
    assert 'href="/privacy"' in form.text
    before = datetime.now(UTC)
    response = await submit_registration(client, "launch")
    assert response.status_code == 200, response.text
    registration = await only_registration(session_maker, registration_form()["email"])
    assert registration.privacy_notice_version == PRIVACY_NOTICE_VERSION
    assert before - timedelta(seconds=1) <= registration.consent_given_at <= datetime.now(UTC)


async def test_form_without_acceptance_is_refused_and_keeps_what_was_typed(
    client: Client, session_maker: Maker
) -> None:
    await add_event(session_maker)
    token = await csrf_token(client, "/events/launch/register")
    form = {key: value for key, value in registration_form().items() if key != "consent"}
    response = await client.post(
        "/events/launch/register", data={"_csrf_token": token, **form}, headers={"Accept-Language": "es"}
    )
    assert response.status_code == 422
    assert 'id="consent-error"' in response.text
    assert "Debe aceptar el aviso de privacidad" in response.text
    assert 'value="José Álvarez Gutiérrez"' in response.text
    async with session_maker() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0


async def test_api_requires_the_acceptance_and_stores_it(client: Client, session_maker: Maker) -> None:
    await add_event(session_maker)
    body: dict[str, Any] = {key: value for key, value in registration_form().items() if key != "consent"}
    missing = await client.post("/api/events/launch/registrations", json=body)
    assert missing.status_code == 422
    assert "consent" in {error["field"] for error in missing.json()["errors"]}
    refused = await client.post("/api/events/launch/registrations", json={**body, "consent": False})
    assert refused.status_code == 422
    assert [error["field"] for error in refused.json()["errors"]] == ["consent"]
    accepted = await client.post("/api/events/launch/registrations", json={**body, "consent": True})
    assert accepted.status_code == 201, accepted.text
    registration = await only_registration(session_maker, body["email"])
    assert registration.privacy_notice_version == PRIVACY_NOTICE_VERSION
    assert registration.consent_given_at is not None


# --- download my data ---------------------------------------------------------------------------------


async def test_download_my_data(
    client: Client, session_maker: Maker, settings: Settings, worker: OutboxWorker
) -> None:
    event = await add_event(session_maker)
    assert (await submit_registration(client, "launch")).status_code == 200
    await worker.drain()
    registration = await only_registration(session_maker, registration_form()["email"])
    async with session_maker() as session:
        now = datetime.now(UTC)
        session.add_all(
            [
                CheckIn(
                    event_id=event.id,
                    registration_id=registration.id,
                    device="Entrance A",
                    scanned_at=now,
                    nonce="export-nonce",
                ),
                JoinClick(registration_id=registration.id, event_id=event.id),
                OnlineAttendance(
                    event_id=event.id,
                    identity=registration.email_normalized,
                    email=registration.email,
                    display_name="José A.",
                    registration_id=registration.id,
                    minutes=42.0,
                ),
            ]
        )
        await session.commit()
    token = manage_token(settings, registration)
    my_page = await client.get(f"/my/{token}")
    assert f'href="/my/{token}/data.json"' in my_page.text
    assert f'href="/my/{token}/erase"' in my_page.text

    response = await client.get(f"/my/{token}/data.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    person = data["registration"]
    assert person["full_name"] == "José Álvarez Gutiérrez"
    assert person["email"] == "jose.alvarez@policia.example.gov.co"
    assert (person["country"], person["institution"], person["position"]) == (
        "CO",
        "Policía Nacional",
        "Investigador",
    )
    assert person["status"] == "confirmed"
    assert data["privacy"]["notice_version"] == PRIVACY_NOTICE_VERSION
    assert data["privacy"]["accepted_at"]
    assert data["privacy"]["notice_url"].endswith(f"/privacy/{PRIVACY_NOTICE_VERSION}")
    assert [change["to"] for change in data["status_history"]] == ["confirmed"]
    assert [checkin["device"] for checkin in data["check_ins"]] == ["Entrance A"]
    assert len(data["join_clicks"]) == 1
    assert data["online_attendance"][0]["minutes"] == 42.0
    assert data["certificates"] == []
    [mail] = data["emails"]
    assert (mail["kind"], mail["status"]) == ("registration_confirmed", "sent")
    assert mail["sent_at"]
    # In the registrant's language (Spanish), as it was sent.
    assert mail["subject"] == "Inscripción confirmada: Creación de la red contra la trata de personas"
    async with session_maker() as session:
        actions = (await session.execute(sa.select(AuditEntry.action))).scalars().all()
    assert "registration_data_exported" in actions


# --- erase my data ------------------------------------------------------------------------------------

ERASED_EMAIL = "erase.me@fiscalia.example.gov.co"
ERASED_FULL_NAME = "Zacarías Quintanilla"


async def _counts_by_country(session_maker: Maker, event_id: Any) -> dict[str, int]:
    async with session_maker() as session:
        rows = await session.execute(
            sa.select(Registration.country, sa.func.count())
            .where(Registration.event_id == event_id)
            .group_by(Registration.country)
        )
        return {country: int(count) for country, count in rows}


async def _every_stored_value(session_maker: Maker) -> str:
    """Every row of every table as text (to look for a person's data anywhere)."""
    chunks = []
    async with session_maker() as session:
        for table in metadata.sorted_tables:
            for row in await session.execute(sa.select(table)):
                chunks.append(json.dumps([str(value) for value in row], ensure_ascii=False))
    return "\n".join(chunks).casefold()


async def test_erase_my_data(
    client: Client, session_maker: Maker, settings: Settings, worker: OutboxWorker, smtp_server: SmtpServer
) -> None:
    event = await add_event(
        session_maker, capacity=1, waitlist_enabled=True, kind="online", join_url="https://meet.example.org/x"
    )
    person = {"email": ERASED_EMAIL, "full_name": ERASED_FULL_NAME, "country": "PE"}
    assert (await submit_registration(client, "launch", **person)).status_code == 200
    await worker.drain()
    waiting = {"email": "waiting@policia.example.gov.br", "full_name": "Ana Souza", "country": "BR"}
    assert (await submit_registration(client, "launch", **waiting)).status_code == 200
    registration = await only_registration(session_maker, ERASED_EMAIL)
    assert registration.status is RegistrationStatus.CONFIRMED
    # Copies of the person's data elsewhere: status history note, online attendance (matched and an
    # unmatched row with their email), a scan answer, an audit entry, and a queued mail.
    other_event = await add_event(session_maker, slug="other")
    async with session_maker() as session:
        await session.execute(
            sa.update(RegistrationChange)
            .where(RegistrationChange.registration_id == registration.id)
            .values(note=f"called {ERASED_FULL_NAME}")
        )
        session.add_all(
            [
                OnlineAttendance(
                    event_id=event.id,
                    identity="row:import:7",
                    email=ERASED_EMAIL.upper(),
                    display_name=ERASED_FULL_NAME,
                    registration_id=registration.id,
                    minutes=30.0,
                ),
                OnlineAttendance(
                    event_id=other_event.id,
                    identity="someone@else.org",
                    email="someone@else.org",
                    minutes=1.0,
                ),
                OnlineAttendance(
                    event_id=event.id, identity="row:import:9", display_name=ERASED_FULL_NAME, minutes=3.0
                ),
                AttendanceImport(
                    event_id=event.id,
                    source="zoom",
                    content_sha256="f" * 64,
                    timezone="UTC",
                    summary={"people": 2, "warnings": [f"{ERASED_FULL_NAME}: join or leave time missing"]},
                ),
                ScanAttempt(
                    event_id=event.id,
                    registration_id=registration.id,
                    nonce="scan-1",
                    device="door",
                    result="ok",
                    scanned_at=datetime.now(UTC),
                    answer={"result": "ok", "name": ERASED_FULL_NAME, "country": "PE"},
                ),
            ]
        )
        record(
            session,
            None,
            "attendance_matched",
            "online_attendance",
            uuid7(),
            event_id=event.id,
            registration_id=str(registration.id),
            display_name=ERASED_FULL_NAME,
            minutes=30,
        )
        record(session, None, "mail_note", "outbox_message", uuid7(), event_id=event.id, to=ERASED_EMAIL)
        record(
            session, None, "import", "event", event.id, event_id=event.id, warning=f"{ERASED_FULL_NAME}: x"
        )
        session.add(
            OutboxMessage(
                kind="mass_message",
                recipient=ERASED_EMAIL,
                language="es",
                registration_id=registration.id,
                payload={"subject": f"Hola {ERASED_FULL_NAME}"},
                message_id="<queued-for-erased@testserver.local>",
                next_attempt_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
        await session.commit()
    counts_before = await _counts_by_country(session_maker, event.id)
    assert ERASED_EMAIL in await _every_stored_value(session_maker)
    mails_before = len(smtp_server.messages)
    token = manage_token(settings, registration)
    ticket = derive_token(
        settings.secret_key, TokenPurpose.TICKET, registration.id, registration.ticket_version
    )
    join = derive_token(settings.secret_key, TokenPurpose.JOIN, registration.id, 1)
    assert (await client.get(f"/j/{join}", follow_redirects=False)).status_code == 303

    confirm = await client.get(f"/my/{token}/erase")
    assert confirm.status_code == 200
    assert confirm.headers["cache-control"] == "no-store"
    assert f'action="/my/{token}/erase"' in confirm.text
    without_csrf = await client.post(f"/my/{token}/erase", data={})
    assert without_csrf.status_code == 403
    csrf = await csrf_token(client, f"/my/{token}/erase")
    erased = await client.post(f"/my/{token}/erase", data={"_csrf_token": csrf})
    assert erased.status_code == 200, erased.text

    # The cancellation still reaches the person, with the calendar CANCEL of their invite (same UID)...
    await worker.drain()
    [cancel_mail] = [mail for mail in smtp_server.messages[mails_before:] if ERASED_EMAIL in mail["To"]]
    assert ERASED_FULL_NAME in str(cancel_mail["To"])
    calendar = next(part for part in cancel_mail.walk() if part.get_content_type() == "text/calendar")
    ics = calendar.get_content()
    assert "METHOD:CANCEL" in ics
    assert f"registration-{registration.id}@events-app" in ics.replace("\r\n ", "")
    assert ERASED_EMAIL in ics.replace("\r\n ", "").lower()
    # ... and once it is delivered, the worker's job blanks that last row too.
    await worker.run_periodic_jobs()

    # The person's data is nowhere any more; the row stays for the counts.
    everything = await _every_stored_value(session_maker)
    for value in (ERASED_EMAIL, ERASED_FULL_NAME, "fiscalia.example"):
        assert value.casefold() not in everything, value
    assert await _counts_by_country(session_maker, event.id) == counts_before
    waiting_id = (await only_registration(session_maker, waiting["email"])).id
    async with session_maker() as session:
        row = await session.get_one(Registration, registration.id)
        assert row.anonymised_at is not None
        assert (row.full_name, row.email, row.institution, row.position) == (ERASED_NAME, "", "", "")
        assert (row.country, row.status) == ("PE", RegistrationStatus.CANCELLED)
        assert row.event_id == event.id
        assert row.created_at == registration.created_at
        # The seat went to the waiting list.
        promoted = await session.get_one(Registration, waiting_id)
        assert promoted.status is RegistrationStatus.CONFIRMED
        seats = await session.scalar(sa.select(Event.seats_taken).where(Event.id == event.id))
        assert seats == 1
        mails = (
            (await session.execute(sa.select(OutboxMessage).where(OutboxMessage.registration_id == row.id)))
            .scalars()
            .all()
        )
        assert {mail.recipient for mail in mails} == {""}
        assert all(mail.payload == {} for mail in mails)
        assert {mail.status for mail in mails} == {OutboxStatus.SENT, OutboxStatus.SKIPPED}
        unrelated = await session.scalar(
            sa.select(OnlineAttendance.email).where(OnlineAttendance.event_id == other_event.id)
        )
        assert unrelated == "someone@else.org"
        erasure = (
            await session.execute(sa.select(AuditEntry).where(AuditEntry.action == "registration_erased"))
        ).scalar_one()
        assert erasure.object_id == str(row.id)
        assert erasure.details == {"reason": "participant_request"}

    # Links are dead; the personal link says why, in the person's language.
    gone = await client.get(f"/my/{token}?lang=es")
    assert gone.status_code == 410
    assert "fueron borrados" in gone.text or "se borraron" in gone.text
    assert gone.headers["cache-control"] == "no-store"
    for suffix in ("/ticket.png", "/invite.ics", "/data.json", "/erase", "/cancel"):
        assert (await client.get(f"/my/{token}{suffix}")).status_code == 410, suffix
    assert (await client.get(f"/j/{join}", follow_redirects=False)).status_code == 404
    async with session_maker() as session:
        assert (
            await session.scalar(
                sa.select(Registration.id).where(Registration.ticket_hash == hash_token(ticket))
            )
            is None
        )
    # Nothing more goes out to the erased person.
    await worker.drain()
    async with session_maker() as session:
        pending = await session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.registration_id == registration.id, OutboxMessage.status == OutboxStatus.QUEUED
            )
        )
        assert pending == 0


# --- retention ----------------------------------------------------------------------------------------


async def _register_in_the_past(
    session_maker: Maker, settings: Settings, slug: str, email: str, country: str
) -> None:
    async with session_maker() as session:
        event = (await session.execute(sa.select(Event).where(Event.slug == slug))).scalar_one()
        tokens = TokenSettings(secret_key=settings.secret_key, message_id_domain=message_id_domain(settings))
        service = RegistrationService(session=session, tokens=tokens)
        data = schemas.validate(registration_form(email=email, country=country, full_name=f"Person {email}"))
        result = await service.register(slug, data, now=event.starts_at - timedelta(days=2))
        assert result.registration is not None


async def _past_event(session_maker: Maker, slug: str, ended_ago: timedelta) -> Event:
    ends_at = datetime.now(UTC).replace(microsecond=0) - ended_ago
    starts_at = ends_at - timedelta(hours=2)
    return await add_event(
        session_maker,
        slug=slug,
        starts_at=starts_at,
        ends_at=ends_at,
        registration_opens_at=starts_at - timedelta(days=30),
    )


async def test_retention_job_anonymises_exactly_the_expired_registrations(
    session_maker: Maker, settings: Settings, worker: OutboxWorker
) -> None:
    days = settings.retention_days
    assert days == 365
    expired = await _past_event(session_maker, "expired", timedelta(days=days, minutes=5))
    kept = await _past_event(session_maker, "kept", timedelta(days=days) - timedelta(minutes=5))
    for slug in ("expired", "kept"):
        await _register_in_the_past(session_maker, settings, slug, f"a.{slug}@example.org", "CO")
        await _register_in_the_past(session_maker, settings, slug, f"b.{slug}@example.org", "MX")

    await worker.run_periodic_jobs()  # the worker runs the job with the configured retention

    async with session_maker() as session:
        rows = (await session.execute(sa.select(Registration))).unique().scalars().all()
        by_event = {
            event_id: [row for row in rows if row.event_id == event_id] for event_id in (expired.id, kept.id)
        }
        assert all(
            row.anonymised_at is not None and row.full_name == ERASED_NAME for row in by_event[expired.id]
        )
        assert sorted(row.country for row in by_event[expired.id]) == ["CO", "MX"]
        assert all(row.status is RegistrationStatus.CONFIRMED for row in by_event[expired.id])
        assert all(row.anonymised_at is None and row.email for row in by_event[kept.id])
        snapshot = {row.id: (row.anonymised_at, row.updated_at, row.email_normalized) for row in rows}
        audit = (
            await session.execute(
                sa.select(AuditEntry).where(AuditEntry.action == "registrations_anonymised")
            )
        ).scalar_one()
        assert audit.details == {"reason": "retention", "count": 2}
        assert audit.event_id == expired.id

    async with session_maker() as session:
        assert await anonymise_expired(session, days) == 0  # a second run changes nothing
    await worker.run_periodic_jobs()
    async with session_maker() as session:
        rows = (await session.execute(sa.select(Registration))).unique().scalars().all()
        assert {row.id: (row.anonymised_at, row.updated_at, row.email_normalized) for row in rows} == snapshot
        assert (
            await session.scalar(
                sa.select(sa.func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "registrations_anonymised")
            )
            == 1
        )
    everything = await _every_stored_value(session_maker)
    assert "a.expired@example.org" not in everything
    assert "a.kept@example.org" in everything

    # A mail queued later for an anonymised registration (say, a message to the event) is never sent.
    async with session_maker() as session:
        session.add(
            OutboxMessage(
                kind="registration_confirmed",
                recipient="",
                language="es",
                registration_id=by_event[expired.id][0].id,
                payload={},
                message_id="<after-retention@testserver.local>",
                next_attempt_at=datetime.now(UTC),
            )
        )
        await session.commit()
    await worker.drain()
    async with session_maker() as session:
        late = await session.scalar(
            sa.select(OutboxMessage.status).where(
                OutboxMessage.message_id == "<after-retention@testserver.local>"
            )
        )
    assert late is OutboxStatus.SKIPPED


async def test_organisers_see_what_will_be_purged_and_when(
    client: Client, session_maker: Maker, settings: Settings
) -> None:
    event = await _past_event(session_maker, "ended", timedelta(days=10))
    await add_event(session_maker, slug="future")
    for email, country in (("one@example.org", "CO"), ("two@example.org", "CO"), ("three@example.org", "BR")):
        await _register_in_the_past(session_maker, settings, "ended", email, country)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await create_user(session_maker, "focal@example.org", Role.FOCAL_POINT, countries=["BR"])
    with force_locale("en"):
        date_text = format_date_in_zone(
            event.ends_at + timedelta(days=settings.retention_days), event.timezone, "long"
        )

    assert (await login(client, "admin@example.org")).status_code == 200
    page = await client.get(f"/manage/events/{event.id}?lang=en")
    assert page.status_code == 200
    assert f"The personal data of 3 registrations will be anonymised on {date_text}." in page.text
    listing = await client.get("/manage/privacy?lang=en")
    assert listing.status_code == 200
    assert date_text in listing.text
    assert f'href="/manage/events/{event.id}"' in listing.text
    assert "<td>3</td>" in listing.text
    assert "future" not in listing.text  # no registrations: nothing to purge

    # A focal point sees the registrants of their countries only.
    client.cookies.clear()
    assert (await login(client, "focal@example.org")).status_code == 200
    page = await client.get(f"/manage/events/{event.id}?lang=en")
    assert f"The personal data of 1 registration will be anonymised on {date_text}." in page.text
    listing = await client.get("/manage/privacy?lang=en")
    assert "<td>1</td>" in listing.text


async def test_anonymised_registrations_are_mailed_nothing(session_maker: Maker, settings: Settings) -> None:
    """Retention keeps statuses (counts stay right), but nobody anonymised is a recipient any more: a
    mass message, an event move or cancellation, reminders and the door list leave them out."""
    event = await _past_event(session_maker, "over", timedelta(days=settings.retention_days + 1))
    for email in ("gone.one@example.org", "gone.two@example.org"):
        await _register_in_the_past(session_maker, settings, "over", email, "CO")
    async with session_maker() as session:
        assert await anonymise_expired(session, settings.retention_days) == 2
    await _register_in_the_past(session_maker, settings, "over", "still.here@example.org", "MX")
    admin = await create_user(session_maker, "admin@example.org", Role.ADMIN)
    principal = Principal(admin.id, admin.email, Role.ADMIN, frozenset(), frozenset())
    tokens = TokenSettings(secret_key=settings.secret_key, message_id_domain=message_id_domain(settings))

    async def queued(kind: str) -> list[str]:
        async with session_maker() as session:
            rows = await session.execute(
                sa.select(Registration.email)
                .join(OutboxMessage, OutboxMessage.registration_id == Registration.id)
                .where(OutboxMessage.kind == kind, OutboxMessage.status == OutboxStatus.QUEUED)
            )
            return list(rows.scalars())

    async with session_maker() as session:
        messages = MessageService(session, settings)
        draft = MessageDraft(RecipientFilter(), {"es": {"subject": "Hola", "body": "Hola {name}"}})
        loaded = await session.get_one(Event, event.id)
        assert (await messages.preview(loaded, draft)).recipient_count == 1
        assert await messages.send(principal, loaded, draft) is not None
    assert await queued("mass_message") == ["still.here@example.org"]
    async with session_maker() as session:
        assert await EventManagementService(session, tokens).cancel(principal, event.id) == 1
    assert await queued("event_cancelled") == ["still.here@example.org"]


def test_retention_cannot_be_zero(tmp_path: Path, sqlite_url: str) -> None:
    """0 would anonymise everyone the moment their event ends (it is not "off" as for the abuse limits)."""
    with pytest.raises(ValidationError):
        make_settings(tmp_path, sqlite_url, retention_days=0)
    assert make_settings(tmp_path, sqlite_url, retention_days=1).retention_days == 1


async def test_retention_is_set_based_and_yields_between_batches(
    session_maker: Maker, settings: Settings
) -> None:
    days = settings.retention_days
    sizes = {"small": 2, "large": 12, "more": 5}
    for age, (slug, size) in enumerate(sizes.items()):
        await _past_event(session_maker, slug, timedelta(days=days + 10 - age))
        for number in range(size):
            await _register_in_the_past(session_maker, settings, slug, f"p{number}.{slug}@example.org", "CO")
    with pytest.raises(ValueError, match="at least 1"):
        async with session_maker() as session:
            await anonymise_expired(session, 0)

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    async def one_run(**options: Any) -> tuple[int, int]:
        statements.clear()
        async with session_maker() as session:
            engine = session.bind.engine
            sa.event.listen(engine, "before_cursor_execute", count)
            try:
                done = await anonymise_expired(session, days, budget_seconds=0, **options)
            finally:
                sa.event.remove(engine, "before_cursor_execute", count)
        return done, len(statements)

    # One event per batch, oldest first; as many statements for 12 people as for 2 (set-based).
    done_small, cost_small = await one_run()
    done_large, cost_large = await one_run()
    assert (done_small, done_large) == (2, 12)
    assert cost_large == cost_small
    # With its time budget used up, a run stops after one batch (the worker goes back to sending
    # mail) and the next run goes on where it stopped.
    assert [(await one_run(batch_size=2))[0] for _ in range(4)] == [2, 2, 1, 0]
    async with session_maker() as session:
        left = await session.scalar(
            sa.select(sa.func.count()).select_from(Registration).where(Registration.anonymised_at.is_(None))
        )
        audits = (
            await session.execute(
                sa.select(AuditEntry.details).where(AuditEntry.action == "registrations_anonymised")
            )
        ).scalars()
        assert sorted(details["count"] for details in audits) == [1, 2, 2, 2, 12]
    assert left == 0


async def test_erasure_finds_escaped_emails_short_names_and_search_texts(
    session_maker: Maker, settings: Settings
) -> None:
    """Audit entries outside any event holding the email (SQLite stores JSON with non-ASCII escaped),
    a short name as a whole value, and organisers' search texts of the event."""
    event = await _past_event(session_maker, "gone", timedelta(days=settings.retention_days + 1))
    email = "josé.núñez@ministério.example.org"
    async with session_maker() as session:
        tokens = TokenSettings(secret_key=settings.secret_key, message_id_domain=message_id_domain(settings))
        data = schemas.validate(registration_form(email=email, full_name="Ana", country="BR"))
        result = await RegistrationService(session=session, tokens=tokens).register(
            "gone", data, now=event.starts_at - timedelta(days=2)
        )
        assert result.registration is not None
    async with session_maker() as session:
        record(session, None, "links_requested", "email", None, email=email.upper().lower())
        record(session, None, "unrelated", "email", None, email="someone.else@example.org")
        record(session, None, "attendance_row", "event", event.id, event_id=event.id, display_name="Ana")
        record(
            session,
            None,
            "attendees_exported",
            "event",
            event.id,
            event_id=event.id,
            filters={"q": "núñe", "country": "BR"},
        )
        session.add(OnlineAttendance(event_id=event.id, identity="row:x:1", display_name="ana ", minutes=2.0))
        await session.commit()
    async with session_maker() as session:
        assert await anonymise_expired(session, settings.retention_days) == 1
    async with session_maker() as session:
        details = {
            action: entry
            for action, entry in await session.execute(sa.select(AuditEntry.action, AuditEntry.details))
        }
        names = (await session.execute(sa.select(OnlineAttendance.display_name))).scalars().all()
    assert details["links_requested"] == {"email": "[erased]"}
    assert details["unrelated"] == {"email": "someone.else@example.org"}
    assert details["attendance_row"] == {"display_name": "[erased]"}
    assert details["attendees_exported"] == {"filters": {"q": "[erased]", "country": "BR"}}
    assert names == [""]
    everything = await _every_stored_value(session_maker)
    assert "núñez" not in everything
    assert "n\\u00fa\\u00f1ez" not in everything


async def test_erasure_after_a_cancellation_not_yet_sent_still_sends_it(
    client: Client, session_maker: Maker, settings: Settings, worker: OutboxWorker, smtp_server: SmtpServer
) -> None:
    await add_event(session_maker)
    person = {"email": ERASED_EMAIL, "full_name": ERASED_FULL_NAME}
    assert (await submit_registration(client, "launch", **person)).status_code == 200
    await worker.drain()
    tokens = TokenSettings(secret_key=settings.secret_key, message_id_domain=message_id_domain(settings))
    registration_id = (await only_registration(session_maker, ERASED_EMAIL)).id
    async with session_maker() as session:
        service = RegistrationService(session=session, tokens=tokens)
        registration = await session.get_one(Registration, registration_id)
        assert await service.cancel(registration)
    async with session_maker() as session:  # erased before the worker sent the cancellation
        service = RegistrationService(session=session, tokens=tokens)
        registration = await session.get_one(Registration, registration_id)
        await erase(service, registration)
    sent_before = len(smtp_server.messages)
    await worker.drain()
    [cancel_mail] = smtp_server.messages[sent_before:]
    assert ERASED_EMAIL in cancel_mail["To"]
    calendar = next(part for part in cancel_mail.walk() if part.get_content_type() == "text/calendar")
    assert "METHOD:CANCEL" in calendar.get_content()
    await worker.run_periodic_jobs()
    assert ERASED_EMAIL not in await _every_stored_value(session_maker)


async def _search_index_blocks(session_maker: Maker) -> bytes:
    async with session_maker() as session:
        blocks = await session.execute(sa.text("SELECT block FROM registrations_search_data"))
        return b"".join(block or b"" for (block,) in blocks)


def _trigrams(text: str) -> set[bytes]:
    folded = text.casefold().encode()
    return {folded[start : start + 3] for start in range(len(folded) - 2)}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_erased_names_leave_the_sqlite_search_index(session_maker: Maker, settings: Settings) -> None:
    """FTS5 only marks a deleted row: its trigrams stay readable in older index segments until merged."""
    tokens = TokenSettings(secret_key=settings.secret_key, message_id_domain=message_id_domain(settings))
    event = await _past_event(session_maker, "gone", timedelta(days=settings.retention_days + 1))
    await add_event(session_maker, slug="live")
    people = {
        "gone": ("Zebediah Quuxley", "zebediah.quuxley@hushmail.example.org", "Vortigern Wxyzzy"),
        "live": ("Xanthippe Jovqz", "xanthippe.jovqz@mail.example.org", "Kqwrtz Bureau"),
    }
    for slug, (name, email, institution) in people.items():
        async with session_maker() as session:
            form = registration_form(email=email, full_name=name, institution=institution, country="PE")
            moment = event.starts_at - timedelta(days=2) if slug == "gone" else None
            result = await RegistrationService(session=session, tokens=tokens).register(
                slug, schemas.validate(form), now=moment
            )
            assert result.registration is not None
    traces = {slug: set().union(*map(_trigrams, texts)) for slug, texts in people.items()}
    before = await _search_index_blocks(session_maker)
    assert all(
        any(trigram in before for trigram in traces[slug]) for slug in people
    )  # the check can see them

    async with session_maker() as session:  # retention
        assert await anonymise_expired(session, settings.retention_days) == 1
    async with session_maker() as session:  # erasure on request
        service = RegistrationService(session=session, tokens=tokens)
        live = await session.scalar(
            sa.select(Registration).where(Registration.full_name == people["live"][0])
        )
        assert live is not None
        await erase(service, live)

    after = await _search_index_blocks(session_maker)
    for slug in people:
        assert not [trigram for trigram in traces[slug] if trigram in after], slug

    # Nor in the file's freed space (the erased person's cancellation mail still holds the other's address).
    database = settings.database_url.removeprefix("sqlite+aiosqlite:///")
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # not busy
    stored = Path(database).read_bytes().lower()
    assert not [text for text in people["gone"] if text.lower().encode() in stored]
