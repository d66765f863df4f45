"""Invites that stay correct: changing or cancelling a published event updates every calendar."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import sqlalchemy as sa
from conftest import SmtpServer, add_event, create_user, login, submit_registration
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_manage_events import post_action, submit_edit

from events_app.db.models import (
    AuditEntry,
    Event,
    EventKind,
    EventStatus,
    Registration,
    RegistrationStatus,
    Role,
)
from events_app.lib.i18n import force_locale, gettext
from events_app.lib.outbox import OutboxWorker

MANAGER = "manager@example.org"
BOGOTA = ZoneInfo("America/Bogota")
#: (email, language) of the three registrants.
PEOPLE = [("ana@example.org", "en"), ("jose@example.org", "es"), ("maria@example.org", "pt_BR")]
#: Each registrant's title after the text-only edit of the English title (pt_BR falls back to English).
TITLES_AFTER_EDIT = {
    "en": "A new title",
    "es": "Creación de la red contra la trata de personas",
    "pt_BR": "A new title",
}
NOTES = {
    "time": "The date or time has changed.",
    "venue": "The venue has changed.",
    "join_url": "The link to join online has changed.",
}


@dataclass
class Invite:
    method: str
    uid: str
    sequence: int
    status: str
    starts_at: datetime
    location: str


def parse_invite(ics: bytes | str) -> Invite:
    calendar = icalendar.Calendar.from_ical(ics)
    [vevent] = calendar.walk("VEVENT")
    return Invite(
        method=str(calendar["METHOD"]),
        uid=str(vevent["UID"]),
        sequence=int(vevent["SEQUENCE"]),
        status=str(vevent["STATUS"]),
        starts_at=vevent.decoded("DTSTART").astimezone(UTC),
        location=str(vevent.get("LOCATION", "")),
    )


def calendar_parts(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.walk() if part.get_content_type() == "text/calendar"]  # type: ignore[misc]


def email_invite(message: EmailMessage) -> Invite:
    [part] = calendar_parts(message)
    invite = parse_invite(part.get_content())
    assert part.get_param("method") == invite.method
    return invite


def text_body(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def recipient(message: EmailMessage) -> str:
    return str(message["To"].addresses[0].addr_spec)


def in_language(language: str, message: str) -> str:
    with force_locale(language):
        return gettext(message)


async def deliver(worker: OutboxWorker, smtp_server: SmtpServer) -> dict[str, EmailMessage]:
    """Deliver what is due; exactly one new message per recipient, by recipient."""
    before = len(smtp_server.messages)
    await worker.drain()
    new = smtp_server.messages[before:]
    by_recipient = {recipient(message): message for message in new}
    assert len(by_recipient) == len(new), [recipient(message) for message in new]
    return by_recipient


async def registrations(session_maker: async_sessionmaker[AsyncSession]) -> dict[str, Registration]:
    async with session_maker() as session:
        rows = (await session.execute(sa.select(Registration))).unique().scalars()
        return {registration.email: registration for registration in rows}


async def audit(session_maker: async_sessionmaker[AsyncSession], action: str) -> list[AuditEntry]:
    async with session_maker() as session:
        statement = sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list((await session.scalars(statement)).all())


def local(instant: datetime) -> str:
    return instant.astimezone(BOGOTA).strftime("%Y-%m-%dT%H:%M")


def manage_path(message: EmailMessage) -> str:
    found = re.search(r"http://testserver\.local(/my/[A-Za-z0-9_-]{43})", text_body(message))
    assert found, text_body(message)
    return found.group(1)


async def published_event(session_maker: async_sessionmaker[AsyncSession], **fields: Any) -> Event:
    event = await add_event(
        session_maker, kind=EventKind.HYBRID, join_url="https://meet.example.org/first", **fields
    )
    await create_user(session_maker, MANAGER, Role.EVENT_MANAGER, events=[event])
    return event


async def test_every_change_reaches_each_calendar_with_a_growing_sequence(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event = await published_event(session_maker)
    for email, language in PEOPLE:
        response = await submit_registration(client, "launch", email=email, language=language)
        assert response.status_code == 200
    confirmations = await deliver(worker, smtp_server)
    assert set(confirmations) == {email for email, _ in PEOPLE}
    seen = {email: email_invite(message) for email, message in confirmations.items()}
    links = {email: manage_path(message) for email, message in confirmations.items()}
    stored = await registrations(session_maker)
    for email, invite in seen.items():
        assert invite.method == "REQUEST"
        assert invite.uid == f"registration-{stored[email].id}@events-app"
    await login(client, MANAGER)

    # 1. The start moves (two days later, an hour longer).
    new_start = (event.starts_at + timedelta(days=2)).replace(second=0)
    saved = await submit_edit(
        client, event.id, starts_at=local(new_start), ends_at=local(new_start + timedelta(hours=4))
    )
    assert saved.status_code == 200, saved.text
    updates = await deliver(worker, smtp_server)
    assert set(updates) == set(seen)
    for email, language in PEOPLE:
        message = updates[email]
        invite = email_invite(message)
        assert invite.method == "REQUEST"
        assert invite.uid == seen[email].uid
        assert invite.sequence == seen[email].sequence + 1
        assert invite.starts_at == new_start
        body = text_body(message)
        assert in_language(language, NOTES["time"]) in body
        assert in_language(language, "Hello %(name)s,") % {"name": "José Álvarez Gutiérrez"} in body
        seen[email] = invite
    spanish_note = in_language("es", NOTES["time"])
    if spanish_note != NOTES["time"]:  # once the catalog has it, the English note must be absent
        assert NOTES["time"] not in text_body(updates["jose@example.org"])
    assert in_language("es", "Hello %(name)s,") != "Hello %(name)s,"
    await assert_ics_matches(client, links, seen)

    # 2. The venue changes, 3. then the join link: one more update each time.
    for changes, note in [
        ({"venue_name": "Biblioteca Nacional", "venue_address": "Calle 24 # 5-60"}, "venue"),
        ({"join_url": "https://meet.example.org/second"}, "join_url"),
    ]:
        assert (await submit_edit(client, event.id, **changes)).status_code == 200
        updates = await deliver(worker, smtp_server)
        assert set(updates) == set(seen)
        for email, language in PEOPLE:
            invite = email_invite(updates[email])
            assert (invite.method, invite.uid) == ("REQUEST", seen[email].uid)
            assert invite.sequence == seen[email].sequence + 1
            assert invite.starts_at == new_start
            assert in_language(language, NOTES[note]) in text_body(updates[email])
            seen[email] = invite
        await assert_ics_matches(client, links, seen)
    assert "Biblioteca Nacional" in seen["ana@example.org"].location
    # The email carries the personal join link, which now leads to the new meeting address.
    join = re.search(r"http://testserver\.local(/j/\S+)", text_body(updates["ana@example.org"]))
    assert join, text_body(updates["ana@example.org"])
    redirect = await client.get(join.group(1), follow_redirects=False)
    assert redirect.headers["location"] == "https://meet.example.org/second"

    # 4. Only texts change: nobody is written to, no sequence moves.
    assert (await submit_edit(client, event.id, title_en="A new title")).status_code == 200
    assert await worker.drain() == 0
    await assert_ics_matches(client, links, seen)

    # 5. The event is cancelled: a CANCEL with the same UID and a higher SEQUENCE.
    assert (await client.get(f"/manage/events/{event.id}/cancel")).status_code == 200
    assert (await post_action(client, event.id, "cancel")).status_code == 200
    cancellations = await deliver(worker, smtp_server)
    assert set(cancellations) == set(seen)
    for email, language in PEOPLE:
        invite = email_invite(cancellations[email])
        assert (invite.method, invite.status, invite.uid) == ("CANCEL", "CANCELLED", seen[email].uid)
        assert invite.sequence == seen[email].sequence + 1
        title = TITLES_AFTER_EDIT[language]
        subject = in_language(language, "Event cancelled: %(title)s") % {"title": title}
        assert str(cancellations[email]["Subject"]) == subject
        seen[email] = invite
    await assert_ics_matches(client, links, seen)

    stored = await registrations(session_maker)
    assert {email: stored[email].invite_sequence for email in seen} == {
        email: invite.sequence for email, invite in seen.items()
    }
    async with session_maker() as session:
        current = await session.get(Event, event.id)
        assert current is not None
        assert current.invite_sequence == 4
        assert current.status is EventStatus.CANCELLED
    invites_updated = await audit(session_maker, "invites_updated")
    assert [entry.details["count"] for entry in invites_updated] == [3, 3, 3]
    assert [entry.details["changes"] for entry in invites_updated] == [["time"], ["venue"], ["join_url"]]
    assert len(await audit(session_maker, "event_updated")) == 4
    [cancelled] = await audit(session_maker, "event_cancelled")
    assert cancelled.details["notified"] == 3


async def assert_ics_matches(
    client: AsyncTestClient[Litestar], links: dict[str, str], seen: dict[str, Invite]
) -> None:
    """The personal .ics shows what the last email said: same UID, SEQUENCE, state and start."""
    for email, path in links.items():
        response = await client.get(f"{path}/invite.ics")
        assert response.status_code == 200
        current = parse_invite(response.content)
        expected = seen[email]
        assert (current.uid, current.sequence, current.method, current.status) == (
            expected.uid,
            expected.sequence,
            expected.method,
            expected.status,
        )
        assert current.starts_at == expected.starts_at


async def test_raising_the_capacity_promotes_the_waiting_list_in_order(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event = await published_event(session_maker, capacity=1, waitlist_enabled=True)
    for email in ("first@example.org", "second@example.org", "third@example.org"):
        assert (await submit_registration(client, "launch", email=email, language="en")).status_code == 200
    await deliver(worker, smtp_server)
    stored = await registrations(session_maker)
    assert stored["second@example.org"].status is RegistrationStatus.WAITLISTED

    await login(client, MANAGER)
    assert (await submit_edit(client, event.id, capacity="2")).status_code == 200
    stored = await registrations(session_maker)
    assert stored["second@example.org"].status is RegistrationStatus.CONFIRMED
    assert stored["third@example.org"].status is RegistrationStatus.WAITLISTED
    promoted = await deliver(worker, smtp_server)
    assert set(promoted) == {"second@example.org"}
    assert "Registration confirmed" in str(promoted["second@example.org"]["Subject"])
    assert email_invite(promoted["second@example.org"]).method == "REQUEST"
    async with session_maker() as session:
        current = await session.get(Event, event.id)
        assert current is not None
        assert (current.capacity, current.seats_taken, current.invite_sequence) == (2, 2, 0)

    # No limit at all: everybody left on the list gets a seat.
    assert (await submit_edit(client, event.id, capacity="")).status_code == 200
    stored = await registrations(session_maker)
    assert stored["third@example.org"].status is RegistrationStatus.CONFIRMED
    assert set(await deliver(worker, smtp_server)) == {"third@example.org"}
    [first, second] = await audit(session_maker, "event_updated")
    assert first.details["changed"] == ["capacity"]
    assert second.details["changed"] == ["capacity"]


async def test_only_invite_holders_get_updates_and_calendar_cancellations(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event = await published_event(session_maker, capacity=1, waitlist_enabled=True)
    await submit_registration(client, "launch", email="seated@example.org", language="en")
    await submit_registration(client, "launch", email="waiting@example.org", language="en")
    await login(client, MANAGER)
    assert (await submit_edit(client, event.id, approval_required="yes")).status_code == 200
    await submit_registration(client, "launch", email="pending@example.org", language="fr")
    first = await deliver(worker, smtp_server)
    assert set(first) == {"seated@example.org", "waiting@example.org", "pending@example.org"}
    before = email_invite(first["seated@example.org"])

    # A time change goes to the confirmed registrant only.
    later = (event.starts_at + timedelta(hours=1)).replace(second=0)
    saved = await submit_edit(
        client, event.id, starts_at=local(later), ends_at=local(later + timedelta(hours=3))
    )
    assert saved.status_code == 200
    updates = await deliver(worker, smtp_server)
    assert set(updates) == {"seated@example.org"}
    updated = email_invite(updates["seated@example.org"])
    assert (updated.sequence, updated.starts_at) == (before.sequence + 1, later)

    # Cancelling tells all three; only the confirmed one gets a calendar CANCEL.
    assert (await post_action(client, event.id, "cancel")).status_code == 200
    notices = await deliver(worker, smtp_server)
    assert set(notices) == set(first)
    cancel = email_invite(notices["seated@example.org"])
    assert (cancel.method, cancel.uid, cancel.sequence) == ("CANCEL", before.uid, updated.sequence + 1)
    for email in ("waiting@example.org", "pending@example.org"):
        assert calendar_parts(notices[email]) == []
        assert "ticket.png" not in [part.get_filename() for part in notices[email].walk()]
    # No French title: the base language's.
    subject = in_language("fr", "Event cancelled: %(title)s") % {"title": TITLES_AFTER_EDIT["es"]}
    assert str(notices["pending@example.org"]["Subject"]) != subject
    english_title = "Creation of the human trafficking network"
    subject = in_language("fr", "Event cancelled: %(title)s") % {"title": english_title}
    assert str(notices["pending@example.org"]["Subject"]) == subject
    stored = await registrations(session_maker)
    assert {email: (row.status, row.invite_sequence) for email, row in stored.items()} == {
        "seated@example.org": (RegistrationStatus.CONFIRMED, 2),
        "waiting@example.org": (RegistrationStatus.WAITLISTED, 2),
        "pending@example.org": (RegistrationStatus.PENDING_APPROVAL, 2),
    }
