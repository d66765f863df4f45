"""Countries: ISO 3166-1 alpha-2 codes from pycountry, names translated by Babel's CLDR data."""

from __future__ import annotations

import unicodedata
from functools import cache

import pycountry

from events_app.lib.i18n import babel_locale, current_language

#: The programme's Latin American partner countries, listed first in every country picker.
PARTNER_COUNTRIES: tuple[str, ...] = (
    "AR", "BO", "BR", "CL", "CO", "CR", "CU", "DO", "EC",
    "SV", "GT", "HN", "MX", "PA", "PY", "PE", "UY", "VE",
)  # fmt: skip

ALL_COUNTRY_CODES: frozenset[str] = frozenset(country.alpha_2 for country in pycountry.countries)


def is_country_code(code: str) -> bool:
    return code in ALL_COUNTRY_CODES


def country_name(code: str, language: str | None = None) -> str:
    names = babel_locale(language).territories
    if code in names:
        return str(names[code])
    country = pycountry.countries.get(alpha_2=code)
    return str(country.name) if country is not None else code


def _sort_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def _choices_for(language: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    def named(codes: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        pairs = [(code, country_name(code, language)) for code in codes]
        return tuple(sorted(pairs, key=lambda pair: _sort_key(pair[1])))

    others = [code for code in ALL_COUNTRY_CODES if code not in PARTNER_COUNTRIES]
    return named(PARTNER_COUNTRIES), named(others)


def country_choices(
    language: str | None = None,
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(partner countries, all other countries), each as (code, name) sorted by name in the language."""
    return _choices_for(language or current_language())
