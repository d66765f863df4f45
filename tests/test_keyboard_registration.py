"""The whole registration flow works with the keyboard alone, in a real Chromium."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa
from conftest import add_event
from playwright.async_api import Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.browser import chromium

from events_app.db.models import Registration


async def tab_to(page: Page, element_id: str, limit: int = 40) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with the Tab key")


async def test_registration_by_keyboard_only(
    tmp_path: Path, live_client: httpx.AsyncClient, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    base = str(live_client.base_url).rstrip("/")
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto(f"{base}/events/launch?lang=en")
        for _ in range(40):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.textContent.trim()") == "Register":
                break
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/events/launch/register")

        await tab_to(page, "full_name")
        await page.keyboard.type("Héctor Sandoval")
        await tab_to(page, "email")
        await page.keyboard.type("hector.sandoval@policia.example.gov.co")
        await tab_to(page, "country")
        await page.keyboard.type("Colombia")
        await tab_to(page, "institution")
        await page.keyboard.type("Policía Nacional de Colombia")
        await tab_to(page, "sector")
        await page.keyboard.type("Police")
        await tab_to(page, "consent")
        await page.keyboard.press("Space")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.type") == "submit"
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/events/launch/registered")

    async with session_maker() as session:
        registration = (await session.execute(sa.select(Registration))).unique().scalar_one()
    assert registration.full_name == "Héctor Sandoval"
    assert registration.country == "CO"
    assert registration.sector.value == "police"
