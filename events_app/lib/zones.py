"""Which IANA zones a country has, from the tz database's ``zone.tab`` (no hand-written list)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo


def _zone_tab_text() -> str:
    """``zone.tab`` (country code, coordinates, zone, comment) from the ``tzdata`` package when it is
    installed, else from the system's zoneinfo folders; empty when neither has it."""
    try:
        return resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / "zone.tab"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return ""


@cache
def _zones_by_country() -> dict[str, tuple[str, ...]]:
    zones: dict[str, list[str]] = {}
    for line in _zone_tab_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        code, _coordinates, zone, *_comment = line.split("\t")
        zones.setdefault(code, []).append(zone)
    return {code: tuple(names) for code, names in zones.items()}


@cache
def _country_by_zone() -> dict[str, str]:
    return {zone: code for code, zones in _zones_by_country().items() for zone in zones}


def country_zones(code: str) -> tuple[str, ...]:
    """The IANA zones of a country (ISO 3166 code), as the tz database lists them, main one first."""
    return _zones_by_country().get(code, ())


def zone_country(zone: str) -> str | None:
    """The country (ISO 3166 code) a zone belongs to, if it is a country's zone."""
    return _country_by_zone().get(zone)


def country_zone(code: str, instant: datetime) -> str | None:
    """The zone that tells a country's time at `instant`, when the whole country shows one time.

    Colombia has one zone; Argentina lists twelve that all keep the same time (its first, Buenos Aires,
    stands for them); Brazil, Mexico or Chile show different times in different places: None.
    """
    zones = country_zones(code)
    offsets = {instant.astimezone(ZoneInfo(zone)).utcoffset() for zone in zones}
    return zones[0] if len(offsets) == 1 else None
