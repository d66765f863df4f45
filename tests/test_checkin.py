"""Door check-in: wrong codes refused, each status answered, races, nonces, undo, scopes, new tickets."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import sqlalchemy as sa
import zxingcpp
from conftest import SmtpServer, add_event, api_token_for, create_user, csrf_token, login, registration_form
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import (
    AuditEntry,
    CheckIn,
    Event,
    OutboxMessage,
    RateLimitBucket,
    Registration,
    RegistrationStatus,
    Role,
    ScanAttempt,
    User,
)
from events_app.domain.checkin import services
from events_app.domain.checkin.schemas import ScanResult
from events_app.domain.registrations.schemas import validate
from events_app.domain.registrations.services import RegistrationService, TokenSettings
from events_app.lib.outbox import OutboxWorker
from events_app.lib.security import TokenPurpose, derive_token
from events_app.settings import Settings

ALPHABET = string.ascii_letters + string.digits + "-_"
PEOPLE = ("ana", "bruno", "carla", "dario", "eva", "fabio")


@dataclass
class World:
    """Event "launch" (approval, two seats, waiting list) with one person in each status; "other" too."""

    settings: Settings
    event: Event
    other: Event
    registrations: dict[str, Registration] = field(default_factory=dict)

    def code(self, who: str, version: int | None = None) -> str:
        registration = self.registrations[who]
        return derive_token(
            self.settings.secret_key,
            TokenPurpose.TICKET,
            registration.id,
            version or registration.ticket_version,
        )


async def _register(service: RegistrationService, slug: str, who: str) -> Registration:
    form = registration_form(full_name=f"{who.capitalize()} Tester", email=f"{who}@example.org")
    result = await service.register(slug, validate(form))
    assert result.registration is not None
    return result.registration


async def build_world(session_maker: async_sessionmaker[AsyncSession], settings: Settings) -> World:
    event = await add_event(session_maker, approval_required=True, capacity=2, waitlist_enabled=True)
    other = await add_event(session_maker, slug="other")
    world = World(settings=settings, event=event, other=other)
    async with session_maker() as session:
        service = RegistrationService(
            session=session, tokens=TokenSettings(settings.secret_key, "test.local")
        )
        for who in PEOPLE:
            world.registrations[who] = await _register(service, "launch", who)
        for who in ("ana", "bruno", "carla"):  # the third finds the event full: waiting list
            await service.approve(world.registrations[who], actor="test")
        await service.reject(world.registrations["eva"], actor="test")
        await service.cancel(world.registrations["fabio"])
        world.registrations["gil"] = await _register(service, "other", "gil")
    expected = {
        "ana": RegistrationStatus.CONFIRMED,
        "bruno": RegistrationStatus.CONFIRMED,
        "carla": RegistrationStatus.WAITLISTED,
        "dario": RegistrationStatus.PENDING_APPROVAL,
        "eva": RegistrationStatus.REJECTED,
        "fabio": RegistrationStatus.CANCELLED,
        "gil": RegistrationStatus.CONFIRMED,
    }
    assert {who: reg.status for who, reg in world.registrations.items()} == expected
    return world


async def staff_token(
    session_maker: async_sessionmaker[AsyncSession], events: list[Event], role: Role = Role.CHECKIN_STAFF
) -> tuple[User, str]:
    user = await create_user(
        session_maker, f"door-{uuid.uuid4().hex[:8]}@programme.example.org", role, events
    )
    return user, await api_token_for(session_maker, user)


def scan_body(world: World, code: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(world.event.id),
        "nonce": str(uuid.uuid4()),
        "device": "Entrance A",
    }
    if code is not None:
        body["code"] = code
    body.update(extra)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def count(session_maker: async_sessionmaker[AsyncSession], model: Any, *where: Any) -> int:
    async with session_maker() as session:
        value = await session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
        return int(value or 0)


# --- wrong codes ----------------------------------------------------------------------------------------


def wrong_codes(world: World, rng: random.Random) -> list[str]:
    """10,000 codes that must all be refused: random, mutated, truncated, other keys, other purposes."""
    valid = [world.code(who) for who in ("ana", "bruno")]
    codes: list[str] = ["".join(rng.choice(ALPHABET) for _ in range(43)) for _ in range(2500)]
    for index in range(2500):  # one character changed
        code = list(valid[index % 2])
        position = rng.randrange(43)
        code[position] = rng.choice(ALPHABET.replace(code[position], ""))
        codes.append("".join(code))
    for index in range(2000):  # truncated, extended, padded, blank, garbage
        code = valid[index % 2]
        codes.append(
            rng.choice(
                [
                    code[: rng.randrange(43)],
                    code + rng.choice(ALPHABET),
                    code + "=",
                    " " + code,
                    code.upper() if code.upper() != code else code.lower(),
                    "".join(rng.choice(string.printable) for _ in range(rng.randrange(1, 90))),
                ]
            )
        )
    registrations = list(world.registrations.values())
    for index in range(2000):  # derived with another secret key
        registration = registrations[index % len(registrations)]
        codes.append(derive_token(f"another-secret-{index}", TokenPurpose.TICKET, registration.id, 1))
    for index in range(1000):  # our key, but a manage link, a future version or a made-up id
        registration = registrations[index % len(registrations)]
        codes.append(
            rng.choice(
                [
                    derive_token(world.settings.secret_key, TokenPurpose.MANAGE, registration.id, 1),
                    derive_token(world.settings.secret_key, TokenPurpose.TICKET, registration.id, 2 + index),
                    derive_token(world.settings.secret_key, TokenPurpose.TICKET, uuid.uuid4(), 1),
                ]
            )
        )
    assert len(codes) == 10_000
    assert not set(codes) & set(valid)
    return codes


async def test_ten_thousand_wrong_codes_are_refused(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await build_world(session_maker, settings)
    codes = wrong_codes(world, random.Random(20270414))
    async with session_maker() as session:
        for code in codes:
            verdict = await services.lookup(session, world.event.id, code=code)
            assert verdict.result is ScanResult.INVALID, code
        # The real ones are found, and a ticket of the other event says so.
        assert (
            await services.lookup(session, world.event.id, code=world.code("ana"))
        ).result is ScanResult.OK
        other = await services.lookup(session, world.event.id, code=world.code("gil"))
        assert other.result is ScanResult.OTHER_EVENT
    _, token = await staff_token(session_maker, [world.event])
    sample = codes[::500]
    for code in sample:
        response = await client.post("/api/checkin", json=scan_body(world, code), headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json()["result"] == "invalid"
        assert response.json()["name"] == ""
    response = await client.post(
        "/api/checkin", json=scan_body(world, world.code("gil")), headers=bearer(token)
    )
    assert response.json()["result"] == "other_event"
    assert response.json()["name"] == "", "a ticket of another event reveals nobody"
    assert await count(session_maker, ScanAttempt, ScanAttempt.result == "invalid") == len(sample)
    assert await count(session_maker, CheckIn) == 0


# --- each status ----------------------------------------------------------------------------------------


async def test_every_status_gets_its_answer_and_every_attempt_is_recorded(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await build_world(session_maker, settings)
    staff, token = await staff_token(session_maker, [world.event])
    expected = {
        "ana": "ok",
        "carla": "waitlisted",
        "dario": "not_approved",
        "eva": "cancelled",
        "fabio": "cancelled",
        "gil": "other_event",
    }
    answers = {}
    for who, result in expected.items():
        response = await client.post(
            "/api/checkin",
            json=scan_body(world, world.code(who), device=f"Phone {who}"),
            headers=bearer(token),
        )
        assert response.status_code == 200, response.text
        answers[who] = response.json()
        assert answers[who]["result"] == result, (who, answers[who])
        assert answers[who]["message"]
    assert answers["ana"]["name"] == "Ana Tester"
    assert answers["ana"]["institution"] == "Policía Nacional"
    assert answers["ana"]["country"] == "CO"
    assert answers["ana"]["device"] == "Phone ana"
    assert answers["fabio"]["name"] == "Fabio Tester"
    assert answers["eva"]["message"] != answers["fabio"]["message"], "rejected and cancelled read differently"

    again = await client.post(
        "/api/checkin", json=scan_body(world, world.code("ana"), device="Phone 2"), headers=bearer(token)
    )
    assert again.json()["result"] == "already_checked_in"
    assert again.json()["device"] == "Phone ana"
    assert again.json()["checked_in_at"] == answers["ana"]["checked_in_at"]
    assert "Phone ana" in again.json()["message"]

    async with session_maker() as session:
        attempts = (await session.execute(sa.select(ScanAttempt).order_by(ScanAttempt.id))).scalars().all()
    assert [attempt.result for attempt in attempts] == [*expected.values(), "already_checked_in"]
    assert all(attempt.staff_user_id == staff.id for attempt in attempts)
    assert attempts[0].device == "Phone ana"
    assert attempts[0].registration_id == world.registrations["ana"].id
    assert attempts[0].answer == answers["ana"]
    assert await count(session_maker, CheckIn) == 1


async def test_scan_requests_are_checked(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await build_world(session_maker, settings)
    _, token = await staff_token(session_maker, [world.event])
    # The device's own time is kept (offline scans are sent later); one in the future is not believed.
    earlier = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=42)
    body = scan_body(world, world.code("ana"), scanned_at=earlier.isoformat())
    assert (await client.post("/api/checkin", json=body, headers=bearer(token))).json()["result"] == "ok"
    future = datetime.now(UTC) + timedelta(days=2)
    body = scan_body(world, world.code("bruno"), scanned_at=future.isoformat())
    assert (await client.post("/api/checkin", json=body, headers=bearer(token))).json()["result"] == "ok"
    async with session_maker() as session:
        rows = {row.registration_id: row for row in (await session.execute(sa.select(CheckIn))).scalars()}
    assert rows[world.registrations["ana"].id].scanned_at == earlier
    assert rows[world.registrations["bruno"].id].scanned_at < datetime.now(UTC) + timedelta(minutes=1)

    cases = [
        (scan_body(world, world.code("ana"), registration_id=str(world.registrations["ana"].id)), "code"),
        (scan_body(world), "code"),
        (scan_body(world, world.code("ana"), nonce="short"), "nonce"),
        (scan_body(world, world.code("ana"), device="  "), "device"),
        (scan_body(world, world.code("ana"), device="door\r\nX-Injected: 1"), "device"),
        ({"event_id": str(world.event.id), "device": "A", "code": "x"}, "nonce"),
        (scan_body(world, world.code("ana"), event_id="not-a-uuid"), "event_id"),
    ]
    for body, wrong in cases:
        response = await client.post("/api/checkin", json=body, headers=bearer(token))
        assert response.status_code == 422, (body, response.text)
        assert wrong in {error["field"] for error in response.json()["errors"]}, response.json()

    # A nonce used at one event cannot be replayed at another.
    nonce = str(uuid.uuid4())
    first = await client.post(
        "/api/checkin", json=scan_body(world, world.code("carla"), nonce=nonce), headers=bearer(token)
    )
    assert first.json()["result"] == "waitlisted"
    _, both = await staff_token(session_maker, [world.event, world.other])
    body = scan_body(world, world.code("gil"), nonce=nonce, event_id=str(world.other.id))
    reused = await client.post("/api/checkin", json=body, headers=bearer(both))
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["field"] == "nonce"

    # Beyond the rate limit: 429, and nothing checked in.
    async with session_maker() as session:
        await session.execute(
            sa.update(RateLimitBucket).where(RateLimitBucket.key.like("checkin:device:%")).values(hits=10_000)
        )
        await session.commit()
    attempts = await count(session_maker, ScanAttempt)
    body = scan_body(world, world.code("gil"), event_id=str(world.other.id))
    response = await client.post("/api/checkin", json=body, headers=bearer(both))
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1
    assert await count(session_maker, CheckIn) == 2
    # Only the hits are kept: the refused scan is no attempt, and each of its counters grew by one.
    assert await count(session_maker, ScanAttempt) == attempts
    async with session_maker() as session:
        hits = dict((await session.execute(sa.select(RateLimitBucket.key, RateLimitBucket.hits))).all())
    assert sorted(value for key, value in hits.items() if key.startswith("checkin:device:"))[-1] == 10_001
    # The client's address is in no counter's key, readable or plainly hashed (a keyed hash only).
    async with session_maker() as session:
        keys = (await session.execute(sa.select(RateLimitBucket.key))).scalars().all()
    plain = hashlib.sha256(b"testclient").hexdigest()[:24]
    ip_keys = [key for key in keys if key.startswith("checkin:ip:")]
    assert ip_keys
    assert not any("testclient" in key or plain in key for key in ip_keys), ip_keys


# --- races and repeats ----------------------------------------------------------------------------------


async def test_twenty_devices_scanning_one_ticket_at_once_check_in_once(
    live_client: httpx.AsyncClient, session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await build_world(session_maker, settings)
    _, token = await staff_token(session_maker, [world.event])
    barrier = asyncio.Barrier(20)

    async def scan(index: int, code: str, nonce: str | None = None) -> dict[str, Any]:
        body = scan_body(world, code, device=f"Phone {index}", nonce=nonce or str(uuid.uuid4()))
        await barrier.wait()
        response = await live_client.post("/api/checkin", json=body, headers=bearer(token))
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    answers = await asyncio.gather(*(scan(index, world.code("ana")) for index in range(20)))
    results = sorted(answer["result"] for answer in answers)
    assert results == ["already_checked_in"] * 19 + ["ok"]
    [winner] = [answer for answer in answers if answer["result"] == "ok"]
    assert all(answer["device"] == winner["device"] for answer in answers)
    assert await count(session_maker, CheckIn, CheckIn.registration_id == world.registrations["ana"].id) == 1
    assert await count(session_maker, ScanAttempt) == 20

    # The same scan sent by twenty retries at once: one check-in, twenty identical answers.
    nonce = str(uuid.uuid4())
    repeats = await asyncio.gather(*(scan(0, world.code("bruno"), nonce) for _ in range(20)))
    assert all(answer == repeats[0] for answer in repeats)
    assert repeats[0]["result"] == "ok"
    assert (
        await count(session_maker, CheckIn, CheckIn.registration_id == world.registrations["bruno"].id) == 1
    )
    assert await count(session_maker, ScanAttempt, ScanAttempt.nonce == nonce) == 1


async def test_the_same_nonce_twice_checks_in_once_with_the_same_answer(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await build_world(session_maker, settings)
    _, token = await staff_token(session_maker, [world.event])
    body = scan_body(world, world.code("ana"))
    first = await client.post("/api/checkin", json=body, headers=bearer(token))
    second = await client.post(
        "/api/checkin", json={**body, "device": "Another phone"}, headers=bearer(token)
    )
    assert first.json()["result"] == "ok"
    assert second.json() == first.json()
    assert await count(session_maker, CheckIn) == 1
    assert await count(session_maker, ScanAttempt) == 1
    # A manual check-in (no ticket) is just as idempotent.
    manual = scan_body(world, registration_id=str(world.registrations["bruno"].id))
    answers = [
        (await client.post("/api/checkin", json=manual, headers=bearer(token))).json() for _ in range(2)
    ]
    assert answers[0] == answers[1]
    assert answers[0]["result"] == "ok"
    assert answers[0]["name"] == "Bruno Tester"
    assert await count(session_maker, CheckIn) == 2


# --- undo -------------------------------------------------------------------------------------------


async def test_undo_keeps_the_record_and_a_new_scan_checks_in_again(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await build_world(session_maker, settings)
    staff, token = await staff_token(session_maker, [world.event])
    ana = world.registrations["ana"]
    first = scan_body(world, world.code("ana"))
    assert (await client.post("/api/checkin", json=first, headers=bearer(token))).json()["result"] == "ok"
    stats = await client.get(f"/api/checkin/events/{world.event.id}/stats", headers=bearer(token))
    assert stats.json() == {"checked_in": 1, "expected": 2}

    undo = {"event_id": str(world.event.id), "registration_id": str(ana.id)}
    response = await client.post("/api/checkin/undo", json=undo, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "undone"
    assert "Ana Tester" in response.json()["message"]
    again = await client.post("/api/checkin/undo", json=undo, headers=bearer(token))
    assert again.status_code == 409
    stats = await client.get(f"/api/checkin/events/{world.event.id}/stats", headers=bearer(token))
    assert stats.json()["checked_in"] == 0

    rescan = scan_body(world, world.code("ana"))
    assert (await client.post("/api/checkin", json=rescan, headers=bearer(token))).json()["result"] == "ok"
    # Undo by the scan's nonce, as the scanner's "undo last" does.
    by_nonce = {"event_id": str(world.event.id), "nonce": rescan["nonce"]}
    assert (await client.post("/api/checkin/undo", json=by_nonce, headers=bearer(token))).status_code == 200
    async with session_maker() as session:
        rows = (await session.execute(sa.select(CheckIn).order_by(CheckIn.id))).scalars().all()
        audits = (
            (await session.execute(sa.select(AuditEntry).where(AuditEntry.action == "checkin_undone")))
            .scalars()
            .all()
        )
    assert len(rows) == 2
    assert all(row.undone_at is not None and row.undone_by_id == staff.id for row in rows)
    assert len(audits) == 2
    assert {audit.object_id for audit in audits} == {str(ana.id)}
    assert all(audit.event_id == world.event.id for audit in audits)
    # Undo cannot reach another event's check-ins.
    wrong = {"event_id": str(world.other.id), "registration_id": str(ana.id)}
    assert (await client.post("/api/checkin/undo", json=wrong, headers=bearer(token))).status_code == 404


# --- who may ----------------------------------------------------------------------------------------


async def test_who_may_check_in_where(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await build_world(session_maker, settings)
    _, staff_a = await staff_token(session_maker, [world.event])
    _, staff_b = await staff_token(session_maker, [world.other])
    _, manager = await staff_token(session_maker, [world.event], Role.EVENT_MANAGER)
    _, other_manager = await staff_token(session_maker, [world.other], Role.EVENT_MANAGER)
    _, focal = await staff_token(session_maker, [], Role.FOCAL_POINT)
    _, admin = await staff_token(session_maker, [], Role.ADMIN)
    event_id = world.event.id
    gets = [
        f"/api/checkin/events/{event_id}/manifest",
        f"/api/checkin/events/{event_id}/stats",
        f"/api/checkin/events/{event_id}/search?q=tester",
    ]

    async def statuses(headers: dict[str, str]) -> list[int]:
        codes = [(await client.get(path, headers=headers)).status_code for path in gets]
        scan = await client.post("/api/checkin", json=scan_body(world, "nope"), headers=headers)
        undo = await client.post(
            "/api/checkin/undo", json={"event_id": str(event_id), "nonce": "nonce-0001"}, headers=headers
        )
        return [*codes, scan.status_code, undo.status_code]

    assert await statuses(bearer(staff_a)) == [200, 200, 200, 200, 409]
    assert await statuses(bearer(manager)) == [200, 200, 200, 200, 409]
    assert await statuses(bearer(admin)) == [200, 200, 200, 200, 409]
    for outsider in (staff_b, other_manager, focal):
        assert await statuses(bearer(outsider)) == [404] * 5
    manage_link = derive_token(settings.secret_key, TokenPurpose.MANAGE, world.registrations["ana"].id, 1)
    for headers in ({}, bearer("not-a-token"), bearer(manage_link), {"Authorization": "Basic YTpi"}):
        assert await statuses(headers) == [401] * 5
    assert (
        await client.get(
            "/api/checkin/events/00000000-0000-7000-8000-000000000000/stats", headers=bearer(admin)
        )
    ).status_code == 404
    assert await count(session_maker, CheckIn) == 0


# --- what scanners download -------------------------------------------------------------------------


async def test_manifest_stats_and_search(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await build_world(session_maker, settings)
    staff, token = await staff_token(session_maker, [world.event])
    await client.post(
        "/api/checkin", json=scan_body(world, world.code("ana"), device="Gate 1"), headers=bearer(token)
    )
    response = await client.get(f"/api/checkin/events/{world.event.id}/manifest", headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    manifest = response.json()
    assert datetime.fromisoformat(manifest["generated_at"]) <= datetime.now(UTC)
    assert manifest["expected"] == 2
    by_name = {entry["name"]: entry for entry in manifest["tickets"]}
    assert set(by_name) == {f"{who.capitalize()} Tester" for who in PEOPLE}, "every status, no other event"
    ana = by_name["Ana Tester"]
    assert ana["ticket_hash"] == world.registrations["ana"].ticket_hash
    assert ana["checked_in"] is True
    assert ana["checked_in_device"] == "Gate 1"
    assert by_name["Bruno Tester"]["checked_in"] is False
    assert by_name["Fabio Tester"]["status"] == "cancelled"
    assert by_name["Eva Tester"]["status"] == "rejected"
    assert by_name["Dario Tester"]["status"] == "pending_approval"
    assert by_name["Carla Tester"]["status"] == "waitlisted"
    assert set(ana) == {
        "ticket_hash",
        "registration_id",
        "status",
        "name",
        "institution",
        "country",
        "checked_in",
        "checked_in_at",
        "checked_in_device",
    }, "no email or other personal data beyond what the door needs"
    async with session_maker() as session:
        [audit] = (
            (
                await session.execute(
                    sa.select(AuditEntry).where(AuditEntry.action == "checkin_manifest_downloaded")
                )
            )
            .scalars()
            .all()
        )
    assert audit.actor_id == staff.id
    assert audit.event_id == world.event.id
    assert audit.details["tickets"] == 6

    async def search(q: str) -> list[str]:
        found = await client.get(
            f"/api/checkin/events/{world.event.id}/search", params={"q": q}, headers=bearer(token)
        )
        assert found.status_code == 200
        return [hit["name"] for hit in found.json()["results"]]

    assert await search("bru") == ["Bruno Tester"]
    assert await search("DARIO@example") == ["Dario Tester"]
    assert await search("tester") == sorted(f"{who.capitalize()} Tester" for who in PEOPLE)
    assert await search("gil") == [], "people of another event are not found"
    assert await search("%") == []
    assert await search("_a") == []
    assert await search("x") == [], "one letter is too short"
    async with session_maker() as session:
        service = RegistrationService(
            session=session, tokens=TokenSettings(settings.secret_key, "test.local")
        )
        for index in range(21):
            await _register(service, "other", f"tester{index:02d}")
    assert len(await search("tester")) == 6, "still only this event's"
    _, both = await staff_token(session_maker, [world.event, world.other])
    many = await client.get(f"/api/checkin/events/{world.other.id}/search?q=tester", headers=bearer(both))
    assert len(many.json()["results"]) == 20, "at most twenty"


# --- re-issuing a ticket ------------------------------------------------------------------------------


def qr_codes(message: EmailMessage) -> list[str]:
    found = []
    for part in message.walk():
        if part.get_content_type() == "image/png" and part.get_filename() == "ticket.png":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            with Image.open(io.BytesIO(payload)) as image:
                found.extend(
                    result.text
                    for result in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
                )
    return found


async def test_a_reissued_ticket_replaces_the_old_one(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    settings: Settings,
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    world = await build_world(session_maker, settings)
    await worker.drain()
    smtp_server.messages.clear()
    _, token = await staff_token(session_maker, [world.event])
    ana = world.registrations["ana"]
    old_code = world.code("ana")
    await create_user(session_maker, "manager@programme.example.org", Role.EVENT_MANAGER, [world.event])
    await login(client, "manager@programme.example.org")
    path = f"/manage/registrations/{ana.id}/reissue-ticket"
    assert f'href="{path}"' in (await client.get(f"/manage/registrations/{ana.id}")).text
    form = {"_csrf_token": await csrf_token(client, path)}
    response = await client.post(path, data=form, follow_redirects=False)
    assert response.status_code in (302, 303), response.text
    page = await client.get(response.headers["location"])
    assert "The previous QR code no longer works" in page.text

    new_code = world.code("ana", version=2)
    old = await client.post("/api/checkin", json=scan_body(world, old_code), headers=bearer(token))
    assert old.json()["result"] == "invalid"
    new = await client.post("/api/checkin", json=scan_body(world, new_code), headers=bearer(token))
    assert new.json()["result"] == "ok"

    assert await worker.drain() == 1
    [mail] = smtp_server.messages
    assert mail["To"].addresses[0].addr_spec == "ana@example.org"
    assert set(qr_codes(mail)) == {new_code}
    async with session_maker() as session:
        [audit] = (
            (await session.execute(sa.select(AuditEntry).where(AuditEntry.action == "ticket_reissued")))
            .scalars()
            .all()
        )
        outbox = (
            (await session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())))
            .scalars()
            .first()
        )
    assert audit.object_id == str(ana.id)
    assert audit.details["ticket_version"] == 2
    assert outbox is not None
    assert outbox.payload["reason"] == "reissued"

    # Only confirmed registrations have a ticket; outsiders and door staff get 404.
    carla = world.registrations["carla"]
    refused = await client.post(f"/manage/registrations/{carla.id}/reissue-ticket", data=form)
    assert refused.status_code == 409
    assert 'id="reissue-error"' in refused.text
    gil = world.registrations["gil"]
    assert (await client.post(f"/manage/registrations/{gil.id}/reissue-ticket", data=form)).status_code == 404
    await create_user(session_maker, "door@programme.example.org", Role.CHECKIN_STAFF, [world.event])
    await login(client, "door@programme.example.org")
    form = {"_csrf_token": await csrf_token(client, f"/manage/events/{world.event.id}/checkin")}
    assert (await client.post(path, data=form)).status_code == 404
    assert (await client.get(path)).status_code == 404


# --- the pages --------------------------------------------------------------------------------------


async def test_scanner_page_and_manual_check_in_without_javascript(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await build_world(session_maker, settings)
    scanner = f"/manage/events/{world.event.id}/checkin"
    anonymous = await client.get(scanner, follow_redirects=False)
    assert anonymous.status_code in (302, 303)
    assert "/login" in anonymous.headers["location"]
    await create_user(session_maker, "door@programme.example.org", Role.CHECKIN_STAFF, [world.event])
    await login(client, "door@programme.example.org")
    page = await client.get(scanner)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert 'data-messages="' in page.text
    assert "/static/js/checkin.js" in page.text
    assert "<script>" not in page.text, "no inline script (CSP)"
    assert (await client.get(f"/manage/events/{world.other.id}/checkin")).status_code == 404
    listing = await client.get("/manage/checkin")
    assert 'href="/manage/checkin"' in listing.text, "the organisers' menu leads here"
    assert scanner in listing.text
    assert f"/manage/events/{world.other.id}/checkin" not in listing.text
    worker_script = await client.get("/manage/checkin-sw.js")
    assert worker_script.status_code == 200
    assert "caches" in worker_script.text

    found = await client.get(scanner, params={"q": "bruno"})
    assert "Bruno Tester" in found.text
    form = {
        "_csrf_token": await csrf_token(client, scanner),
        "registration_id": str(world.registrations["bruno"].id),
        "nonce": str(uuid.uuid4()),
        "q": "bruno",
    }
    for _ in range(2):  # sending the form again (a reload) checks in once
        done = await client.post(scanner, data=form)
        assert done.status_code == 200
        assert 'data-result="ok"' in done.text
    assert await count(session_maker, CheckIn) == 1
    form["nonce"] = str(uuid.uuid4())
    twice = await client.post(scanner, data=form)
    assert 'data-result="already_checked_in"' in twice.text
    broken = await client.post(scanner, data={**form, "registration_id": "nope"})
    assert broken.status_code == 422

    # The page's script authenticates with the session cookie plus the CSRF header.
    token = await csrf_token(client, scanner)
    body = scan_body(world, world.code("ana"))
    assert (await client.post("/api/checkin", json=body)).status_code == 401
    wrong = {"X-CSRFToken": "0" * 128}
    assert (await client.post("/api/checkin", json=body, headers=wrong)).status_code == 401
    response = await client.post("/api/checkin", json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert response.json()["result"] == "ok"
    assert (await client.get(f"/api/checkin/events/{world.event.id}/manifest")).status_code == 401
    manifest = await client.get(
        f"/api/checkin/events/{world.event.id}/manifest", headers={"X-CSRFToken": token}
    )
    assert manifest.status_code == 200

    # Organisers who do not check people in at this event do not see its scanner.
    await create_user(session_maker, "focal@programme.example.org", Role.FOCAL_POINT, countries=["CO"])
    await create_user(session_maker, "manager@programme.example.org", Role.EVENT_MANAGER, [world.other])
    for email in ("focal@programme.example.org", "manager@programme.example.org"):
        await login(client, email)
        assert (await client.get(scanner)).status_code == 404
        token = await csrf_token(client, "/manage")
        response = await client.post("/api/checkin", json=body, headers={"X-CSRFToken": token})
        assert response.status_code == 404
    client.cookies.clear()
    assert (await client.post("/api/checkin", json=body, headers={"X-CSRFToken": token})).status_code == 401
