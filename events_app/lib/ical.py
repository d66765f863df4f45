"""iCalendar invitations (RFC 5545 / RFC 5546 iTIP) and feeds for events.

Times are written in the event's own zone with a VTIMEZONE, so that clients show the event at the
organiser's wall-clock time and move it correctly across DST changes. Where the zone follows a
yearly rule (the usual "last Sunday of March" kind) the VTIMEZONE is written with RRULEs, the form
Outlook needs: it misreads the RDATE lists that icalendar's own generator writes. Every rule is
checked against zoneinfo for the next years before it is used; zones whose rule cannot be written
that way fall back to icalendar's generator.
"""

from __future__ import annotations

import itertools
import re
from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress, vText
from icalendar.caselessdict import canonsort_keys

PRODID = "-//events_app//EN"

_UTC_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"})
#: How many years after this one a yearly rule must match zoneinfo exactly.
_YEARS_CHECKED = 10
#: The back search for the first year a rule held stops here: nothing this app schedules is older.
_OLDEST_YEAR = 2000
#: Offset changes are searched by sampling a zone weekly, then bisecting to the second.
_SAMPLE_SECONDS = 7 * 86400
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
#: C0 controls other than TAB and LF (CR is turned into LF first): not allowed in iCalendar text.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NOT_IN_ADDRESS = re.compile(r"[\s\x00-\x1f\x7f]")


