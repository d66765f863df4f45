"""The door scanner in a real Chromium with a fake camera showing a real ticket, online and offline.

Chromium reads its camera from an MJPEG file given at launch, so each ticket shown to the camera is a
browser launch; the offline test reuses one profile directory across launches, as a phone keeps its
storage between uses of the page.
"""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import sqlalchemy as sa
from conftest import PASSWORD, SmtpServer, add_event, create_user, registration_form
from PIL import Image
from playwright.async_api import BrowserContext, Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.browser import chromium

from events_app.db.models import CheckIn, Event, Registration, Role, ScanAttempt, User
from events_app.domain.registrations.notifications import ticket_code
from events_app.domain.registrations.schemas import validate
from events_app.domain.registrations.services import RegistrationService, TokenSettings
from events_app.lib.outbox import OutboxWorker
from events_app.lib.tickets import ticket_qr_png
from events_app.settings import Settings

CAMERA_FLAGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
STAFF_EMAIL = "door@programme.example.org"
#: Waiting for a decoded frame and the answer (decoding takes well under a second).
SCAN_TIMEOUT_MS = 20_000


def camera_file(qr_png: bytes, directory: Path, name: str) -> Path:
    """A 640x480 MJPEG of the ticket's QR code in the middle of a white frame, as a phone would see it."""
    directory.mkdir(parents=True, exist_ok=True)
    frame = Image.new("RGB", (640, 480), "white")
    with Image.open(io.BytesIO(qr_png)) as qr:
        code = qr.convert("RGB").resize((300, 300), Image.Resampling.NEAREST)
    frame.paste(code, ((640 - 300) // 2, (480 - 300) // 2))
    png = directory / f"{name}.png"
    frame.save(png)
    mjpeg = directory / f"{name}.mjpeg"
    command = [
        "ffmpeg",
        "-y",
        "-loop",
        "1",
        "-i",
        str(png),
        "-t",
        "2",
        "-r",
        "10",
        "-c:v",
        "mjpeg",
        "-q:v",
        "3",
    ]
    command += ["-pix_fmt", "yuvj420p", "-f", "mjpeg", str(mjpeg)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return mjpeg


def camera(mjpeg: Path) -> list[str]:
    return [*CAMERA_FLAGS, f"--use-file-for-fake-video-capture={mjpeg}"]


def ticket_png(message: EmailMessage) -> bytes:
    for part in message.walk():
        if part.get_content_type() == "image/png" and part.get_filename() == "ticket.png":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("the confirmation email has no ticket")


async def log_in(browser: BrowserContext, base: str, target: str) -> Page:
    page = await browser.new_page()
    await page.goto(f"{base}{target}")  # an organiser page sends to the login form, then back
    await page.get_by_label("Email").fill(STAFF_EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"**{target}")
    return page


async def checkins(session_maker: async_sessionmaker[AsyncSession]) -> list[CheckIn]:
    async with session_maker() as session:
        return list((await session.execute(sa.select(CheckIn).order_by(CheckIn.scanned_at))).scalars())


async def staff(session_maker: async_sessionmaker[AsyncSession], event: Event) -> User:
    return await create_user(session_maker, STAFF_EMAIL, Role.CHECKIN_STAFF, [event])


async def test_a_ticket_from_the_confirmation_email_checks_in_once(
    tmp_path: Path,
    live_client: httpx.AsyncClient,
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event = await add_event(session_maker)
    door = await staff(session_maker, event)
    form = registration_form(full_name="Conceição Ribeiro", email="conceicao@pf.example.gov.br")
    body = {**{key: value for key, value in form.items() if key != "consent"}, "consent": True}
    assert (await live_client.post("/api/events/launch/registrations", json=body)).status_code == 201
    assert await worker.drain() == 1
    [message] = smtp_server.messages
    mjpeg = camera_file(ticket_png(message), tmp_path / "camera", "ticket")
    base = str(live_client.base_url).rstrip("/")
    scanner = f"/manage/events/{event.id}/checkin"

    async with chromium(tmp_path / "profile", extra_flags=camera(mjpeg)) as browser:
        page = await log_in(browser, base, scanner)
        await page.get_by_label("Name of this device").fill("Entrance A")
        await page.get_by_role("button", name="Save and start scanning").click()
        await page.wait_for_selector('#result[data-result="ok"]', timeout=SCAN_TIMEOUT_MS)
        assert await page.locator("#result-title").inner_text() == "Checked in"
        assert await page.locator("#result-name").inner_text() == "Conceição Ribeiro"
        assert await page.locator("#result-detail").inner_text() == "Policía Nacional, Colombia"
        [row] = await checkins(session_maker)
        assert row.device == "Entrance A"
        assert row.staff_user_id == door.id
        # The camera still sees the ticket: after the short pause for double reads, it is refused.
        await page.wait_for_selector('#result[data-result="already_checked_in"]', timeout=SCAN_TIMEOUT_MS)
        message_text = await page.locator("#result-message").inner_text()
        assert "Already checked in" in message_text
        assert "Entrance A" in message_text
        assert await page.locator("#count-checked-in").inner_text() == "1"

    assert len(await checkins(session_maker)) == 1
    async with session_maker() as session:
        results = (await session.execute(sa.select(ScanAttempt.result))).scalars().all()
    assert results[0] == "ok"
    assert set(results[1:]) == {"already_checked_in"}


async def _confirmed(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings, names: list[str]
) -> list[Registration]:
    registrations = []
    async with session_maker() as session:
        service = RegistrationService(
            session=session, tokens=TokenSettings(settings.secret_key, "test.local")
        )
        for name in names:
            form = registration_form(full_name=name, email=f"{name.split()[0].lower()}@example.org")
            result = await service.register("launch", validate(form))
            assert result.registration is not None
            registrations.append(result.registration)
    return registrations


async def _wait_until_cached(page: Page) -> None:
    """The scanner page and its files are in the browser's cache, for a reload without network."""
    await page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")
    await page.wait_for_function(
        "caches.match(location.pathname).then(function (hit) { return !!hit; })", polling=200
    )


async def _scan_offline(page: Page, expected: str, queue: int) -> None:
    await page.get_by_role("button", name="Start the camera").click()
    await page.wait_for_selector(f'#result[data-result="{expected}"]', timeout=SCAN_TIMEOUT_MS)
    await page.wait_for_selector(f'#checkin[data-queue="{queue}"]')
    assert "Offline" in await page.locator("#offline-banner").inner_text()


async def test_offline_scans_are_decided_locally_and_synced_with_their_own_times(
    tmp_path: Path,
    live_client: httpx.AsyncClient,
    session_maker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    event = await add_event(session_maker)
    await staff(session_maker, event)
    ana, bruno, carla = await _confirmed(
        session_maker, settings, ["Ana Offline", "Bruno Offline", "Carla Gone"]
    )
    async with session_maker() as session:
        service = RegistrationService(
            session=session, tokens=TokenSettings(settings.secret_key, "test.local")
        )
        cancelled = await session.get(Registration, carla.id)
        assert cancelled is not None
        assert await service.cancel(cancelled)  # before the scanner's last download of the list
    cameras = {
        who.full_name: camera_file(
            ticket_qr_png(ticket_code(settings, who)), tmp_path / "camera", who.full_name[:4]
        )
        for who in (ana, bruno, carla)
    }
    base = str(live_client.base_url).rstrip("/")
    scanner = f"/manage/events/{event.id}/checkin"
    profile = tmp_path / "profile"

    # First use of the device: online long enough to log in and download the list, then the network goes.
    async with chromium(profile, extra_flags=camera(cameras["Ana Offline"])) as browser:
        page = await log_in(browser, base, scanner)
        await page.wait_for_selector('#checkin[data-manifest-fresh="1"]')
        await _wait_until_cached(page)
        await browser.set_offline(True)
        await page.get_by_label("Name of this device").fill("Side door")
        await page.get_by_role("button", name="Save and start scanning").click()
        await page.wait_for_selector('#result[data-result="ok"]', timeout=SCAN_TIMEOUT_MS)
        await page.wait_for_selector('#checkin[data-queue="1"]')
        assert await page.locator("#result-name").inner_text() == "Ana Offline"
        await page.close()  # leave while still offline

    # Still offline: the page comes from the device's cache, with the list and the queue it kept.
    async with chromium(profile, extra_flags=camera(cameras["Bruno Offline"])) as browser:
        await browser.set_offline(True)
        page = await browser.new_page()
        await page.goto(f"{base}{scanner}")
        await _scan_offline(page, "ok", queue=2)
        assert await page.locator("#result-name").inner_text() == "Bruno Offline"
        assert await page.locator("#count-checked-in").inner_text() == "2"
        await page.close()

    assert await checkins(session_maker) == [], "nothing reached the server while offline"

    async with chromium(profile, extra_flags=camera(cameras["Carla Gone"])) as browser:
        await browser.set_offline(True)
        page = await browser.new_page()
        await page.goto(f"{base}{scanner}")
        await _scan_offline(page, "cancelled", queue=2)
        assert await page.locator("#result-name").inner_text() == "Carla Gone"
        assert "cancelled" in (await page.locator("#result-message").inner_text()).lower()
        back_online = datetime.now(UTC)
        await browser.set_offline(False)
        await page.wait_for_selector('#checkin[data-queue="0"]', timeout=30_000)
        assert await page.locator("#conflicts").is_hidden()

    rows = await checkins(session_maker)
    assert [row.registration_id for row in rows] == [ana.id, bruno.id]
    assert all(row.device == "Side door" for row in rows)
    assert all(row.scanned_at < back_online for row in rows), "the original scan times, not the sync time"
    assert all(row.scanned_at < row.created_at for row in rows)
    assert rows[1].scanned_at - rows[0].scanned_at > (rows[1].created_at - rows[0].created_at)
