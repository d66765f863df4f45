"""An organiser, in a real Chromium: logs in, creates and publishes an event, approves a registration."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa
from conftest import PASSWORD, SmtpServer, create_user, registration_form
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.browser import chromium

from events_app.db.models import Event, EventStatus, Registration, RegistrationStatus, Role
from events_app.lib.outbox import OutboxWorker


async def test_organiser_creates_publishes_and_approves_in_chromium(
    tmp_path: Path,
    live_client: httpx.AsyncClient,
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER)
    base = str(live_client.base_url).rstrip("/")
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto(f"{base}/manage?lang=en")
        await page.get_by_label("Email").fill("manager@example.org")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await page.get_by_role("link", name="New event").click()

        await page.locator("#slug").fill("penitentiary-guide")
        await page.locator("#kind").select_option("in_person")
        await page.locator("#base_language").select_option("en")
        await page.locator("#title_en").fill("Presentation of the guide on penitentiary intelligence")
        await page.locator("#title_es").fill("Presentación de la guía de inteligencia penitenciaria")
        await page.locator("#timezone").select_option("Europe/Madrid")
        await page.locator("#starts_at").fill("2027-04-29T15:00")
        await page.locator("#ends_at").fill("2027-04-29T16:00")
        await page.locator("#venue_name").fill("Escuela de Estudios Penitenciarios")
        await page.locator("#venue_city").fill("Madrid")
        await page.locator("#capacity").fill("40")
        await page.locator("#approval_required").check()
        await page.locator("#contact_email").fill("secretariat@programme.example.org")
        await page.get_by_role("button", name="Create the event as a draft").click()

        await page.get_by_role("button", name="Publish the event").click()
        async with session_maker() as session:
            event = (await session.execute(sa.select(Event))).scalar_one()
        assert event.status is EventStatus.PUBLISHED
        assert event.approval_required

        body = {**registration_form(email="elena.sanchez@ip.example.gob.es", country="ES"), "consent": True}
        assert (
            await live_client.post("/api/events/penitentiary-guide/registrations", json=body)
        ).status_code == 201

        await page.goto(f"{base}/manage/events/{event.id}/attendees")
        await page.get_by_role("link", name="José Álvarez Gutiérrez").click()
        await page.get_by_role("button", name="Approve").click()
        await page.wait_for_load_state()

    async with session_maker() as session:
        registration = (await session.execute(sa.select(Registration))).unique().scalar_one()
    assert registration.status is RegistrationStatus.CONFIRMED
    await worker.drain()
    kinds = [message["Subject"] for message in smtp_server.messages]
    assert len(kinds) == 2  # "received, pending review", then the confirmation with the invite
    assert any(part.get_content_type() == "text/calendar" for part in smtp_server.messages[-1].walk())
