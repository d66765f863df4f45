"""What an attendee-list request may ask for (search, filters, sort, page), and the API's answers.

One parser serves the HTML page, the exports and the JSON API, so they always agree on what a
filtered list holds. Unknown values are refused with field errors, never silently dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec

from events_app.db.models import RegistrationStatus, Sector
from events_app.domain.registrations.schemas import (
    MSG_BAD_CHARACTERS,
    MSG_BAD_COUNTRY,
    MSG_BAD_LANGUAGE,
    MSG_BAD_SECTOR,
    MSG_TOO_LONG,
    FieldError,
    has_forbidden_characters,
)
from events_app.lib.countries import is_country_code
from events_app.lib.i18n import N_, SUPPORTED_LANGUAGES, gettext

SORT_KEYS = ("created_at", "full_name", "country", "status")
ORDERS = ("asc", "desc")
DEFAULT_SORT = "created_at"
DEFAULT_ORDER = "asc"
PAGE_SIZE = 50
API_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
MAX_SEARCH_LENGTH = 200
MAX_VALUES_PER_FILTER = 300

MSG_BAD_STATUS = N_("Choose a status from the list.")
MSG_BAD_SORT = N_("Choose a sort order from the list.")
MSG_BAD_LIMIT = N_("Enter a whole number from 1 to %(max)d.")
MSG_BAD_CURSOR = N_("This page link is no longer valid. Start again from the first page.")
MSG_TOO_MANY = N_("Too many values were chosen.")

_STATUS_VALUES = frozenset(status.value for status in RegistrationStatus)
_SECTOR_VALUES = frozenset(sector.value for sector in Sector)
_LANGUAGES = frozenset(SUPPORTED_LANGUAGES)


@dataclass(frozen=True, slots=True)
class RawAttendeeQuery:
    """The query string as typed: every value still a string."""

    q: str = ""
    status: tuple[str, ...] = ()
    country: tuple[str, ...] = ()
    sector: tuple[str, ...] = ()
    language: tuple[str, ...] = ()
    sort: str = ""
    order: str = ""
    limit: str = ""
    cursor: str = ""


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a sorted list: the sort value and id of a row, and which way to read from it."""

    sort: str
    value: str
    id: UUID
    backwards: bool = False

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.value, str(self.id), "b" if self.backwards else "f"])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises ValueError for anything that is not a cursor this module wrote."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            sort, value, ident, way = json.loads(raw)
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError("not a cursor") from exc
        if sort not in SORT_KEYS or not isinstance(value, str) or way not in ("b", "f"):
            raise ValueError("not a cursor")
        return cls(sort=sort, value=value, id=UUID(str(ident)), backwards=way == "b")

    def sort_value(self) -> datetime | RegistrationStatus | str:
        """The value as the database column compares it; raises ValueError when it does not fit."""
        if self.sort == "created_at":
            moment = datetime.fromisoformat(self.value)
            if moment.tzinfo is None:
                raise ValueError("a cursor time needs its offset")
            return moment
        if self.sort == "status":
            return RegistrationStatus(self.value)
        return self.value


@dataclass(frozen=True, slots=True)
class AttendeeQuery:
    """A checked list request."""

    q: str = ""
    statuses: tuple[RegistrationStatus, ...] = ()
    countries: tuple[str, ...] = ()
    sectors: tuple[Sector, ...] = ()
    languages: tuple[str, ...] = ()
    sort: str = DEFAULT_SORT
    order: str = DEFAULT_ORDER
    limit: int = PAGE_SIZE
    cursor: Cursor | None = None

    @property
    def descending(self) -> bool:
        return self.order == "desc"

    def filters(self) -> dict[str, Any]:
        """The filters and sort, as the audit log keeps them."""
        return {
            "q": self.q,
            "status": [status.value for status in self.statuses],
            "country": list(self.countries),
            "sector": [sector.value for sector in self.sectors],
            "language": list(self.languages),
            "sort": self.sort,
            "order": self.order,
        }

    def query_pairs(self) -> list[tuple[str, str]]:
        """The list's query string without the page position (for links, exports and forms)."""
        pairs: list[tuple[str, str]] = [("q", self.q)] if self.q else []
        pairs += [("status", status.value) for status in self.statuses]
        pairs += [("country", country) for country in self.countries]
        pairs += [("sector", sector.value) for sector in self.sectors]
        pairs += [("language", language) for language in self.languages]
        if (self.sort, self.order) != (DEFAULT_SORT, DEFAULT_ORDER):
            pairs += [("sort", self.sort), ("order", self.order)]
        return pairs

    def query_string(self, cursor: str | None = None) -> str:
        pairs = self.query_pairs()
        if self.limit != PAGE_SIZE:
            pairs.append(("limit", str(self.limit)))
        if cursor:
            pairs.append(("cursor", cursor))
        return urlencode(pairs)


class AttendeeQueryInvalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("invalid attendee query")
        self.errors = errors

    def by_field(self) -> dict[str, str]:
        return {error.field: error.message for error in self.errors}


@dataclass(slots=True)
class _Checker:
    errors: list[FieldError] = field(default_factory=list)

    def fail(self, name: str, message: str) -> None:
        self.errors.append(FieldError(name, message))

    def choices(
        self, name: str, values: Iterable[str], allowed: Callable[[str], bool], message: str
    ) -> tuple[str, ...]:
        """The allowed values (once each, in the order given); an error for any other."""
        wanted = tuple(dict.fromkeys(value.strip() for value in values if value.strip()))
        if len(wanted) > MAX_VALUES_PER_FILTER:
            self.fail(name, gettext(MSG_TOO_MANY))
            return ()
        if not all(allowed(value) for value in wanted):
            self.fail(name, gettext(message))
            return ()
        return wanted

    def search(self, value: str) -> str:
        if has_forbidden_characters(value):
            self.fail("q", gettext(MSG_BAD_CHARACTERS))
            return ""
        cleaned = " ".join(value.split())
        if len(cleaned) > MAX_SEARCH_LENGTH:
            self.fail("q", gettext(MSG_TOO_LONG) % {"max": MAX_SEARCH_LENGTH})
            return ""
        return cleaned

    def limit(self, value: str, default: int) -> int:
        if not value.strip():
            return default
        try:
            number = int(value.strip())
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_PAGE_SIZE:
            self.fail("limit", gettext(MSG_BAD_LIMIT) % {"max": MAX_PAGE_SIZE})
            return default
        return number

    def cursor(self, value: str, sort: str) -> Cursor | None:
        if not value.strip():
            return None
        try:
            cursor = Cursor.decode(value.strip())
            cursor.sort_value()
        except ValueError:
            cursor = None
        if cursor is None or cursor.sort != sort:
            self.fail("cursor", gettext(MSG_BAD_CURSOR))
            return None
        return cursor


def parse_query(raw: RawAttendeeQuery, default_limit: int = PAGE_SIZE) -> AttendeeQuery:
    """Check a list request; raises :class:`AttendeeQueryInvalid` with translated field errors."""
    check = _Checker()
    q = check.search(raw.q)
    statuses = check.choices("status", raw.status, _STATUS_VALUES.__contains__, MSG_BAD_STATUS)
    countries = check.choices(
        "country", (code.upper() for code in raw.country), is_country_code, MSG_BAD_COUNTRY
    )
    sectors = check.choices("sector", raw.sector, _SECTOR_VALUES.__contains__, MSG_BAD_SECTOR)
    languages = check.choices("language", raw.language, _LANGUAGES.__contains__, MSG_BAD_LANGUAGE)
    sort = raw.sort.strip() or DEFAULT_SORT
    order = raw.order.strip().lower() or DEFAULT_ORDER
    if sort not in SORT_KEYS:
        check.fail("sort", gettext(MSG_BAD_SORT))
        sort = DEFAULT_SORT
    if order not in ORDERS:
        check.fail("order", gettext(MSG_BAD_SORT))
        order = DEFAULT_ORDER
    limit = check.limit(raw.limit, default_limit)
    cursor = check.cursor(raw.cursor, sort)
    if check.errors:
        raise AttendeeQueryInvalid(check.errors)
    return AttendeeQuery(
        q=q,
        statuses=tuple(RegistrationStatus(status) for status in statuses),
        countries=countries,
        sectors=tuple(Sector(sector) for sector in sectors),
        languages=languages,
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
    )


# --- the organiser API's answers -------------------------------------------------------------------


class RegistrationOut(msgspec.Struct):
    """One registration as the organiser API shows it."""

    id: UUID
    event_id: UUID
    full_name: str
    email: str
    country: str
    institution: str
    position: str
    sector: str
    language: str
    status: str
    registered_at: datetime


class RegistrationListOut(msgspec.Struct):
    """A page of an event's registrations; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[RegistrationOut]
    total: int
    next_cursor: str | None


class DecisionOut(msgspec.Struct):
    """A registration's status after an organiser's decision."""

    id: UUID
    status: str
    waitlist_position: int | None = None


def raw_from_pairs(pairs: Iterable[tuple[str, str]]) -> RawAttendeeQuery:
    """A list request from query-string pairs (repeated keys are several values)."""
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)

    def first(key: str) -> str:
        return values.get(key, [""])[0]

    return RawAttendeeQuery(
        q=first("q"),
        status=tuple(values.get("status", ())),
        country=tuple(values.get("country", ())),
        sector=tuple(values.get("sector", ())),
        language=tuple(values.get("language", ())),
        sort=first("sort"),
        order=first("order"),
        limit=first("limit"),
        cursor=first("cursor"),
    )
