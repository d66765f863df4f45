"""Languages: the per-request locale, gettext catalogs, and Babel formatting.

The current language lives in a ContextVar set by :class:`LocaleMiddleware` for web requests and by
:func:`force_locale` for emails (which are rendered in the recipient's language, not the request's).
Catalogs are the ``.po`` files under ``events_app/locales``; they are compiled in memory when first
used, so there is no build step and no binary ``.mo`` file in the repository.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError, dates, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from events_app.lib.zones import country_zone, zone_country
from events_app.settings import PACKAGE_ROOT

LOCALES_DIR = PACKAGE_ROOT / "locales"
SUPPORTED_LANGUAGES: tuple[str, ...] = ("es", "pt_BR", "en", "fr")
#: The language the source strings are written in.
SOURCE_LANGUAGE = "en"
LANGUAGE_NAMES = {"es": "Español", "pt_BR": "Português", "en": "English", "fr": "Français"}
DOMAIN = "messages"

_current_language: ContextVar[str] = ContextVar("current_language", default=SOURCE_LANGUAGE)


def normalize_language(value: str | None) -> str | None:
    """Map ``pt-br``, ``PT_br``, ``es-CO`` and the like onto a supported language, else None."""
    if not value:
        return None
    cleaned = value.strip().replace("-", "_")
    for language in SUPPORTED_LANGUAGES:
        if cleaned.lower() == language.lower():
            return language
    base = cleaned.split("_", 1)[0].lower()
    if base == "pt":
        return "pt_BR"
    return base if base in SUPPORTED_LANGUAGES else None


def negotiate_from_header(accept_language: str) -> str | None:
    """The best supported language for an Accept-Language header, honouring q-values."""
    preferred: list[tuple[float, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        if not tag:
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        preferred.append((-quality + index * 1e-6, tag.strip().replace("-", "_")))
    ordered = [tag for _, tag in sorted(preferred)]
    found = negotiate_locale(ordered, list(SUPPORTED_LANGUAGES), sep="_")
    if found:
        return normalize_language(found)
    for tag in ordered:
        if language := normalize_language(tag):
            return language
    return None


def current_language() -> str:
    return _current_language.get()


def set_language(language: str) -> None:
    _current_language.set(language)


@contextmanager
def force_locale(language: str) -> Iterator[None]:
    token = _current_language.set(normalize_language(language) or SOURCE_LANGUAGE)
    try:
        yield
    finally:
        _current_language.reset(token)


@cache
def translations_for(language: str) -> Translations:
    path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return Translations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def gettext(message: str) -> str:
    return translations_for(current_language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return translations_for(current_language()).ngettext(singular, plural, count)


def pgettext(context: str, message: str) -> str:
    return str(translations_for(current_language()).pgettext(context, message))


def lazy_gettext(message: str) -> str:
    """Marks a string for extraction where it is defined; translate it with gettext where it is shown."""
    return message


_ = gettext
N_ = lazy_gettext


def babel_locale(language: str | None = None) -> Locale:
    try:
        return Locale.parse(language or current_language())
    except (UnknownLocaleError, ValueError):
        return Locale.parse(SOURCE_LANGUAGE)


def format_datetime_in_zone(instant: datetime, zone: str, fmt: str = "full") -> str:
    """E.g. "martes, 14 de abril de 2027, 10:00" for the current language (date then time)."""
    locale = babel_locale()
    tz = ZoneInfo(zone)
    date_part = dates.format_date(instant.astimezone(tz).date(), format=fmt, locale=locale)
    time_part = dates.format_time(instant, format="short", tzinfo=tz, locale=locale)
    return f"{date_part}, {time_part}"


def format_time_in_zone(instant: datetime, zone: str) -> str:
    return dates.format_time(instant, format="short", tzinfo=ZoneInfo(zone), locale=babel_locale())


def format_date_in_zone(instant: datetime, zone: str, fmt: str = "medium") -> str:
    return dates.format_date(instant.astimezone(ZoneInfo(zone)).date(), format=fmt, locale=babel_locale())


def zone_label(instant: datetime, zone: str) -> str:
    """The zone as people read it: "hora de Colombia, UTC-5" / "Colombia Time, UTC-5"."""
    tz = ZoneInfo(zone)
    locale = babel_locale()
    country = zone_country(zone)
    if country and country in locale.territories and country_zone(country, instant):
        # The whole country keeps one time: "hora de Argentina", not "(Argentina/Buenos Aires)".
        location = locale.zone_formats["region"] % locale.territories[country]
    else:
        location = dates.get_timezone_location(tz, locale=locale, return_city=False)
    return f"{location}, {utc_offset_text(instant, zone)}"


def utc_offset_text(instant: datetime, zone: str) -> str:
    """The zone's offset at `instant`: "UTC-5", "UTC+5:30", "UTC+0"."""
    offset = instant.astimezone(ZoneInfo(zone)).utcoffset()
    total_minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if total_minutes >= 0 else "-"
    hours, minutes = divmod(abs(total_minutes), 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def language_name(language: str) -> str:
    return LANGUAGE_NAMES.get(language, language)
