"""Languages: the catalogs against the source, the switcher and negotiation, Babel dates and country names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel import dates
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from conftest import add_event, make_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient
from markupsafe import escape
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.app import create_app
from events_app.lib.i18n import LOCALES_DIR, SUPPORTED_LANGUAGES, force_locale, gettext
from events_app.settings import PROJECT_ROOT

LANGUAGES = ("es", "pt_BR", "en", "fr")
#: What ``pybabel extract -F babel.cfg -k N_ -k lazy_gettext`` adds to Babel's default keywords.
EXTRA_KEYWORDS: dict[str, Any] = {"N_": None, "lazy_gettext": None}
#: A named or positional %-conversion; "%%" is matched too and left out of the comparison.
PLACEHOLDER = re.compile(r"%(?:\((\w*)\))?([-#0 +]?(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrs%])")

PARTNER_CODES = frozenset(
    {
        "AR",
        "BO",
        "BR",
        "CL",
        "CO",
        "CR",
        "CU",
        "DO",
        "EC",
        "SV",
        "GT",
        "HN",
        "MX",
        "PA",
        "PY",
        "PE",
        "UY",
        "VE",
    }
)
COUNTRY_NAMES = {
    "es": {"BR": "Brasil", "DE": "Alemania"},
    "en": {"BR": "Brazil", "DE": "Germany"},
    "pt_BR": {"BR": "Brasil", "DE": "Alemanha"},
    "fr": {"BR": "Brésil", "DE": "Allemagne"},
}

HTML_LANG = re.compile(r'<html lang="([^"]*)"')
TIME_TEXT = re.compile(r'<time datetime="[^"]*">([^<]*)</time>')
COUNTRY_SELECT = re.compile(r'<select id="country"[^>]*>(.*?)</select>', re.S)
OPTGROUP = re.compile(r'<optgroup label="([^"]*)">(.*?)</optgroup>', re.S)
OPTION = re.compile(r'<option value="([^"]*)"[^>]*>([^<]*)</option>')


def test_the_supported_languages_are_the_four_catalogs() -> None:
    assert set(SUPPORTED_LANGUAGES) == set(LANGUAGES)


# ---------------------------------------------------------------------------------------------------
# Catalogs against the source

Key = str | tuple[str, str]


@cache
def extracted() -> dict[Key, Message]:
    """What ``pybabel extract -F babel.cfg -k N_ -k lazy_gettext .`` would put in the template."""
    with (PROJECT_ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    catalog = Catalog()
    keywords = {**DEFAULT_KEYWORDS, **EXTRA_KEYWORDS}
    for filename, lineno, message, comments, context in extract_from_dir(
        PROJECT_ROOT, method_map, options_map, keywords=keywords
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    messages = {message_key(message): message for message in catalog if message.id}
    assert len(messages) > 50, "extraction found almost nothing: is babel.cfg still right?"
    return messages


def message_key(message: Message) -> Key:
    singular = message.id if isinstance(message.id, str) else message.id[0]
    return (singular, message.context) if message.context else singular


def read_catalog(path: Path, locale: str | None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain="messages")


@cache
def catalog_for(language: str) -> Catalog:
    return read_catalog(LOCALES_DIR / language / "LC_MESSAGES" / "messages.po", language)


def entries(catalog: Catalog) -> dict[Key, Message]:
    return {message_key(message): message for message in catalog if message.id}


def placeholders(text: str) -> set[str]:
    """The %-conversions of a string, plus "%" for a stray percent sign that would break %-formatting."""
    found = {
        f"%({name}){conversion}" if name else f"%{conversion}"
        for name, conversion in PLACEHOLDER.findall(text)
        if conversion != "%"
    }
    if "%" in PLACEHOLDER.sub("", text):
        found.add("% (stray)")
    return found


def forms(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def report(problems: dict[str, list[str]], what: str) -> str:
    lines = [what]
    for language, items in problems.items():
        if items:
            lines.append(f"  {language} ({len(items)}):")
            lines.extend(f"    {item}" for item in items)
    return "\n".join(lines)


def fail_if(problems: dict[str, list[str]], what: str) -> None:
    if any(problems.values()):
        pytest.fail(report(problems, what), pytrace=False)


def describe(message: Message) -> str:
    where = ", ".join(f"{path}:{line}" for path, line in message.locations[:2])
    text = repr(message.id if isinstance(message.id, str) else message.id[0])
    if message.context:
        text = f"{text} (context {message.context!r})"
    return f"{text}  [{where}]" if where else text


def test_every_source_message_is_in_each_catalog() -> None:
    problems: dict[str, list[str]] = {}
    for language in LANGUAGES:
        in_catalog = entries(catalog_for(language))
        problems[language] = []
        for key, message in extracted().items():
            found = in_catalog.get(key)
            if found is None:
                problems[language].append(f"missing {describe(message)}")
            elif found.id != message.id:
                problems[language].append(f"plural form differs: source {message.id!r}, catalog {found.id!r}")
    fail_if(problems, "msgids in the source but not in the catalog:")


def test_no_translation_is_empty() -> None:
    source = extracted()
    problems: dict[str, list[str]] = {}
    for language in LANGUAGES:
        catalog = catalog_for(language)
        problems[language] = []
        for key, message in entries(catalog).items():
            if key not in source:
                continue  # reported by the test for stale entries
            strings = forms(message.string)
            if message.pluralizable and len(strings) != catalog.num_plurals:
                problems[language].append(
                    f"{len(strings)} plural forms instead of {catalog.num_plurals}: {describe(source[key])}"
                )
            elif not strings or not all(strings):
                problems[language].append(f"untranslated {describe(source[key])}")
    fail_if(problems, "msgids without a (complete) translation:")


def test_no_translation_is_fuzzy() -> None:
    problems = {
        language: [describe(message) for message in entries(catalog_for(language)).values() if message.fuzzy]
        for language in LANGUAGES
    }
    fail_if(problems, "fuzzy translations (they are not used, the English text is shown instead):")


def test_placeholders_of_each_translation_match_the_msgid() -> None:
    problems: dict[str, list[str]] = {}
    for language in LANGUAGES:
        problems[language] = []
        for message in entries(catalog_for(language)).values():
            expected = set().union(*(placeholders(text) for text in forms(message.id)))
            for index, translation in enumerate(forms(message.string)):
                if not translation:
                    continue  # reported by the test for empty translations
                got = placeholders(translation)
                if got != expected:
                    form = f" form {index}" if message.pluralizable else ""
                    problems[language].append(
                        f"{describe(message)}{form}: expected {sorted(expected)}, got {sorted(got)}"
                        f" in {translation!r}"
                    )
    fail_if(problems, "translations whose placeholders differ:")


def test_catalogs_hold_nothing_that_is_not_in_the_source() -> None:
    source = extracted()
    problems: dict[str, list[str]] = {}
    for language in LANGUAGES:
        catalog = catalog_for(language)
        problems[language] = [
            f"not in the source any more: {describe(message)}"
            for key, message in entries(catalog).items()
            if key not in source
        ] + [f"obsolete (#~) entry: {describe(message)}" for message in catalog.obsolete.values()]
    fail_if(
        problems, "catalog entries that are no longer in the source (run pybabel update, then remove #~):"
    )


def test_the_pot_file_lists_exactly_the_extracted_messages() -> None:
    source = extracted()
    template = entries(read_catalog(LOCALES_DIR / "messages.pot", None))
    problems = {
        "messages.pot": [
            f"missing {describe(message)}" for key, message in source.items() if key not in template
        ]
        + [
            f"not in the source: {describe(message)}"
            for key, message in template.items()
            if key not in source
        ]
        + [
            f"plural form differs: source {message.id!r}, pot {template[key].id!r}"
            for key, message in source.items()
            if key in template and template[key].id != message.id
        ]
    }
    fail_if(problems, "messages.pot is out of date; run: pybabel extract -F babel.cfg -k N_ -k lazy_gettext")


def test_placeholder_check_sees_renamed_and_stray_placeholders() -> None:
    assert placeholders("%(num)d seats left.") == {"%(num)d"}
    assert placeholders("Quedan %(nums)d lugares.") != placeholders("%(num)d seats left.")
    assert placeholders("Quedan %(num)s lugares.") != placeholders("%(num)d seats left.")
    assert placeholders("100 % sûr") == {"% s"}  # "% s" is a conversion to Python, so it is flagged
    assert placeholders("100 %") == {"% (stray)"}
    assert placeholders("50 %% off") == set()


# ---------------------------------------------------------------------------------------------------
# Pages: the switcher, the cookie, Accept-Language


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Languages do not depend on the database: SQLite only, to keep this file fast."""
    return sqlite_url


