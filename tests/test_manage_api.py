"""The organiser API: Bearer tokens only, the same scopes as the pages, lists, exports and decisions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import sqlalchemy as sa
from conftest import add_event, api_token_for, create_user, login
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_attendees import add_registrations, person, status_of
from uuid_utils.compat import uuid7

from events_app.db.models import ApiToken, AuditEntry, Event, RegistrationStatus, Role
from events_app.domain.accounts.services import AccountService

BASE = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PENDING = RegistrationStatus.PENDING_APPROVAL


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_only_a_valid_bearer_token_opens_the_api(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker)
    await add_registrations(session_maker, event, [person(0, BASE)])
    admin = await create_user(session_maker, "admin@example.org", Role.ADMIN)
    token = await api_token_for(session_maker, admin, name="crm")
    url = f"/api/manage/events/{event.id}/registrations"

    response = await client.get(url, headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert [item["email"] for item in response.json()["items"]] == ["person0@example.org"]

    for headers in ({}, bearer("not-a-token"), {"Authorization": f"Basic {token}"}, bearer("")):
        refused = await client.get(url, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.json()["detail"]
        assert "items" not in refused.text

    # A browser session is not an API credential (the API has no CSRF protection).
    await login(client, "admin@example.org")
    assert (await client.get(url)).status_code == 401

    async with session_maker() as session:
        token_id = await session.scalar(sa.select(ApiToken.id).where(ApiToken.name == "crm"))
        assert token_id is not None
        await AccountService(session=session).revoke_api_token(token_id)
        await session.commit()
    assert (await client.get(url, headers=bearer(token))).status_code == 401


async def test_list_filters_and_cursor_pages(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker)
    people = [person(index, BASE) for index in range(12)]
    await add_registrations(session_maker, event, people)
    admin = await create_user(session_maker, "admin@example.org", Role.ADMIN)
    headers = bearer(await api_token_for(session_maker, admin))
    url = f"/api/manage/events/{event.id}/registrations"

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 5, "sort": "full_name", "order": "desc"}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(url, params=params, headers=headers)).json()
        assert body["total"] == 12
        seen += [item["full_name"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted((p.full_name for p in people), reverse=True)

    # In registration order (the default), newest first, through timestamps as cursors.
    ids: list[str] = []
    params = {"limit": 4, "order": "desc"}
    while True:
        body = (await client.get(url, params=params, headers=headers)).json()
        ids += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert ids == [str(p.id) for p in reversed(people)]

    confirmed = await client.get(f"{url}?status=confirmed&country=CO", headers=headers)
    expected = [p for p in people if p.status is RegistrationStatus.CONFIRMED and p.country == "CO"]
    items = confirmed.json()["items"]
    assert [item["id"] for item in items] == [str(p.id) for p in expected]
    assert items[0]["event_id"] == str(event.id)
    assert items[0]["status"] == "confirmed"
    assert datetime.fromisoformat(items[0]["registered_at"]) == expected[0].created_at

    invalid = await client.get(f"{url}?status=bogus&limit=9999", headers=headers)
    assert invalid.status_code == 422
    body = invalid.json()
    assert body["code"] == "invalid"
    assert {error["field"] for error in body["errors"]} == {"status", "limit"}
    assert all(error["message"] for error in body["errors"])


async def test_scope_outside_the_token_is_404(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    mine = await add_event(session_maker, slug="mine")
    theirs = await add_event(session_maker, slug="theirs", approval_required=True)
    ours = person(0, BASE, status=PENDING, country="CO")
    foreign = person(1, BASE, status=PENDING, country="PE")
    await add_registrations(session_maker, mine, [ours])
    await add_registrations(session_maker, theirs, [foreign])
    manager = await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[mine])
    focal = await create_user(session_maker, "focal@example.org", Role.FOCAL_POINT, countries=["CO"])
    manager_headers = bearer(await api_token_for(session_maker, manager))
    focal_headers = bearer(await api_token_for(session_maker, focal))

    for path in (
        f"/api/manage/events/{theirs.id}/registrations",
        f"/api/manage/events/{theirs.id}/registrations.csv",
        f"/api/manage/events/{uuid7()}/registrations",
    ):
        assert (await client.get(path, headers=manager_headers)).status_code == 404, path
    for decision in ("approve", "reject", "promote"):
        response = await client.post(
            f"/api/manage/registrations/{foreign.id}/{decision}", headers=manager_headers
        )
        assert response.status_code == 404
        assert response.json()["detail"]
    assert await status_of(session_maker, foreign.id) == "pending_approval"
    assert (
        await client.post(f"/api/manage/registrations/{uuid7()}/approve", headers=manager_headers)
    ).status_code == 404

    # A focal point sees every event, but only their countries' registrants.
    listed = await client.get(f"/api/manage/events/{theirs.id}/registrations", headers=focal_headers)
    assert listed.json() == {"items": [], "total": 0, "next_cursor": None}
    own = await client.get(f"/api/manage/events/{mine.id}/registrations", headers=focal_headers)
    assert [item["id"] for item in own.json()["items"]] == [str(ours.id)]
    refused = await client.post(f"/api/manage/registrations/{foreign.id}/approve", headers=focal_headers)
    assert refused.status_code == 404


async def test_decisions_answer_the_new_status_and_are_audited(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker, approval_required=True, waitlist_enabled=True, capacity=1)
    first, second, third = [person(index, BASE, status=PENDING) for index in range(3)]
    await add_registrations(session_maker, event, [first, second, third])
    manager = await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[event])
    headers = bearer(await api_token_for(session_maker, manager, name="crm"))

    async def decide(registration_id: object, decision: str) -> tuple[int, dict[str, object]]:
        response = await client.post(
            f"/api/manage/registrations/{registration_id}/{decision}", headers=headers
        )
        return response.status_code, response.json()

    assert await decide(first.id, "approve") == (
        200,
        {"id": str(first.id), "status": "confirmed", "waitlist_position": None},
    )
    assert await decide(second.id, "approve") == (
        200,
        {"id": str(second.id), "status": "waitlisted", "waitlist_position": 1},
    )
    status, body = await decide(first.id, "approve")
    assert status == 409
    assert body["code"] == "conflict"
    assert "Confirmed" in str(body["detail"])
    assert await decide(second.id, "promote") == (
        200,
        {"id": str(second.id), "status": "confirmed", "waitlist_position": None},
    )
    assert await decide(third.id, "reject") == (
        200,
        {"id": str(third.id), "status": "rejected", "waitlist_position": None},
    )
    assert (await decide(third.id, "promote"))[0] == 409

    async with session_maker() as session:
        stored = await session.get(Event, event.id)
        assert stored is not None
        assert (stored.capacity, stored.seats_taken) == (2, 2)  # promoting out of turn added a seat
        entries = (
            (await session.execute(sa.select(AuditEntry).where(AuditEntry.object_type == "registration")))
            .scalars()
            .all()
        )
    assert sorted(entry.action for entry in entries) == [
        "registration_approved",
        "registration_approved",
        "registration_promoted",
        "registration_rejected",
    ]
    assert {entry.actor_label for entry in entries} == {"manager@example.org (api-token:crm)"}


async def test_csv_export_through_the_api(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker)
    people = [person(index, BASE, full_name=name) for index, name in enumerate(["Núñez", "Ōkubo", "=1+1"])]
    await add_registrations(session_maker, event, people)
    admin = await create_user(session_maker, "admin@example.org", Role.ADMIN)
    headers = {**bearer(await api_token_for(session_maker, admin)), "Accept-Language": "es"}

    response = await client.get(
        f"/api/manage/events/{event.id}/registrations.csv?country=CO&country=PE", headers=headers
    )
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert rows[0][0] == "Nombre completo"
    assert [row[0] for row in rows[1:]] == ["Núñez", "Ōkubo"]
    async with session_maker() as session:
        entry = await session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "attendees_exported"))
    assert entry is not None
    assert entry.actor_label == "admin@example.org (api-token:test)"
    assert entry.details["filters"]["country"] == ["CO", "PE"]
    invalid = await client.get(
        f"/api/manage/events/{event.id}/registrations.csv?sector=pirates", headers=headers
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "sector"


async def test_the_organiser_api_is_in_the_openapi_document(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    paths = document["paths"]
    expected = {
        ("/api/manage/events/{event_id}/registrations", "get"),
        ("/api/manage/events/{event_id}/registrations.csv", "get"),
        ("/api/manage/registrations/{registration_id}/approve", "post"),
        ("/api/manage/registrations/{registration_id}/reject", "post"),
        ("/api/manage/registrations/{registration_id}/promote", "post"),
    }
    for path, method in expected:
        assert paths[path][method]["tags"] == ["organiser"], path
    parameters = {
        parameter["name"]
        for parameter in paths["/api/manage/events/{event_id}/registrations"]["get"]["parameters"]
    }
    assert {"q", "status", "country", "sector", "language", "sort", "order", "limit", "cursor"} <= parameters
    assert not any(path.startswith("/manage/") for path in paths)
