"""The organisers' attendee list: search, filters, sort and pages, scopes, decisions and resending mail."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from conftest import SmtpServer, add_event, create_user, csrf_token, login
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from events_app.db.models import (
    AuditEntry,
    Event,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    Role,
    Sector,
)
from events_app.lib.outbox import OutboxWorker

STATUSES = [
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.PENDING_APPROVAL,
    RegistrationStatus.WAITLISTED,
    RegistrationStatus.CANCELLED,
    RegistrationStatus.CONFIRMED,
]
COUNTRIES = ["CO", "PE", "BR", "ES"]
SECTORS = [Sector.POLICE, Sector.JUDICIARY, Sector.CUSTOMS]
LANGUAGES = ["es", "pt_BR", "en", "fr"]
ROW_LINK = re.compile(r'<a href="/manage/registrations/([0-9a-f-]{36})">([^<]*)</a>')


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    full_name: str
    email: str
    country: str
    institution: str
    sector: Sector
    language: str
    status: RegistrationStatus
    created_at: datetime


def person(index: int, base: datetime, **overrides: Any) -> Person:
    values: dict[str, Any] = {
        "id": uuid7(),
        "full_name": f"Name {index:02d}",
        "email": f"person{index}@example.org",
        "country": COUNTRIES[index % len(COUNTRIES)],
        "institution": "Fiscalía General" if index % 3 == 0 else "Policía Nacional",
        "sector": SECTORS[index % len(SECTORS)],
        "language": LANGUAGES[index % len(LANGUAGES)],
        "status": STATUSES[index % len(STATUSES)],
        "created_at": base + timedelta(minutes=index),
    }
    values.update(overrides)
    return Person(**values)


def registration_row(event_id: uuid.UUID, someone: Person) -> dict[str, Any]:
    waitlisted = someone.status is RegistrationStatus.WAITLISTED
    return {
        "id": someone.id,
        "event_id": event_id,
        "full_name": someone.full_name,
        "email": someone.email,
        "email_normalized": someone.email.lower(),
        "country": someone.country,
        "institution": someone.institution,
        "position": "",
        "sector": someone.sector,
        "language": someone.language,
        "status": someone.status,
        "ticket_version": 1,
        "ticket_hash": uuid.uuid4().hex + uuid.uuid4().hex,
        "manage_token_version": 1,
        "manage_token_hash": uuid.uuid4().hex + uuid.uuid4().hex,
        "invite_sequence": 0,
        "privacy_notice_version": "2026-11",
        "consent_given_at": someone.created_at,
        "waitlisted_at": someone.created_at if waitlisted else None,
        "created_at": someone.created_at,
        "updated_at": someone.created_at,
    }


async def add_registrations(
    session_maker: async_sessionmaker[AsyncSession], event: Event, people: Sequence[Person]
) -> None:
    """Insert registrations directly (Core, in batches): fast enough for thousands of rows."""
    async with session_maker() as session:
        for start in range(0, len(people), 500):
            rows = [registration_row(event.id, someone) for someone in people[start : start + 500]]
            await session.execute(sa.insert(Registration), rows)
        await session.commit()


def listed(page_html: str) -> list[tuple[str, str]]:
    """(id, name) of every row of an attendee page, in order."""
    return [(ident, html.unescape(name)) for ident, name in ROW_LINK.findall(page_html)]


def link(page_html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page_html)
    return html.unescape(found.group(1)) if found else None


async def audit_actions(session_maker: async_sessionmaker[AsyncSession], action: str) -> list[AuditEntry]:
    async with session_maker() as session:
        statement = sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.created_at)
        return list((await session.execute(statement)).scalars())


async def status_of(session_maker: async_sessionmaker[AsyncSession], registration_id: uuid.UUID) -> str:
    async with session_maker() as session:
        registration = await session.get(Registration, registration_id)
        assert registration is not None
        return registration.status.value


BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_search_filters_sort_and_pages(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker)
    people = [person(index, BASE) for index in range(23)]
    await add_registrations(session_maker, event, people)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    url = f"/manage/events/{event.id}/attendees"

    async def names(query: dict[str, Any] | list[tuple[str, str]]) -> list[str]:
        response = await client.get(f"{url}?{urlencode(query, doseq=True)}")
        assert response.status_code == 200, response.text
        return [name for _, name in listed(response.text)]

    # Default: registration order, everyone, with the count.
    first = await client.get(url)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    assert "23 registrations match." in first.text
    country_filter = first.text.split('name="country"', 1)[1].split("</select>", 1)[0]
    codes = re.findall(r'<option value="([A-Z]{2})"', country_filter)
    assert sorted(codes) == sorted(COUNTRIES)  # every country present among the registrants
    assert [name for _, name in listed(first.text)] == [p.full_name for p in people]

    # Search: name, email or institution, case-insensitive; % and _ are literal characters.
    assert await names({"q": "FISCAL"}) == [p.full_name for p in people if p.institution.startswith("Fiscal")]
    assert await names({"q": "name 1"}) == [p.full_name for p in people if p.full_name.startswith("Name 1")]
    assert await names({"q": "PERSON7@"}) == ["Name 07"]
    assert await names({"q": "%"}) == []
    assert await names({"q": "_"}) == []

    # Filters, several values each.
    wanted = {RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED}
    expected = [p.full_name for p in people if p.status in wanted and p.country in ("CO", "PE")]
    query = [("status", "confirmed"), ("status", "waitlisted"), ("country", "co"), ("country", "PE")]
    assert await names(query) == expected
    assert expected  # the filter is not trivially empty
    assert await names({"sector": ["customs"], "language": ["fr", "es"]}) == [
        p.full_name for p in people if p.sector is Sector.CUSTOMS and p.language in ("fr", "es")
    ]

    # Sorts, with the id breaking ties.
    by_country = sorted(people, key=lambda p: (p.country, p.id), reverse=True)
    assert await names({"sort": "country", "order": "desc"}) == [p.full_name for p in by_country]
    by_status = sorted(people, key=lambda p: (p.status.value, p.id))
    assert await names({"sort": "status"}) == [p.full_name for p in by_status]

    # Keyset pages: forward through every page, then back again.
    expected_desc = sorted((p.full_name for p in people), reverse=True)
    pages: list[list[str]] = []
    next_url: str | None = f"{url}?sort=full_name&order=desc&limit=5"
    while next_url:
        response = await client.get(next_url)
        pages.append([name for _, name in listed(response.text)])
        assert "23 registrations match." in response.text
        next_url = link(response.text, "next")
        last_page = response.text
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [name for page in pages for name in page] == expected_desc
    back: list[list[str]] = []
    previous_url = link(last_page, "prev")
    while previous_url:
        response = await client.get(previous_url)
        back.append([name for _, name in listed(response.text)])
        previous_url = link(response.text, "prev")
    assert back == pages[-2::-1]


async def test_search_is_a_substring_match_ignoring_case_that_follows_edits(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """The search goes through a trigram index on each database; the answers are the plain rules'."""
    event = await add_event(session_maker)
    elsewhere = await add_event(session_maker, slug="elsewhere")
    names = ["María García Núñez", "JOÃO CONCEIÇÃO", 'Seán O"Brien', "Ana O'Neil", "Zoë Ōkubo"]
    people = [person(index, BASE, full_name=name) for index, name in enumerate(names)]
    await add_registrations(session_maker, event, people)
    await add_registrations(session_maker, elsewhere, [person(9, BASE, full_name="María García Otra")])
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    url = f"/manage/events/{event.id}/attendees"

    async def found(text: str) -> list[str]:
        response = await client.get(f"{url}?{urlencode({'q': text})}")
        assert response.status_code == 200, response.text
        return [name for _, name in listed(response.text)]

    assert await found("garcía") == ["María García Núñez"]  # other events' people are not listed
    assert await found("GARCÍA NÚ") == ["María García Núñez"]  # case ignored beyond ASCII
    assert await found("joão conceição") == ["JOÃO CONCEIÇÃO"]
    assert await found("rcía n") == ["María García Núñez"]  # inside words, across a space
    assert await found("garcia") == []  # accents count, as they always have
    assert await found('o"b') == ['Seán O"Brien']  # quotes are plain characters
    assert await found("o'n") == ["Ana O'Neil"]
    assert await found("ŌKU") == ["Zoë Ōkubo"]
    assert await found("zo") == ["Zoë Ōkubo"]  # shorter than a trigram: still found
    assert await found("'N") == ["Ana O'Neil"]
    assert await found("@example.") == names  # email
    assert await found("FISCALÍA GEN") == [p.full_name for p in people if p.institution.startswith("Fisc")]
    assert await found("%") == []

    # Edits, erasure and deletions reach the index at once.
    async with session_maker() as session:
        renamed = await session.get(Registration, people[0].id)
        assert renamed is not None
        renamed.full_name = "Marta Gómez"
        gone = await session.get(Registration, people[1].id)
        assert gone is not None
        await session.delete(gone)
        await session.commit()
    assert await found("garcía") == []
    assert await found("gómez") == ["Marta Gómez"]
    assert await found("conceição") == []
    async with session_maker() as session:
        await session.execute(sa.delete(Event).where(Event.id == elsewhere.id))
        await session.commit()
        if session.bind.dialect.name == "sqlite":
            await session.execute(
                sa.text(
                    "INSERT INTO registrations_search(registrations_search, rank) "
                    "VALUES ('integrity-check', 1)"
                )
            )