def translated(language: str, message: str) -> str:
    with force_locale(language):
        text = gettext(message)
    if language != "en":
        assert text != message, f"{message!r} is not translated in {language}"
    return str(escape(text))


def html_lang(response: Any) -> str:
    assert response.status_code == 200, response.text
    found = HTML_LANG.search(response.text)
    assert found, "no <html lang> in the page"
    return found.group(1)


def assert_page_in(response: Any, language: str, *messages: str) -> None:
    tag = language.replace("_", "-")
    assert html_lang(response) == tag
    assert response.headers.get("content-language") == tag
    for message in messages:
        assert translated(language, message) in response.text, f"{message!r} not shown in {language}"


def lang_cookie_set(response: Any) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("lang="):
            return str(header.split(";", 1)[0].removeprefix("lang="))
    return None


@pytest.fixture
async def event_slug(session_maker: async_sessionmaker[AsyncSession]) -> str:
    event = await add_event(session_maker)
    return str(event.slug)


PAGES = {"home": ("/", "Upcoming events"), "event": ("/events/launch", "Questions:")}


@pytest.mark.parametrize("page", PAGES)
async def test_switcher_sets_the_language_and_the_cookie_keeps_it(
    client: AsyncTestClient[Litestar], event_slug: str, page: str
) -> None:
    path, message = PAGES[page]
    response = await client.get(path, params={"lang": "es"})
    assert_page_in(response, "es", message)
    assert lang_cookie_set(response) == "es"
    assert client.cookies.get("lang") == "es"

    again = await client.get(path)
    assert_page_in(again, "es", message)
    assert lang_cookie_set(again) is None

    # the switcher beats the cookie, and moves it
    switched = await client.get(path, params={"lang": "pt_BR"})
    assert_page_in(switched, "pt_BR", message)
    assert lang_cookie_set(switched) == "pt_BR"
    assert_page_in(await client.get(path), "pt_BR", message)


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        ("pt-BR,pt;q=0.9", "pt_BR"),
        ("fr-CA", "fr"),
        ("es-CO,es;q=0.9,en;q=0.5", "es"),
        ("de", "en"),  # unsupported: the app default, "en" in the test settings
        ("de-DE,fr;q=0.4,es;q=0.8", "es"),
    ],
)
async def test_accept_language_is_negotiated(
    client: AsyncTestClient[Litestar], event_slug: str, accept_language: str, language: str
) -> None:
    for path, message in PAGES.values():
        response = await client.get(path, headers={"Accept-Language": accept_language})
        assert_page_in(response, language, message)
        assert lang_cookie_set(response) is None


