"""Event texts per language with the base language as fallback, said on every page that falls back;
and the subscription feed per language.

The event's base language is English; Spanish has only a title; Brazilian Portuguese has nothing.
"""

from __future__ import annotations

import html
import re

import pytest
from conftest import add_event, create_user, login
from icalendar import Calendar
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import EventStatus, Role
from events_app.lib.i18n import force_locale, gettext

TEXTS = {
    "en": {"title": "Network launch", "summary": "The launch", "description": "Two days of work"},
    "es": {"title": "Lanzamiento de la red"},
    "fr": {"title": "Lancement du réseau", "summary": "Le lancement", "description": "Deux jours de travail"},
}
WHOLE = "This event's text is not available in your language; it is shown in %(language)s."
LIST_NOTE = "Shown in %(language)s: not available in your language."
PART = "Part of this event's text is not available in your language; it is shown in %(language)s."


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Texts and languages depend on no database: SQLite only."""
    return sqlite_url


def said(page_language: str, message: str, **values: str) -> str:
    """`message` as the page in `page_language` must say it (and a translation must exist)."""
    with force_locale(page_language):
        text = gettext(message) % values if values else gettext(message)
    english = message % values if values else message
    if page_language != "en":
        assert text != english, f"untranslated in {page_language}: {message!r}"
    return text


def page_text(response: object) -> str:
    return html.unescape(getattr(response, "text", ""))


async def test_public_pages_say_which_texts_fall_back(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker, texts=TEXTS, base_language="en")

    spanish = page_text(await client.get("/events/launch?lang=es"))
    assert "<h1>Lanzamiento de la red</h1>" in spanish
    assert said("es", PART, language="English") in spanish  # summary and description are English
    assert "Two days of work" in spanish

    portuguese = page_text(await client.get("/events/launch?lang=pt_BR"))
    assert '<h1 lang="en">Network launch</h1>' in portuguese
    assert said("pt_BR", WHOLE, language="English") in portuguese

    french = page_text(await client.get("/events/launch?lang=fr"))
    assert "Lancement du réseau" in french
    assert 'class="notice fallback"' not in french

    listing = page_text(await client.get("/?lang=pt_BR"))
    assert 'lang="en">Network launch</a>' in listing
    assert said("pt_BR", LIST_NOTE, language="English") in listing
    assert "Shown in" not in page_text(await client.get("/?lang=fr"))

    api = (await client.get("/api/events/launch?lang=pt_BR")).json()
    assert (api["title"], api["language"]) == ("Network launch", "en")


async def test_organisers_see_which_texts_fall_back(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker, texts=TEXTS, base_language="en", status=EventStatus.DRAFT)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")

    page = page_text(await client.get(f"/manage/events/{event.id}?lang=es"))
    table = page[page.index('id="texts-by-language"') :]
    table = table[: table.index("</table>")]
    rows = {
        match.group(1).strip(): match.group(2)
        for match in re.finditer(r'<th scope="row">([^<]+)</th>(.*?)</tr>', table, re.S)
    }
    falls_back = said("es", "Falls back to %(language)s:", language="English")
    base = said("es", "base language")
    assert set(rows) == {f"English ({base})", "Español", "Português", "Français"}
    assert falls_back not in rows[f"English ({base})"]
    assert falls_back not in rows["Français"]
    assert rows["Español"].count(falls_back) == 2  # summary and description; the title is Spanish
    assert "Lanzamiento de la red" in rows["Español"]
    assert rows["Português"].count(falls_back) == 3

    listing = page_text(await client.get("/manage?lang=pt_BR"))
    assert 'lang="en">Network launch</a>' in listing
    assert f"({said('pt_BR', 'shown in %(language)s', language='English')})" in listing


def feed_summaries(raw: bytes) -> list[str]:
    return [str(event["SUMMARY"]) for event in Calendar.from_ical(raw).walk("VEVENT")]


async def test_the_feed_per_language_is_linked_and_carries_that_language(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker, texts=TEXTS, base_language="en")
    await add_event(
        session_maker,
        slug="second",
        texts={"es": {"title": "Segundo encuentro"}, "pt_BR": {"title": "Segundo encontro"}},
        base_language="es",
    )

    listing = page_text(await client.get("/?lang=en"))
    links = dict(re.findall(r'<a href="(webcal://[^"]+)" lang="[^"]+" hreflang="([^"]+)"', listing))
    assert sorted(links.values()) == ["en", "es", "fr", "pt-BR"]
    portuguese_feed = next(url for url, lang in links.items() if lang == "pt-BR")
    assert portuguese_feed == "webcal://testserver.local/calendar/pt_BR/events.ics"

    # The feed takes its language from the address, whatever the calendar app's Accept-Language says.
    response = await client.get("/calendar/pt_BR/events.ics", headers={"Accept-Language": "fr"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    with force_locale("pt_BR"):
        assert str(calendar["X-WR-CALNAME"]) == gettext("Programme events")
    # Portuguese where it exists, the base language (English) where it does not.
    assert sorted(feed_summaries(response.content)) == ["Network launch", "Segundo encontro"]
    spanish = await client.get("/calendar/es/events.ics", headers={"Accept-Language": "pt-BR"})
    assert sorted(feed_summaries(spanish.content)) == ["Lanzamiento de la red", "Segundo encuentro"]

    for unknown in ("de", "pt-br", "xx"):
        assert (await client.get(f"/calendar/{unknown}/events.ics")).status_code == 404

    # The event page offers the feed in the page's language.
    event_page = page_text(await client.get("/events/launch?lang=pt_BR"))
    assert 'href="webcal://testserver.local/calendar/pt_BR/events.ics"' in event_page
