"""Public pages and the public API: times in the right zones, join links only for registrants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import SmtpServer, add_event, csrf_token, registration_form, submit_registration
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import EventKind, EventStatus
from events_app.lib.outbox import OutboxWorker

JOIN_URL = "https://meet.example.org/j/secret-room-123"
START = datetime(2027, 4, 14, 15, 0, tzinfo=UTC)  # 10:00 in Bogotá, 17:00 in Madrid


async def test_event_page_shows_the_event_zone_and_the_viewers_zone(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker, starts_at=START, ends_at=START + timedelta(hours=2))

    page = await client.get("/events/launch?lang=en")
    assert page.status_code == 200
    assert "10:00" in page.text
    assert "Colombia" in page.text
    assert "UTC-5" in page.text
    assert "Your time:" not in page.text.split("data-label")[0]

    client.cookies.set("tz", "Europe/Madrid")
    page = await client.get("/events/launch")
    assert "Your time: Wednesday, April 14, 2027, 5:00" in page.text.replace("\u202f", " ")
    assert "UTC+2" in page.text

    client.cookies.set("tz", "America/Lima")  # same offset as Bogotá: nothing to add
    page = await client.get("/events/launch")
    assert "Your time: " not in page.text.split("data-label")[0]


async def test_lists_split_upcoming_and_past_and_hide_drafts(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    now = datetime.now(UTC)
    await add_event(session_maker, slug="coming", texts={"en": {"title": "Coming soon"}})
    await add_event(
        session_maker,
        slug="gone",
        texts={"en": {"title": "Long gone"}},
        starts_at=now - timedelta(days=10),
        ends_at=now - timedelta(days=10, hours=-2),
    )
    await add_event(
        session_maker, slug="draft", status=EventStatus.DRAFT, texts={"en": {"title": "Secret draft"}}
    )

    home = (await client.get("/?lang=en")).text
    assert home.index("Coming soon") < home.index("Past events") < home.index("Long gone")
    assert "Secret draft" not in home
    assert (await client.get("/events/draft")).status_code == 404
    assert (await client.get("/api/events/draft")).status_code == 404
    assert [event["slug"] for event in (await client.get("/api/events")).json()] == ["coming"]


async def test_join_link_reaches_only_confirmed_registrants(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker, kind=EventKind.ONLINE, join_url=JOIN_URL, venue_name="", venue_address="")

    for path in ("/", "/events/launch", "/events/launch/register", "/api/events", "/api/events/launch"):
        response = await client.get(path)
        assert JOIN_URL not in response.text, path

    await submit_registration(client, "launch", language="en")
    await worker.drain()
    [message] = smtp_server.messages
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    # The email carries the person's own join link (recorded on click), never the meeting URL itself.
    assert "http://testserver.local/j/" in body.get_content()
    assert JOIN_URL not in body.get_content()
    calendar = next(part for part in message.walk() if part.get_content_type() == "text/calendar")
    ics = calendar.get_content()
    assert "LOCATION:Online" in ics
    assert "/my/" in ics  # the DESCRIPTION links to "my registration"


async def test_a_full_event_says_so(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker, capacity=1)
    page = await client.get("/events/launch?lang=en")
    assert "1 seat left." in page.text
    token = await csrf_token(client, "/events/launch/register")
    await submit_registration(client, "launch", email="first@example.org")

    page = await client.get("/events/launch?lang=en")
    assert "This event is full" in page.text
    assert 'href="/events/launch/register"' not in page.text
    form = {"_csrf_token": token, **registration_form(email="second@example.org", language="en")}
    late = await client.post("/events/launch/register", data=form)
    assert late.status_code == 409
    assert "full" in late.text


async def test_openapi_documents_the_public_api(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    assert "/api/events" in paths
    assert "/api/events/{slug}" in paths
    register = paths["/api/events/{slug}/registrations"]["post"]
    assert {"201", "409", "422"} <= set(register["responses"])
    assert not any(path.startswith("/my/") for path in paths)


async def test_openapi_documents_the_error_bodies_the_api_sends(client: AsyncTestClient[Litestar]) -> None:
    """Found by schemathesis: an unknown slug's 404 was undocumented, and every 400 was documented with
    Litestar's default body while the app answers ``{"detail", "code", "errors"}`` (and 422 for bad
    path or query parameters)."""
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert "404" in paths["/api/events/{slug}"]["get"]["responses"]
    assert "404" in paths["/api/events/{slug}/registrations"]["post"]["responses"]
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status in {"400", "422"} & set(responses):
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ApiError"}, (method, path, status)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in responses, (method, path)