async def test_unsupported_accept_language_falls_back_to_the_configured_default(
    tmp_path: Path, sqlite_url: str
) -> None:
    app = create_app(make_settings(tmp_path, sqlite_url, default_language="es"))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        response = await client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9"})
        assert_page_in(response, "es", "Upcoming events")
        assert_page_in(await client.get("/"), "es", "Upcoming events")


async def test_cookie_beats_accept_language(client: AsyncTestClient[Litestar], event_slug: str) -> None:
    client.cookies.set("lang", "fr", domain="testserver.local")
    for path, message in PAGES.values():
        response = await client.get(path, headers={"Accept-Language": "es-CO,es;q=0.9"})
        assert_page_in(response, "fr", message)
        assert lang_cookie_set(response) is None


async def test_switcher_beats_cookie_and_accept_language(
    client: AsyncTestClient[Litestar], event_slug: str
) -> None:
    client.cookies.set("lang", "fr", domain="testserver.local")
    response = await client.get("/events/launch", params={"lang": "es"}, headers={"Accept-Language": "pt-BR"})
    assert_page_in(response, "es", "Questions:")
    assert lang_cookie_set(response) == "es"


async def test_an_invalid_switcher_value_is_ignored(
    client: AsyncTestClient[Litestar], event_slug: str
) -> None:
    response = await client.get("/", params={"lang": "xx"}, headers={"Accept-Language": "fr"})
    assert_page_in(response, "fr", "Upcoming events")
    assert lang_cookie_set(response) is None
    assert "lang" not in client.cookies

    await client.get("/", params={"lang": "es"})
    kept = await client.get("/events/launch", params={"lang": "xx"}, headers={"Accept-Language": "fr"})
    assert_page_in(kept, "es", "Questions:")
    assert lang_cookie_set(kept) is None

    client.cookies.clear()
    client.cookies.set("lang", "xx", domain="testserver.local")
    assert_page_in(await client.get("/", headers={"Accept-Language": "pt-BR"}), "pt_BR", "Upcoming events")


