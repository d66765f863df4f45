"""Emails give the event's time in its zone and, when the registrant's country keeps one time, theirs.

Which countries keep one time comes from the tz database's zone.tab: Colombia has one zone; Argentina
lists twelve that all keep UTC-3 (one time: shown); Brazil, Mexico and Chile keep several (not shown).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from conftest import SmtpServer, add_event, submit_registration
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import Registration
from events_app.domain.registrations.notifications import message_id_domain
from events_app.domain.registrations.services import MailKind, TokenSettings, queue_registration_mail
from events_app.lib.outbox import OutboxWorker
from events_app.lib.zones import country_zone, country_zones
from events_app.settings import Settings

#: 14 April 2027, 17:00 UTC: 19:00 in Madrid (UTC+2), 12:00 in Bogotá, 14:00 in Buenos Aires.
STARTS = datetime(2027, 4, 14, 17, 0, tzinfo=UTC)
#: "Your time:" in Spanish.
OWN_TIME = "Su hora local:"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """What the email says depends on no database: SQLite only."""
    return sqlite_url


def test_countries_that_keep_one_time() -> None:
    assert country_zones("CO") == ("America/Bogota",)
    assert country_zone("CO", STARTS) == "America/Bogota"
    assert len(country_zones("AR")) > 1
    assert country_zone("AR", STARTS) == "America/Argentina/Buenos_Aires"  # several zones, one time
    for several in ("BR", "MX", "CL", "ES", "PT", "EC", "US"):
        assert country_zone(several, STARTS) is None, several
    assert country_zone("XX", STARTS) is None


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert text is not None
    assert rich is not None
    return str(text.get_content()), str(rich.get_content())


@pytest.mark.parametrize(
    ("event_zone", "country", "own_time"),
    [
        ("Europe/Madrid", "CO", "12:00 – 14:00 (hora de Colombia, UTC-5)"),
        ("Europe/Madrid", "AR", "14:00 – 16:00 (hora de Argentina, UTC-3)"),
        ("America/Bogota", "CU", "13:00 – 15:00 (hora de Cuba, UTC-4)"),  # Havana on summer time
        ("Europe/Madrid", "BR", None),  # several times in Brazil
        ("Europe/Madrid", "MX", None),
        ("America/Bogota", "CO", None),  # the event's own zone
        ("America/Bogota", "PE", None),  # another zone, the same time
    ],
)
async def test_confirmation_adds_the_registrants_time(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
    event_zone: str,
    country: str,
    own_time: str | None,
) -> None:
    await add_event(session_maker, timezone=event_zone, starts_at=STARTS, ends_at=STARTS + timedelta(hours=2))
    response = await submit_registration(client, "launch", country=country, language="es")
    assert response.status_code in (200, 302, 303)
    await worker.drain()
    assert len(smtp_server.messages) == 1
    text, rich = bodies(smtp_server.messages[0])
    own_lines = [line for line in text.splitlines() if line.startswith(OWN_TIME)]
    if own_time is None:
        assert own_lines == []
        assert OWN_TIME not in rich
        return
    assert own_lines == [f"{OWN_TIME} miércoles, 14 de abril de 2027, {own_time}"]
    assert OWN_TIME in rich
    assert own_time in rich


@pytest.mark.parametrize("kind", [MailKind.EVENT_UPDATED, MailKind.REMINDER])
async def test_updates_and_reminders_add_it_too(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
    settings: Settings,
    kind: MailKind,
) -> None:
    await add_event(
        session_maker, timezone="Europe/Madrid", starts_at=STARTS, ends_at=STARTS + timedelta(hours=2)
    )
    await submit_registration(client, "launch", country="CO", language="es")
    await worker.drain()
    smtp_server.messages.clear()
    async with session_maker() as session:
        registration = (await session.execute(sa.select(Registration))).scalars().one()
        tokens = TokenSettings(settings.secret_key, message_id_domain(settings))
        queue_registration_mail(session, tokens, registration, kind, offset_minutes=60)
        await session.commit()
    await worker.drain()
    assert len(smtp_server.messages) == 1
    text, rich = bodies(smtp_server.messages[0])
    expected = f"{OWN_TIME} miércoles, 14 de abril de 2027, 12:00 – 14:00 (hora de Colombia, UTC-5)"
    assert expected in text.splitlines()
    assert "12:00 – 14:00 (hora de Colombia, UTC-5)" in rich
