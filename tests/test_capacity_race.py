"""Capacity holds under concurrent registrations, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa
from conftest import add_event, registration_form
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import Event, OutboxMessage, Registration, RegistrationChange, RegistrationStatus

REQUESTS = 100
SEATS = 20


async def register_all_at_once(live_client: httpx.AsyncClient) -> list[int]:
    """REQUESTS different people post the registration API at the same moment; their status codes."""
    barrier = asyncio.Barrier(REQUESTS)

    async def register(index: int) -> int:
        body = {**registration_form(email=f"person{index}@example.org"), "consent": True}
        await barrier.wait()
        response = await live_client.post("/api/events/launch/registrations", json=body)
        return response.status_code

    return list(await asyncio.gather(*(register(index) for index in range(REQUESTS))))


async def test_100_registrations_for_20_seats_confirm_exactly_20(
    live_client: httpx.AsyncClient, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker, capacity=SEATS)
    statuses = await register_all_at_once(live_client)

    assert statuses.count(201) == SEATS
    assert statuses.count(409) == REQUESTS - SEATS
    async with session_maker() as session:
        confirmed = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Registration)
            .where(Registration.status == RegistrationStatus.CONFIRMED)
        )
        everyone = await session.scalar(sa.select(sa.func.count()).select_from(Registration))
        seats_taken = await session.scalar(sa.select(Event.seats_taken))
        mails = await session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    assert confirmed == SEATS
    assert everyone == SEATS
    assert seats_taken == SEATS
    assert mails == SEATS


async def test_the_same_email_twice_at_once_makes_one_registration(
    live_client: httpx.AsyncClient, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker, capacity=SEATS)
    barrier = asyncio.Barrier(10)

    async def register() -> int:
        body = {**registration_form(email="Same.Person@Example.org"), "consent": True}
        await barrier.wait()
        response = await live_client.post("/api/events/launch/registrations", json=body)
        return response.status_code

    statuses = await asyncio.gather(*(register() for _ in range(10)))

    assert statuses == [201] * 10  # identical answers: nothing reveals the repeat
    async with session_maker() as session:
        registrations = await session.scalar(sa.select(sa.func.count()).select_from(Registration))
        seats_taken = await session.scalar(sa.select(Event.seats_taken))
        kinds = list((await session.execute(sa.select(OutboxMessage.kind))).scalars())
    assert registrations == 1
    assert seats_taken == 1
    assert sorted(kinds) == ["registration_already_registered"] * 9 + ["registration_confirmed"]


async def test_a_rush_with_a_waiting_list_confirms_the_seats_and_waitlists_the_rest_with_their_emails(
    live_client: httpx.AsyncClient, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """Seat or waiting list, registration, first change and email are decided together (one statement
    on PostgreSQL): each person's status, change and email agree, and the seats are exact."""
    await add_event(session_maker, capacity=SEATS, waitlist_enabled=True)
    statuses = await register_all_at_once(live_client)

    assert statuses == [201] * REQUESTS
    async with session_maker() as session:
        people = (
            await session.execute(sa.select(Registration.id, Registration.status, Registration.waitlisted_at))
        ).all()
        change_rows = sa.select(RegistrationChange.registration_id, RegistrationChange.to_status)
        changes = dict((await session.execute(change_rows)).tuples().all())
        mail_rows = sa.select(OutboxMessage.registration_id, OutboxMessage.kind)
        mails = dict((await session.execute(mail_rows)).tuples().all())
        seats_taken = await session.scalar(sa.select(Event.seats_taken))
    confirmed = [p for p in people if p.status is RegistrationStatus.CONFIRMED]
    waitlisted = [p for p in people if p.status is RegistrationStatus.WAITLISTED]
    assert (len(confirmed), len(waitlisted), seats_taken) == (SEATS, REQUESTS - SEATS, SEATS)
    assert all(p.waitlisted_at is None for p in confirmed)
    assert all(p.waitlisted_at is not None for p in waitlisted)
    assert len(changes) == len(mails) == REQUESTS
    for person in people:
        assert changes[person.id] is person.status
        expected = "registration_confirmed" if person in confirmed else "registration_waitlisted"
        assert mails[person.id] == expected
