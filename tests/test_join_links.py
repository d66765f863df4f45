"""Personal join links: ``/j/<token>`` records the click and redirects; the meeting URL stays private."""

from __future__ import annotations

import sqlalchemy as sa
from conftest import SmtpServer, add_event, submit_registration
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import EventKind, JoinClick, Registration, RegistrationStatus
from events_app.lib.outbox import OutboxWorker
from events_app.lib.security import TokenPurpose, derive_token
from events_app.settings import Settings

JOIN_URL = "https://meet.example.org/j/8345512770?pwd=Secr3t"
ONLINE = {"kind": EventKind.ONLINE, "join_url": JOIN_URL, "venue_name": "", "venue_address": ""}


async def registration_for(session_maker: async_sessionmaker[AsyncSession], email: str) -> Registration:
    async with session_maker() as session:
        statement = sa.select(Registration).where(Registration.email_normalized == email)
        return (await session.execute(statement)).unique().scalar_one()


def join_token(settings: Settings, registration: Registration) -> str:
    return derive_token(settings.secret_key, TokenPurpose.JOIN, registration.id, 1)


def manage_token(settings: Settings, registration: Registration) -> str:
    return derive_token(
        settings.secret_key, TokenPurpose.MANAGE, registration.id, registration.manage_token_version
    )


async def clicks(session_maker: async_sessionmaker[AsyncSession]) -> list[JoinClick]:
    async with session_maker() as session:
        return list((await session.execute(sa.select(JoinClick))).scalars())


async def test_a_click_is_recorded_and_redirects_to_the_meeting(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    event = await add_event(session_maker, **ONLINE)
    await submit_registration(client, "launch", email="ana@example.org")
    registration = await registration_for(session_maker, "ana@example.org")
    assert registration.status is RegistrationStatus.CONFIRMED

    response = await client.get(f"/j/{join_token(settings, registration)}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == JOIN_URL
    assert response.headers["cache-control"] == "no-store"
    [click] = await clicks(session_maker)
    assert (click.registration_id, click.event_id) == (registration.id, event.id)

    await client.get(f"/j/{join_token(settings, registration)}", follow_redirects=False)
    assert len(await clicks(session_maker)) == 2  # every click counts


async def test_invalid_cancelled_or_in_person_links_are_404_without_redirect(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await add_event(session_maker, **ONLINE)
    await add_event(session_maker, slug="venue", kind=EventKind.IN_PERSON, join_url=JOIN_URL)
    await submit_registration(client, "launch", email="ana@example.org")
    await submit_registration(client, "venue", email="ben@example.org")
    online = await registration_for(session_maker, "ana@example.org")
    in_person = await registration_for(session_maker, "ben@example.org")
    real = join_token(settings, online)
    forged = ("A" if real[0] != "A" else "B") + real[1:]

    for token in (forged, "not-a-token", join_token(settings, in_person)):
        response = await client.get(f"/j/{token}", follow_redirects=False)
        assert response.status_code == 404, token
        assert "location" not in response.headers
        assert JOIN_URL not in response.text

    async with session_maker() as session:
        await session.execute(
            sa.update(Registration)
            .where(Registration.id == online.id)
            .values(status=RegistrationStatus.CANCELLED)
        )
        await session.commit()
    response = await client.get(f"/j/{real}", follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert await clicks(session_maker) == []


async def test_emails_invite_and_my_registration_carry_the_personal_link_only(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker, **ONLINE)
    await submit_registration(client, "launch", email="ana@example.org", language="en")
    registration = await registration_for(session_maker, "ana@example.org")
    personal = f"{settings.base_url}/j/{join_token(settings, registration)}"
    await worker.drain()

    [message] = smtp_server.messages
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        assert part is not None
        content = part.get_content()
        assert personal in content, kind
        assert JOIN_URL not in content.replace("&amp;", "&"), kind
    calendar = next(part for part in message.walk() if part.get_content_type() == "text/calendar")
    ics = calendar.get_content().replace("\r\n ", "").replace("\n ", "")
    description = next(line for line in ics.splitlines() if line.startswith("DESCRIPTION"))
    assert "/j/" in description
    assert personal in description
    assert "meet.example.org" not in ics

    page = await client.get(f"/my/{manage_token(settings, registration)}")
    assert page.status_code == 200
    assert f'href="{personal}"' in page.text
    assert "meet.example.org" not in page.text
    for path in ("/events/launch", "/api/events/launch", "/events/launch/calendar.ics"):
        assert "meet.example.org" not in (await client.get(path)).text, path