async def test_bad_filters_are_shown_inline_with_422(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    url = f"/manage/events/{event.id}/attendees"
    response = await client.get(f"{url}?status=bogus&sort=email&limit=0&cursor=xyz&q=Núñez&lang=es")
    assert response.status_code == 422
    for name in ("status", "sort", "limit", "cursor"):
        assert f'id="{name}-error"' in response.text
    assert 'id="sort" name="sort" aria-invalid="true" aria-describedby="sort-error"' in response.text
    assert 'value="Núñez"' in response.text  # what was typed is kept
    for path in (url, f"{url}.csv", f"{url}.xlsx"):
        assert (await client.get(f"{path}?country=XX")).status_code == 422


async def test_focal_point_sees_only_their_countries(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker, approval_required=True)
    people = [person(index, BASE, status=RegistrationStatus.PENDING_APPROVAL) for index in range(8)]
    await add_registrations(session_maker, event, people)
    await create_user(session_maker, "focal@example.org", Role.FOCAL_POINT, countries=["CO", "BR"])
    await login(client, "focal@example.org")
    url = f"/manage/events/{event.id}/attendees"
    mine = [p for p in people if p.country in ("CO", "BR")]
    others = [p for p in people if p.country not in ("CO", "BR")]

    page = await client.get(url)
    assert [name for _, name in listed(page.text)] == [p.full_name for p in mine]
    country_filter = page.text.split('name="country"', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="([A-Z]{2})"', country_filter) == ["BR", "CO"]  # theirs, present
    assert (await client.get(f"{url}?country=PE")).text.count("/manage/registrations/") == 0
    csv_text = (await client.get(f"{url}.csv")).content.decode("utf-8-sig")
    assert all(p.email in csv_text for p in mine)
    assert not any(p.email in csv_text for p in others)
    assert (await client.get(f"/manage/registrations/{mine[0].id}")).status_code == 200
    assert (await client.get(f"/manage/registrations/{others[0].id}")).status_code == 404

    # A bulk approval naming someone of another country approves only the focal point's own.
    token = await csrf_token(client, url)
    ids = [str(mine[0].id), str(others[0].id)]
    response = await client.post(f"{url}/approve", data={"_csrf_token": token, "registration_id": ids})
    assert response.status_code == 200
    assert "1 registration approved." in response.text
    assert await status_of(session_maker, mine[0].id) == "confirmed"
    assert await status_of(session_maker, others[0].id) == "pending_approval"
    direct = await client.post(f"/manage/registrations/{others[0].id}/approve", data={"_csrf_token": token})
    assert direct.status_code == 404
    assert await status_of(session_maker, others[0].id) == "pending_approval"


async def test_other_events_and_guessed_ids_are_404(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    mine = await add_event(session_maker, slug="mine")
    theirs = await add_event(session_maker, slug="theirs", approval_required=True)
    someone = person(1, BASE, status=RegistrationStatus.PENDING_APPROVAL)
    await add_registrations(session_maker, theirs, [someone])
    async with session_maker() as session:
        message = OutboxMessage(
            id=uuid7(),
            kind="registration_pending",
            recipient=someone.email,
            language="en",
            registration_id=someone.id,
            message_id=f"<{uuid7()}@test>",
            status=OutboxStatus.FAILED,
            next_attempt_at=BASE,
        )
        session.add(message)
        await session.commit()
    await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[mine])
    await create_user(session_maker, "door@example.org", Role.CHECKIN_STAFF, events=[mine, theirs])
    await login(client, "manager@example.org")
    token = await csrf_token(client, f"/manage/events/{mine.id}/attendees")

    for path in (
        f"/manage/events/{theirs.id}/attendees",
        f"/manage/events/{theirs.id}/attendees.csv",
        f"/manage/events/{theirs.id}/attendees.xlsx",
        f"/manage/events/{uuid7()}/attendees",
        f"/manage/registrations/{someone.id}",
        f"/manage/registrations/{uuid7()}",
    ):
        assert (await client.get(path)).status_code == 404, path
    for path in (
        f"/manage/registrations/{someone.id}/approve",
        f"/manage/registrations/{someone.id}/reject",
        f"/manage/outbox/{message.id}/resend",
        f"/manage/events/{theirs.id}/attendees/approve",
    ):
        response = await client.post(path, data={"_csrf_token": token, "registration_id": str(someone.id)})
        assert response.status_code == 404, path
    # Through the manager's own event, the other event's registration is skipped.
    await client.post(
        f"/manage/events/{mine.id}/attendees/approve",
        data={"_csrf_token": token, "registration_id": str(someone.id)},
    )
    assert await status_of(session_maker, someone.id) == "pending_approval"
    async with session_maker() as session:
        stored = await session.get(OutboxMessage, message.id)
        assert stored is not None
        assert stored.status is OutboxStatus.FAILED
    assert await audit_actions(session_maker, "attendees_exported") == []

    # Check-in staff see none of these pages, not even for their own events.
    await login(client, "door@example.org")
    assert (await client.get(f"/manage/events/{mine.id}/attendees")).status_code == 404
    assert (await client.get(f"/manage/registrations/{someone.id}")).status_code == 404


async def test_decisions_and_resend_from_the_registrant_page_are_audited(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event = await add_event(session_maker, approval_required=True, waitlist_enabled=True, capacity=1)
    people = [person(index, BASE, status=RegistrationStatus.PENDING_APPROVAL) for index in range(3)]
    await add_registrations(session_maker, event, people)
    await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[event])
    await login(client, "manager@example.org")
    first, second, third = people
    page_url = f"/manage/registrations/{first.id}"
    token = await csrf_token(client, page_url)

    page = await client.get(page_url)
    assert f'action="/manage/registrations/{first.id}/approve"' in page.text
    assert f'action="/manage/registrations/{first.id}/promote"' not in page.text
    approved = await client.post(f"{page_url}/approve", data={"_csrf_token": token})
    assert approved.status_code == 200
    assert "The registration was approved." in approved.text
    assert await status_of(session_maker, first.id) == "confirmed"

    # Approving again is refused with the reason, and leaves no audit entry.
    again = await client.post(f"{page_url}/approve", data={"_csrf_token": token})
    assert again.status_code == 409
    assert "its status is now “Confirmed”" in again.text

    # The event is full: the next approval puts the person on the waiting list; promoting adds a seat.
    await client.post(f"/manage/registrations/{second.id}/approve", data={"_csrf_token": token})
    assert await status_of(session_maker, second.id) == "waitlisted"
    second_page = await client.get(f"/manage/registrations/{second.id}")
    assert 'data-waitlist-position="1"' in second_page.text
    assert "its capacity grows by one" in second_page.text
    await client.post(f"/manage/registrations/{second.id}/promote", data={"_csrf_token": token})
    assert await status_of(session_maker, second.id) == "confirmed"
    rejected = await client.post(f"/manage/registrations/{third.id}/reject", data={"_csrf_token": token})
    assert "The registration was rejected." in rejected.text
    assert await status_of(session_maker, third.id) == "rejected"

    audit = {
        action: [entry.object_id for entry in await audit_actions(session_maker, action)]
        for action in ("registration_approved", "registration_promoted", "registration_rejected")
    }
    assert audit == {
        "registration_approved": [str(first.id), str(second.id)],
        "registration_promoted": [str(second.id)],
        "registration_rejected": [str(third.id)],
    }
    history = (await client.get(page_url)).text
    assert "manager@example.org" in history
    assert "Pending approval" in history

    # One email bounces for good; the page flags it and sending it again keeps its Message-ID.
    smtp_server.handler.reject[first.email] = "550 5.1.1 no such user"
    await worker.drain()
    async with session_maker() as session:
        [failed] = (
            await session.execute(sa.select(OutboxMessage).where(OutboxMessage.registration_id == first.id))
        ).scalars()
    assert failed.status is OutboxStatus.FAILED
    page = await client.get(page_url)
    assert f'id="mail-{failed.id}"' in page.text
    assert '<strong class="failed">Failed</strong>' in page.text
    assert "550" in page.text
    smtp_server.handler.reject.clear()
    resent = await client.post(f"/manage/outbox/{failed.id}/resend", data={"_csrf_token": token})
    assert resent.status_code == 200
    assert "The email is queued to be sent again." in resent.text
    async with session_maker() as session:
        queued = await session.get(OutboxMessage, failed.id)
        assert queued is not None
        assert (queued.status, queued.attempts) == (OutboxStatus.QUEUED, 0)
    [entry] = await audit_actions(session_maker, "mail_resent")
    assert entry.object_id == str(failed.id)
    assert entry.details["registration_id"] == str(first.id)
    sent_before = len(smtp_server.messages)
    await worker.drain()
    assert smtp_server.messages[sent_before:][0]["Message-ID"] == failed.message_id
    # A message that did not fail is not sent again.
    twice = await client.post(f"/manage/outbox/{failed.id}/resend", data={"_csrf_token": token})
    assert twice.status_code == 409
    assert len(await audit_actions(session_maker, "mail_resent")) == 1


async def test_bulk_approve_and_reject_keep_the_list_and_audit_each(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker, approval_required=True)
    people = [person(index, BASE, status=RegistrationStatus.PENDING_APPROVAL) for index in range(6)]
    people.append(person(6, BASE, status=RegistrationStatus.CANCELLED))
    await add_registrations(session_maker, event, people)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    url = f"/manage/events/{event.id}/attendees"
    token = await csrf_token(client, url)

    page = await client.get(f"{url}?country=CO&country=PE&sort=full_name")
    assert (
        'name="return_query" value="country=CO&amp;country=PE&amp;sort=full_name&amp;order=asc"' in page.text
    )
    chosen = [str(p.id) for p in people[:3]] + [str(people[6].id), "not-a-uuid"]
    response = await client.post(
        f"{url}/approve",
        data={"_csrf_token": token, "registration_id": chosen, "return_query": "country=CO&sort=full_name"},
    )
    assert response.status_code == 200
    assert str(response.url).startswith(f"http://testserver.local{url}?country=CO&sort=full_name")
    assert "3 registrations approved." in response.text
    assert "2 registrations were left as they were" in response.text
    assert [await status_of(session_maker, p.id) for p in people[:4]] == ["confirmed"] * 3 + [
        "pending_approval"
    ]
    rejected = await client.post(
        f"{url}/reject", data={"_csrf_token": token, "registration_id": [str(people[3].id)]}
    )
    assert "1 registration rejected." in rejected.text
    assert await status_of(session_maker, people[3].id) == "rejected"
    entries = await audit_actions(session_maker, "registration_approved")
    assert sorted(entry.object_id for entry in entries) == sorted(str(p.id) for p in people[:3])
    assert all(entry.details["bulk"] is True for entry in entries)
    assert len(await audit_actions(session_maker, "registration_rejected")) == 1
    # Promotion is one by one only.
    promote = await client.post(f"{url}/promote", data={"_csrf_token": token, "registration_id": chosen})
    assert promote.status_code == 404


async def test_a_bulk_action_without_a_selection_says_so(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker, approval_required=True)
    await add_registrations(
        session_maker, event, [person(0, BASE, status=RegistrationStatus.PENDING_APPROVAL)]
    )
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(
        client,
        "admin@example.org",
    )
    url = f"/manage/events/{event.id}/attendees"
    token = await csrf_token(client, url)
    response = await client.post(f"{url}/approve", data={"_csrf_token": token, "return_query": "sort=status"})
    assert response.status_code == 422
    assert 'id="registration_id-error"' in response.text
    assert 'aria-describedby="registration_id-error"' in response.text
    assert '<option value="status" selected>' in response.text
    assert await audit_actions(session_maker, "registration_approved") == []
