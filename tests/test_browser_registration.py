"""A person registers in a real Chromium, without JavaScript help, and gets the email."""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import SmtpServer, add_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.browser import chromium

from events_app.lib.outbox import OutboxWorker


async def test_registration_in_chromium(
    tmp_path: Path,
    live_client: httpx.AsyncClient,
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    await add_event(session_maker, capacity=5)
    base = str(live_client.base_url).rstrip("/")
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.new_page()
        await page.goto(f"{base}/events/launch?lang=es")
        await page.get_by_role("link", name="Inscribirse").click()
        await page.get_by_label("Nombre completo").fill("Conceição Ribeiro")
        await page.get_by_label("Correo electrónico").fill("conceicao.ribeiro@pf.example.gov.br")
        await page.get_by_label("País").select_option("BR")
        await page.get_by_label("Institución").fill("Polícia Federal")
        await page.get_by_label("Sector").select_option("police")
        await page.get_by_label("Idioma de los correos").select_option("pt_BR")
        # Submitting without consent keeps what was typed and says what is missing.
        await page.get_by_role("button", name="Inscribirse").click()
        assert await page.get_by_label("Nombre completo").input_value() == "Conceição Ribeiro"
        assert await page.locator("#consent-error").is_visible()
        await page.locator("#consent").check()
        await page.get_by_role("button", name="Inscribirse").click()
        await page.wait_for_url("**/events/launch/registered")
        assert await page.locator("h1").inner_text() == "Inscripción recibida"

    assert await worker.drain() == 1
    [message] = smtp_server.messages
    assert message["To"].addresses[0].addr_spec == "conceicao.ribeiro@pf.example.gov.br"
    assert "Inscrição confirmada" in message["Subject"]
