"""Acceptance: review before confirming, and a waiting list that promotes in order under concurrency."""

from __future__ import annotations

import asyncio
import re
import time
from email.message import EmailMessage

import httpx
import icalendar
import sqlalchemy as sa
from conftest import (
    CSRF_FIELD,
    SmtpServer,
    add_event,
    api_token_for,
    create_user,
    csrf_token,
    login,
    registration_form,
    submit_registration,
)
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_attendees import BASE, add_registrations, person
from test_registration_email import calendar_part, decode_qr, png_parts, text_body

from events_app.db.models import Event, OutboxMessage, Registration, RegistrationStatus, Role
from events_app.domain.registrations.services import waitlist_position
from events_app.lib.outbox import OutboxWorker
from events_app.lib.security import hash_token

MANAGE_LINK = re.compile(r"http://testserver\.local(/my/[A-Za-z0-9_-]{43})")


async def kinds_by_message_id(session_maker: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with session_maker() as session:
        rows = await session.execute(sa.select(OutboxMessage.message_id, OutboxMessage.kind))
        return {message_id: kind for message_id, kind in rows}


async def registration_by_email(session_maker: async_sessionmaker[AsyncSession], email: str) -> Registration:
    async with session_maker() as session:
        found = await session.scalar(sa.select(Registration).where(Registration.email == email))
        assert found is not None
        return found


def has_calendar(message: EmailMessage) -> bool:
    return any(part.get_content_type() == "text/calendar" for part in message.walk())


async def test_pending_review_then_approve_with_invite_or_reject_with_notice(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker, approval_required=True)
    for email in ("ana@example.org", "ben@example.org"):
        response = await submit_registration(client, "launch", email=email, language="en")
        assert str(response.url).endswith("/events/launch/registered")
    assert await worker.drain() == 2
    kinds = await kinds_by_message_id(session_maker)
    assert [kinds[message["Message-ID"]] for message in smtp_server.messages] == ["registration_pending"] * 2
    assert not any(has_calendar(message) or png_parts(message) for message in smtp_server.messages)
    ana = await registration_by_email(session_maker, "ana@example.org")
    ben = await registration_by_email(session_maker, "ben@example.org")
    assert ana.status is ben.status is RegistrationStatus.PENDING_APPROVAL

    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    token = await csrf_token(client, f"/manage/registrations/{ana.id}")
    await client.post(f"/manage/registrations/{ana.id}/approve", data={"_csrf_token": token})
    await client.post(f"/manage/registrations/{ben.id}/reject", data={"_csrf_token": token})
    assert await worker.drain() == 2
    kinds = await kinds_by_message_id(session_maker)
    invite, notice = smtp_server.messages[2:]
    assert (kinds[invite["Message-ID"]], kinds[notice["Message-ID"]]) == (
        "registration_confirmed",
        "registration_rejected",
    )
    assert invite["To"].addresses[0].addr_spec == "ana@example.org"
    part = calendar_part(invite)
    assert part.get_param("method") == "REQUEST"
    [vevent] = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    assert str(vevent["UID"]) == f"registration-{ana.id}@events-app"
    assert hash_token(decode_qr(png_parts(invite)[0].get_content())) == ana.ticket_hash
    assert notice["To"].addresses[0].addr_spec == "ben@example.org"
    assert not png_parts(notice)
    assert "method=request" not in str(notice).lower()


async def test_bulk_approval_of_200_delivers_200_invites(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event = await add_event(session_maker, approval_required=True)
    people = [person(index, BASE, status=RegistrationStatus.PENDING_APPROVAL) for index in range(200)]
    await add_registrations(session_maker, event, people)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    url = f"/manage/events/{event.id}/attendees"
    token = await csrf_token(client, url)

    started = time.perf_counter()
    response = await client.post(
        f"{url}/approve", data={"_csrf_token": token, "registration_id": [str(p.id) for p in people]}
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert "200 registrations approved." in response.text
    assert elapsed < 10, f"bulk approval took {elapsed:.1f} s"
    async with session_maker() as session:
        stored = await session.get(Event, event.id)
        assert stored is not None
        assert stored.seats_taken == 200

    assert await worker.drain() == 200
    assert len(smtp_server.messages) == 200
    assert {message["To"].addresses[0].addr_spec for message in smtp_server.messages} == {
        p.email for p in people
    }
    assert all(calendar_part(message).get_param("method") == "REQUEST" for message in smtp_server.messages)


async def test_waiting_list_promotes_in_order_when_five_cancel_at_once(
    live_client: httpx.AsyncClient,
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event = await add_event(session_maker, waitlist_enabled=True, capacity=10)
    emails = [f"person{index:02d}@example.org" for index in range(30)]
    for email in emails:
        body = {**registration_form(email=email, language="en"), "consent": True}
        response = await live_client.post("/api/events/launch/registrations", json=body)
        assert response.status_code == 201

    async with session_maker() as session:
        registrations = {
            registration.email: registration
            for registration in (await session.execute(sa.select(Registration))).scalars()
        }
        positions = {email: await waitlist_position(session, registrations[email]) for email in emails}
    assert [registrations[email].status for email in emails] == (
        [RegistrationStatus.CONFIRMED] * 10 + [RegistrationStatus.WAITLISTED] * 20
    )
    assert [positions[email] for email in emails[10:]] == list(range(1, 21))

    assert await worker.drain() == 30
    texts = {message["To"].addresses[0].addr_spec: text_body(message) for message in smtp_server.messages}
    for index, email in enumerate(emails[10:], start=1):
        assert f"in position {index}." in texts[email]
    links = {email: MANAGE_LINK.search(texts[email]) for email in emails[:5]}

    # Five confirmed people cancel at the same moment, each with their own form token.
    forms = {}
    for found in links.values():
        assert found
        page = await live_client.get(f"{found.group(1)}/cancel")
        token = CSRF_FIELD.search(page.text)
        assert token
        forms[found.group(1)] = token.group(1)
    barrier = asyncio.Barrier(len(forms))

    async def cancel(path: str, token: str) -> int:
        await barrier.wait()
        response = await live_client.post(f"{path}/cancel", data={"_csrf_token": token})
        return response.status_code

    statuses = await asyncio.gather(*(cancel(path, token) for path, token in forms.items()))
    assert statuses == [302] * len(forms), statuses

    async with session_maker() as session:
        stored = await session.get(Event, event.id, populate_existing=True)
        assert stored is not None
        by_email = {
            registration.email: registration
            for registration in (await session.execute(sa.select(Registration))).scalars()
        }
        waiting = [email for email in emails if by_email[email].status is RegistrationStatus.WAITLISTED]
        new_positions = [await waitlist_position(session, by_email[email]) for email in waiting]
    statuses_now = [by_email[email].status for email in emails]
    assert statuses_now[:5] == [RegistrationStatus.CANCELLED] * 5
    assert statuses_now[5:15] == [RegistrationStatus.CONFIRMED] * 10  # 5 kept + the next 5, in order
    assert statuses_now.count(RegistrationStatus.CONFIRMED) == 10
    assert stored.seats_taken == 10
    assert waiting == emails[15:]
    assert new_positions == list(range(1, 16))

    # Promoting someone out of turn adds a seat instead of overbooking.
    admin = await create_user(session_maker, "admin@example.org", Role.ADMIN)
    headers = {"Authorization": f"Bearer {await api_token_for(session_maker, admin)}"}
    chosen = by_email[emails[24]]
    response = await live_client.post(f"/api/manage/registrations/{chosen.id}/promote", headers=headers)
    assert response.json()["status"] == "confirmed"
    async with session_maker() as session:
        stored = await session.get(Event, event.id, populate_existing=True)
        assert stored is not None
        confirmed = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Registration)
            .where(Registration.status == RegistrationStatus.CONFIRMED)
        )
    assert (stored.capacity, stored.seats_taken, confirmed) == (11, 11, 11)