class InviteMethod(StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"
    PUBLISH = "PUBLISH"


@dataclass(frozen=True, slots=True)
class InviteData:
    uid: str  # stable per registration, e.g. "registration-<uuid>@events.example.org"
    sequence: int  # SEQUENCE, >= 0
    summary: str
    description: str
    location: str  # venue text or "Online"
    starts_at: datetime  # aware; any offset, written in `timezone`
    ends_at: datetime  # aware, after starts_at
    timezone: str  # IANA name, e.g. "America/Bogota"; "UTC" / "Etc/UTC" are written with Z
    organizer_email: str
    organizer_name: str
    attendee_email: str | None  # None for a public per-event .ics
    attendee_name: str | None
    url: str | None = None  # URL property, e.g. the "my registration" link
    cancelled: bool = False  # STATUS:CANCELLED instead of CONFIRMED


# --- text values ---------------------------------------------------------------------------------


class _Text(vText):
    """TEXT whose value is taken literally: plain vText turns a backslash-N into a line break."""

    __slots__ = ()

    def to_ical(self) -> bytes:
        return b"\\\\N".join(vText(part).to_ical() for part in self.split("\\N"))


def _clean(value: str) -> str:
    return _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def _text(value: str) -> _Text:
    return _Text(_clean(value))


def _checked_address(value: str, what: str) -> str:
    if not value or _NOT_IN_ADDRESS.search(value):
        raise ValueError(f"{what} must be non-empty and hold no whitespace or control characters")
    return value


# --- VTIMEZONE -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Change:
    """A change of UTC offset, at the wall-clock time it happens (read in the old offset)."""

    wall: datetime
    offset_from: timedelta
    offset_to: timedelta
    name: str = field(compare=False)


@dataclass(frozen=True, slots=True)
class _Rule:
    """A yearly change on the n-th (or, with week -1, the last) weekday of a month."""

    month: int
    weekday: int  # Monday is 0
    week: int
    at: time
    offset_from: timedelta
    offset_to: timedelta
    name: str

    def day_in(self, year: int) -> date:
        if self.week > 0:
            first = date(year, self.month, 1)
            return first + timedelta(days=(self.weekday - first.weekday()) % 7 + 7 * (self.week - 1))
        last = date(year, self.month, monthrange(year, self.month)[1])
        return last - timedelta(days=(last.weekday() - self.weekday) % 7)

    def change_in(self, year: int) -> _Change:
        wall = datetime.combine(self.day_in(year), self.at)
        return _Change(wall, self.offset_from, self.offset_to, self.name)


def _offset_at(zone: ZoneInfo, timestamp: int) -> timedelta:
    offset = datetime.fromtimestamp(timestamp, UTC).astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _change_between(zone: ZoneInfo, before: int, after: int) -> _Change:
    """Bisect to the first second with the new offset; `before` and `after` have different offsets."""
    old = _offset_at(zone, before)
    while after - before > 1:
        middle = (before + after) // 2
        if _offset_at(zone, middle) == old:
            before = middle
        else:
            after = middle
    instant = datetime.fromtimestamp(after, UTC)
    name = instant.astimezone(zone).tzname() or ""
    return _Change((instant + old).replace(tzinfo=None), old, _offset_at(zone, after), name)


def _changes(zone: ZoneInfo, year: int) -> list[_Change]:
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    samples = [*range(start, end, _SAMPLE_SECONDS), end]
    return [
        _change_between(zone, before, after)
        for before, after in itertools.pairwise(samples)
        if _offset_at(zone, before) != _offset_at(zone, after)
    ]


def _rule_candidates(change: _Change) -> list[_Rule]:
    wall = change.wall
    weeks = [(wall.day - 1) // 7 + 1] if wall.day <= 28 else []
    if wall.day + 7 > monthrange(wall.year, wall.month)[1]:
        weeks.append(-1)
    offsets = (change.offset_from, change.offset_to)
    return [_Rule(wall.month, wall.weekday(), week, wall.time(), *offsets, change.name) for week in weeks]


def _follows(zone: ZoneInfo, rules: tuple[_Rule, ...], year: int) -> bool:
    expected = sorted((rule.change_in(year) for rule in rules), key=lambda change: change.wall)
    return _changes(zone, year) == expected


def _yearly_rules(zone: ZoneInfo, year: int) -> tuple[_Rule, ...] | None:
    """The zone's rules from `year` on, if nth-weekday RRULEs describe them (none for a fixed offset)."""
    changes = _changes(zone, year)
    if len(changes) not in (0, 2):
        return None
    for rules in itertools.product(*map(_rule_candidates, changes)):
        if all(_follows(zone, rules, later) for later in range(year + 1, year + _YEARS_CHECKED + 1)):
            return rules
    return None


def _first_year(zone: ZoneInfo, rules: tuple[_Rule, ...], year: int) -> int:
    while year > _OLDEST_YEAR and _follows(zone, rules, year - 1):
        year -= 1
    return year


def _observance(rule: _Rule, year: int) -> TimezoneStandard | TimezoneDaylight:
    part = TimezoneDaylight() if rule.offset_to > rule.offset_from else TimezoneStandard()
    part.DTSTART = rule.change_in(year).wall
    part.TZOFFSETFROM = rule.offset_from
    part.TZOFFSETTO = rule.offset_to
    part.add("TZNAME", rule.name)
    by_day = f"{rule.week}{_WEEKDAYS[rule.weekday]}"
    part.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": rule.month, "BYDAY": by_day})
    return part


def _fixed_observance(zone: ZoneInfo, year: int) -> TimezoneStandard:
    local = datetime(year, 1, 1, tzinfo=zone)
    offset = local.utcoffset()
    assert offset is not None
    part = TimezoneStandard()
    part.DTSTART = local.replace(tzinfo=None)
    part.TZOFFSETFROM = offset
    part.TZOFFSETTO = offset
    part.add("TZNAME", local.tzname() or "")
    return part


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a zone's VTIMEZONE is written: yearly rules from `first_year` on, or (rules None) icalendar's
    list of changes for the years `first_year` to `last_year`."""

    rules: tuple[_Rule, ...] | None
    first_year: int
    last_year: int | None


@cache
def _plan(tzid: str) -> _Plan:
    zone = ZoneInfo(tzid)
    year = datetime.now(UTC).year
    rules = _yearly_rules(zone, year)
    if rules is None:
        return _Plan(None, year - 2, year + _YEARS_CHECKED)
    return _Plan(rules, _first_year(zone, rules, year), None)


def _changes_between(tzid: str, first_year: int, end_year: int) -> Timezone:
    """A VTIMEZONE listing every change from 1 January `first_year` to before `end_year` (RDATE lists).

    Written here rather than by icalendar's generator, which puts a change to summer time at the wall
    time after it (01:00 instead of 00:00 in Santiago), where RFC 5545 reads it in the offset before it.
    """
    zone = ZoneInfo(tzid)
    timezone = Timezone()
    timezone.add("TZID", tzid)
    timezone.add_component(_fixed_observance(zone, first_year))  # the offset on 1 January
    groups: dict[tuple[timedelta, timedelta, str], list[datetime]] = {}
    for year in range(first_year, end_year):
        for change in _changes(zone, year):
            groups.setdefault((change.offset_from, change.offset_to, change.name), []).append(change.wall)
    for (offset_from, offset_to, name), walls in groups.items():
        part = TimezoneDaylight() if offset_to > offset_from else TimezoneStandard()
        part.DTSTART = walls[0]
        part.TZOFFSETFROM = offset_from
        part.TZOFFSETTO = offset_to
        part.add("TZNAME", name)
        if walls[1:]:
            part.add("RDATE", walls[1:])
        timezone.add_component(part)
    return timezone


@cache
def _cached_vtimezone(tzid: str, since: int | None = None, until: int | None = None) -> Timezone:
    """The VTIMEZONE of `tzid`, reaching back to `since` and forward to `until` when they are given.

    Yearly rules only describe the years since the zone's last change of rules: an event before them
    (Mexico kept summer time until 2022, Chile and Paraguay moved their dates) gets the earlier changes
    written out one by one in front of the rules, or the event's wall time would be read with the
    wrong offset.
    """
    plan = _plan(tzid)
    first_year = plan.first_year if since is None else min(since, plan.first_year)
    if plan.rules is None:
        assert plan.last_year is not None
        last_year = plan.last_year if until is None else max(until, plan.last_year)
        return _changes_between(tzid, first_year, last_year + 1)
    zone = ZoneInfo(tzid)
    timezone = Timezone()
    timezone.add("TZID", tzid)
    if first_year < plan.first_year:
        for part in _changes_between(tzid, first_year, plan.first_year).subcomponents:
            timezone.add_component(part)
    observances = [_observance(rule, plan.first_year) for rule in plan.rules]
    for part in observances or [_fixed_observance(zone, plan.first_year)]:
        timezone.add_component(part)
    return timezone


def _span(tzid: str, instants: Iterable[datetime]) -> tuple[int | None, int | None]:
    """The (since, until) years a VTIMEZONE needs beyond its usual span to cover `instants` (None: none)."""
    plan = _plan(tzid)
    years = [(instant.astimezone(UTC) + shift).year for instant in instants for shift in _MARGINS]
    since = min(years) if years and min(years) < plan.first_year else None
    until = None
    if plan.last_year is not None and years and max(years) > plan.last_year:
        until = max(years)
    return since, until


#: A day either side of an instant, so the VTIMEZONE covers its wall time whatever the offset.
_MARGINS = (timedelta(days=-1), timedelta(days=1))


def vtimezone(tzid: str, covering: Iterable[datetime] = ()) -> Timezone:
    """A VTIMEZONE for an IANA zone that also covers the instants `covering`: built once per process
    (and span), a fresh copy on every call."""
    return _cached_vtimezone(tzid, *_span(tzid, covering)).copy(recursive=True)


def _shared_vtimezone(tzid: str, covering: Iterable[datetime] = ()) -> Timezone:
    """The cached VTIMEZONE itself, for calendars that are only serialized and never escape this module.

    Adding a component to a calendar and serializing it leave the component as it was, so this skips
    the copy, a quarter of the cost of an invite.
    """
    return _cached_vtimezone(tzid, *_span(tzid, covering))


@cache
def _vtimezone_bytes(tzid: str, since: int | None, until: int | None) -> bytes:
    ics: bytes = _cached_vtimezone(tzid, since, until).to_ical()
    return ics


# --- VEVENT / VCALENDAR --------------------------------------------------------------------------


def _is_utc(tzid: str) -> bool:
    return tzid in _UTC_ZONES


def _utc(instant: datetime) -> datetime:
    if instant.utcoffset() is None:
        raise ValueError("starts_at and ends_at must be timezone-aware")
    return instant.astimezone(UTC)


def _local(instant: datetime, tzid: str) -> datetime:
    """The instant as a wall time in `tzid`, or in UTC when the wall time would not name it.

    RFC 5545 reads a wall time that happens twice (the hour repeated when clocks go back, e.g. 00:30 on
    Cuba's last night of summer time) as its first occurrence: the second one is written in UTC.
    """
    if _is_utc(tzid):
        return _utc(instant)
    local = _utc(instant).astimezone(ZoneInfo(tzid))
    if local.fold and _utc(local.replace(fold=0)) != _utc(instant):
        return _utc(instant)
    return local


def _check(invite: InviteData) -> None:
    if invite.sequence < 0:
        raise ValueError("sequence must be >= 0")
    if _utc(invite.ends_at) <= _utc(invite.starts_at):
        raise ValueError("ends_at must be after starts_at")


def _organizer(email: str, name: str) -> vCalAddress:
    return vCalAddress.new(_checked_address(email, "organizer_email"), cn=_clean(name) or None)


def _attendee(email: str, name: str | None) -> vCalAddress:
    return vCalAddress.new(
        _checked_address(email, "attendee_email"),
        cn=_clean(name or "") or None,
        role="REQ-PARTICIPANT",
        partstat="NEEDS-ACTION",
        rsvp=False,
    )


def _event(invite: InviteData, *, stamp: datetime, cancelled: bool, with_attendee: bool) -> Event:
    _check(invite)
    event = Event()
    _add_own_properties(event, invite, stamp=stamp, with_attendee=with_attendee)
    _add_shared_properties(event, _SharedProperties.of(invite, cancelled))
    return event


def _add_own_properties(event: Event, invite: InviteData, *, stamp: datetime, with_attendee: bool) -> None:
    """The properties that differ from one person's invite to the next."""
    event.add("UID", _text(invite.uid))
    event.add("SEQUENCE", invite.sequence)
    event.add("DTSTAMP", stamp)
    event.add("DESCRIPTION", _text(invite.description))
    if with_attendee and invite.attendee_email is not None:
        event.add("ATTENDEE", _attendee(invite.attendee_email, invite.attendee_name))
    if invite.url:
        event.add("URL", _checked_address(invite.url, "url"))


class _SharedProperties(NamedTuple):
    """What every invite to the same event (in one language) has in common."""

    summary: str
    location: str
    starts_at: datetime
    ends_at: datetime
    tzid: str
    organizer_email: str
    organizer_name: str
    cancelled: bool

    @classmethod
    def of(cls, invite: InviteData, cancelled: bool) -> _SharedProperties:
        return cls(
            invite.summary,
            invite.location,
            invite.starts_at,
            invite.ends_at,
            invite.timezone,
            invite.organizer_email,
            invite.organizer_name,
            cancelled,
        )


def _add_shared_properties(event: Event, shared: _SharedProperties) -> None:
    """The properties every invite to the same event (in one language) has in common."""
    summary, location, starts_at, ends_at, tzid, organizer_email, organizer_name, cancelled = shared
    event.add("DTSTART", _local(starts_at, tzid))
    event.add("DTEND", _local(ends_at, tzid))
    event.add("SUMMARY", _text(summary))
    event.add("LOCATION", _text(location))
    event.add("STATUS", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("TRANSP", "OPAQUE")
    event.add("ORGANIZER", _organizer(organizer_email, organizer_name))


_PROPERTY_NAME = re.compile(rb"[^;:]+")


def _content_lines(component: Event) -> dict[str, bytes]:
    """A VEVENT's content lines as icalendar writes them (folded, CRLF), by property name."""
    lines: dict[str, bytes] = {}
    name = ""
    for line in component.to_ical().split(b"\r\n")[1:-2]:  # between BEGIN and END (and the last CRLF)
        if line.startswith(b" "):  # a folded line goes on
            lines[name] += line + b"\r\n"
            continue
        found = _PROPERTY_NAME.match(line)
        assert found is not None
        name = found.group().decode("ascii")
        assert name not in lines, f"{name} twice"
        lines[name] = line + b"\r\n"
    return lines


@lru_cache(maxsize=512)
def _shared_lines(shared: _SharedProperties) -> dict[str, bytes]:
    """The shared properties' lines, serialized once per event and language (every email has an invite)."""
    event = Event()
    _add_shared_properties(event, shared)
    return _content_lines(event)


def _vevent(invite: InviteData, *, stamp: datetime, cancelled: bool, with_attendee: bool) -> bytes:
    """The bytes icalendar writes for :func:`_event`'s VEVENT, with the shared lines from a cache."""
    _check(invite)
    own = Event()
    _add_own_properties(own, invite, stamp=stamp, with_attendee=with_attendee)
    lines = {
        **_shared_lines(_SharedProperties.of(invite, cancelled)),
        **_content_lines(own),
    }
    ordered = canonsort_keys(lines, Event.canonical_order)  # icalendar's own order of properties
    return b"".join([b"BEGIN:VEVENT\r\n", *(lines[name] for name in ordered), b"END:VEVENT\r\n"])


def _calendar(method: InviteMethod) -> Calendar:
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", method.value)
    return calendar


def _add_timezones(calendar: Calendar, invites: Iterable[InviteData]) -> None:
    """Each zone's VTIMEZONE once, covering every instant written in it."""
    instants: dict[str, list[datetime]] = {}
    for invite in invites:
        if not _is_utc(invite.timezone):
            instants.setdefault(invite.timezone, []).extend((invite.starts_at, invite.ends_at))
    for tzid, covering in instants.items():
        calendar.add_component(_shared_vtimezone(tzid, covering))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def build_calendar(invite: InviteData, method: InviteMethod) -> bytes:
    """One event as an iTIP message (REQUEST, CANCEL) or a plain published .ics (PUBLISH).

    RFC 5546 wants an ATTENDEE in REQUEST and CANCEL, and none in PUBLISH: a PUBLISH is written
    without one even when the invite names an attendee.
    """
    if method is not InviteMethod.PUBLISH and invite.attendee_email is None:
        raise ValueError(f"METHOD:{method} needs an attendee")
    cancelled = invite.cancelled or method is InviteMethod.CANCEL
    with_attendee = method is not InviteMethod.PUBLISH
    event = _vevent(invite, stamp=_now(), cancelled=cancelled, with_attendee=with_attendee)
    # The bytes icalendar writes for the whole calendar, assembled from parts: the calendar's own
    # lines, each VTIMEZONE and the event's shared lines are serialized once per process.
    parts = [_calendar_head(method)]
    if not _is_utc(invite.timezone):
        span = _span(invite.timezone, (invite.starts_at, invite.ends_at))
        parts.append(_vtimezone_bytes(invite.timezone, *span))
    parts += [event, _CALENDAR_END]
    return b"".join(parts)


_CALENDAR_END = b"END:VCALENDAR\r\n"


@cache
def _calendar_head(method: InviteMethod) -> bytes:
    """The calendar's lines before its components: BEGIN, PRODID, VERSION, CALSCALE, METHOD."""
    ics: bytes = _calendar(method).to_ical()
    assert ics.endswith(_CALENDAR_END)
    return ics.removesuffix(_CALENDAR_END)


def build_feed(events: list[InviteData], name: str) -> bytes:
    """Many events in one published calendar, without attendees; each zone's VTIMEZONE once."""
    calendar = _calendar(InviteMethod.PUBLISH)
    calendar.add("NAME", _text(name))
    calendar.add("X-WR-CALNAME", _text(name))
    _add_timezones(calendar, events)
    stamp = _now()
    for invite in events:
        calendar.add_component(_event(invite, stamp=stamp, cancelled=invite.cancelled, with_attendee=False))
    ics: bytes = calendar.to_ical()
    return ics