async def test_source_language_page_is_english(client: AsyncTestClient[Litestar], event_slug: str) -> None:
    response = await client.get("/", params={"lang": "en"})
    assert_page_in(response, "en", "Upcoming events")
    assert "<h1>Upcoming events</h1>" in response.text


# ---------------------------------------------------------------------------------------------------
# Dates and country names


@pytest.mark.parametrize("language", ["es", "pt_BR", "fr", "en"])
async def test_event_date_is_written_by_babel_in_the_page_language(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], language: str
) -> None:
    # 02:00 UTC on the 1st of April is 21:00 on the 31st of March in Bogotá: the date is the zone's
    starts_at = datetime(datetime.now(UTC).year + 1, 4, 1, 2, 0, tzinfo=UTC)
    await add_event(session_maker, starts_at=starts_at, ends_at=starts_at + timedelta(hours=2))
    local_day = starts_at.astimezone(ZoneInfo("America/Bogota")).date()
    expected = dates.format_date(local_day, format="full", locale=language)
    month = dates.get_month_names("wide", locale=language)[3]

    response = await client.get("/events/launch", params={"lang": language})
    assert_page_in(response, language, "Questions:")
    shown = TIME_TEXT.findall(response.text)
    assert shown, "no <time> on the event page"
    assert shown[0].startswith(f"{escape(expected)}, "), (shown[0], expected)
    assert month in shown[0]


async def country_groups(client: AsyncTestClient[Litestar], language: str) -> list[tuple[str, list[Any]]]:
    response = await client.get("/events/launch/register", params={"lang": language})
    assert_page_in(response, language, "Country")
    select = COUNTRY_SELECT.search(response.text)
    assert select, "no country <select> in the registration form"
    groups = [(label, OPTION.findall(body)) for label, body in OPTGROUP.findall(select.group(1))]
    assert len(groups) == 2, [label for label, _ in groups]
    return groups


@pytest.mark.parametrize("language", ["es", "en", "pt_BR", "fr"])
async def test_country_names_are_in_the_page_language_partners_first(
    client: AsyncTestClient[Litestar], event_slug: str, language: str
) -> None:
    (partner_label, partners), (others_label, others) = await country_groups(client, language)
    assert partner_label == translated(language, "Partner countries")
    assert others_label == translated(language, "Other countries")
    assert len(partners) == 18
    assert {code for code, _ in partners} == PARTNER_CODES
    assert not PARTNER_CODES & {code for code, _ in others}
    assert len(others) > 200

    expected = COUNTRY_NAMES[language]
    assert dict(partners)["BR"] == expected["BR"]
    assert dict(others)["DE"] == expected["DE"]
