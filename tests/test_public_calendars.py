"""Per-event .ics, the subscription feed and 'add to calendar' links name the right instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import icalendar
import sqlalchemy as sa
from conftest import add_event
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import Event, EventStatus

START = datetime(2027, 4, 1, 8, 0, tzinfo=UTC)  # 10:00 in Madrid, the week after the DST change


async def test_event_ics_has_no_attendee_and_the_right_instant(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(
        session_maker, timezone="Europe/Madrid", starts_at=START, ends_at=START + timedelta(hours=2)
    )
    response = await client.get("/events/launch/calendar.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    assert str(calendar["METHOD"]) == "PUBLISH"
    [vevent] = calendar.walk("VEVENT")
    assert vevent.decoded("DTSTART").astimezone(UTC) == START
    assert "ATTENDEE" not in vevent
    assert calendar.walk("VTIMEZONE")[0].walk("DAYLIGHT")


async def test_google_and_outlook_links_carry_the_same_instants(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(
        session_maker, timezone="Europe/Madrid", starts_at=START, ends_at=START + timedelta(hours=2)
    )
    page = (await client.get("/events/launch?lang=en")).text
    google = next(part for part in page.split('"') if part.startswith("https://calendar.google.com/"))
    outlook = next(part for part in page.split('"') if part.startswith("https://outlook.live.com/"))
    google_query = parse_qs(urlsplit(google.replace("&amp;", "&")).query)
    assert google_query["dates"] == ["20270401T080000Z/20270401T100000Z"]
    assert google_query["ctz"] == ["Europe/Madrid"]
    outlook_query = parse_qs(urlsplit(outlook.replace("&amp;", "&")).query)
    assert datetime.fromisoformat(outlook_query["startdt"][0]) == START
    assert datetime.fromisoformat(outlook_query["enddt"][0]) == START + timedelta(hours=2)
    assert "webcal://" in page


async def test_the_feed_lists_exactly_the_published_events_and_follows_edits(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker, slug="one", texts={"en": {"title": "One"}})
    await add_event(session_maker, slug="two", texts={"en": {"title": "Two"}}, timezone="America/Santiago")
    await add_event(session_maker, slug="draft", status=EventStatus.DRAFT, texts={"en": {"title": "Draft"}})

    first = icalendar.Calendar.from_ical((await client.get("/calendar.ics?lang=en")).content)
    assert sorted(str(event["SUMMARY"]) for event in first.walk("VEVENT")) == ["One", "Two"]
    assert {str(zone["TZID"]) for zone in first.walk("VTIMEZONE")} == {"America/Bogota", "America/Santiago"}

    async with session_maker() as session:
        event = (await session.execute(sa.select(Event).where(Event.slug == "one"))).scalar_one()
        event.texts = {"en": {"title": "One, moved"}}
        event.starts_at = event.starts_at + timedelta(days=1)
        event.ends_at = event.ends_at + timedelta(days=1)
        event.invite_sequence += 1
        await session.commit()
        moved_start = event.starts_at

    second = icalendar.Calendar.from_ical((await client.get("/calendar.ics?lang=en")).content)
    moved = next(event for event in second.walk("VEVENT") if str(event["SUMMARY"]) == "One, moved")
    assert moved.decoded("DTSTART").astimezone(UTC) == moved_start
    assert int(moved["SEQUENCE"]) == 1
