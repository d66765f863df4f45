"""Zoom webinar attendee reports and Microsoft Teams attendance reports: who attended, for how long.

A pure library: bytes in, an :class:`AttendanceReport` out. Nothing is read from disk or the network.

Both exports are awkward CSV files, and the same report comes in several variants:

* **Encoding and delimiter.** Teams writes UTF-16 (LE or BE, with a BOM) separated by TABs, Zoom
  writes UTF-8 separated by commas; a file saved again by a spreadsheet can be anything. The
  encoding is decided by the BOM (then UTF-8, then cp1252) and the delimiter by which one turns a
  line into a recognisable header row. NUL characters are dropped.
* **Sections.** A Zoom report is several tables, each after a one-cell title line (``Host Details``,
  ``Panelist Details``, ``Attendee Details``, ``Other Attended``) with its own header row. A Teams
  report has numbered sections (``1. Summary``, ``2. Participants``, ``3. In-Meeting Activities``,
  ...) whose titles are translated, so tables are recognised by their header columns, never by the
  title text. Columns are always looked up by name.
* **Minutes.** A person's minutes are the length of the union of their join/leave intervals
  (overlapping devices counted once). Zoom's rounded ``Time in Session`` and Teams' durations are
  only compared against the intervals, and a disagreement becomes a warning.
* **People.** Rows are merged by trimmed, lower-cased email. Rows without an email are never merged
  (one entry per row), and names are never used to match anybody. Teams' UPN is not an email.
* **Times** carry no zone: the caller says which IANA zone the wall-clock times are in. Dates such
  as ``9/10/26`` are read month-first or day-first only when the file itself or the scheduled
  event date decides it; otherwise :class:`ReportError` is raised rather than guessing.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# ---------------------------------------------------------------------------------------------------
# Public types


class ReportFormat(StrEnum):
    ZOOM = "zoom"
    TEAMS = "teams"


@dataclass(frozen=True, slots=True)
class Segment:
    """One connection, as aware UTC datetimes."""

    join: datetime
    leave: datetime


@dataclass(frozen=True, slots=True)
class PersonAttendance:
    email: str | None
    display_name: str
    role: str
    segments: tuple[Segment, ...]

    @property
    def minutes(self) -> float:
        """Length of the union of the segments, in minutes: overlapping connections count once."""
        return _union_seconds(self.segments) / 60


@dataclass(frozen=True, slots=True)
class AttendanceReport:
    format: ReportFormat
    title: str | None
    people: tuple[PersonAttendance, ...]
    staff: tuple[PersonAttendance, ...]
    warnings: tuple[str, ...]


class ReportError(ValueError):
    """The file cannot be read as an attendance report; the message says why."""


def detect_format(raw: bytes) -> ReportFormat:
    """Zoom or Teams, from the file's structure (section lines and header columns)."""
    return _detect(_load(raw).rows)


def parse_report(
    raw: bytes, zone: str, event_date: date | None = None, fmt: ReportFormat | None = None
) -> AttendanceReport:
    """Read a Zoom attendee report or a Teams attendance report.

    ``zone`` is the IANA zone of the file's wall-clock times (Zoom: the profile zone of the user who
    generated the report; Teams: the zone of the client that downloaded it). ``event_date`` is the
    scheduled date; it decides month-first against day-first when the dates alone cannot.
    """
    tz = _zone(zone)
    loaded = _load(raw)
    fmt = fmt or _detect(loaded.rows)
    parser = _parse_zoom if fmt is ReportFormat.ZOOM else _parse_teams
    ctx = _Context(tz=tz, event_date=event_date, warnings=list(loaded.notes))
    title, people, staff = parser(loaded.rows, ctx)
    return AttendanceReport(format=fmt, title=title, people=people, staff=staff, warnings=tuple(ctx.warnings))


# ---------------------------------------------------------------------------------------------------
# Intervals


def _union_seconds(segments: Iterable[Segment]) -> float:
    total = 0.0
    current: Segment | None = None
    for seg in sorted(segments, key=lambda s: (s.join, s.leave)):
        if current is None or seg.join > current.leave:
            total += _seconds(current)
            current = seg
        elif seg.leave > current.leave:
            current = Segment(current.join, seg.leave)
    return total + _seconds(current)


def _seconds(segment: Segment | None) -> float:
    return 0.0 if segment is None else (segment.leave - segment.join).total_seconds()


# ---------------------------------------------------------------------------------------------------
# Bytes to rows: encoding, NUL bytes, delimiter

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_NOT_CSV: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?); export the report as CSV"),
    (b"%PDF", "a PDF document; download the report as CSV"),
)
_DELIMITERS = (",", "\t", ";")
_INVISIBLE = str.maketrans({"\ufeff": None, "\u200e": None, "\u200f": None})


@dataclass(frozen=True, slots=True)
class _Loaded:
    rows: list[list[str]]
    notes: tuple[str, ...]


def _load(raw: bytes) -> _Loaded:
    text, notes = _decode(raw)
    nuls = text.count("\x00")
    if nuls:
        text = text.replace("\x00", "")
        notes.append(f"removed {nuls} NUL character(s) from the file")
    text = text.translate(_INVISIBLE)
    return _Loaded(rows=_split_rows(text), notes=tuple(notes))


def _decode(raw: bytes) -> tuple[str, list[str]]:
    if not raw.strip(b"\x00 \t\r\n"):
        raise ReportError("the file is empty")
    for magic, what in _NOT_CSV:
        if raw.startswith(magic):
            raise ReportError(f"the file is {what}")
    codec = _bom_codec(raw) or _bomless_utf16(raw)
    if codec is not None:
        return _decode_with(raw, codec), []
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError:
        return _decode_with(raw, "cp1252"), ["the file is not UTF-8; read it as Windows-1252"]


def _bom_codec(raw: bytes) -> str | None:
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return codec + "-sig" if codec == "utf-8" else codec
    return None


def _bomless_utf16(raw: bytes) -> str | None:
    """UTF-16 without a BOM: ASCII text leaves a NUL in every other byte."""
    sample = raw[:400]
    half = len(sample) // 2
    if half < 8:
        return None
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    if odd_nuls > 0.6 * half and even_nuls < 0.1 * half:
        return "utf-16-le"
    if even_nuls > 0.6 * half and odd_nuls < 0.1 * half:
        return "utf-16-be"
    return None


def _decode_with(raw: bytes, codec: str) -> str:
    if codec.startswith("utf-16"):
        raw = raw[2:] if _bom_codec(raw) else raw
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise ReportError(f"the file cannot be decoded as {codec}: {exc.reason} at byte {exc.start}") from exc


def _split_rows(text: str) -> list[list[str]]:
    best: list[list[str]] = []
    best_score = 0
    for delimiter in _DELIMITERS:
        rows = _csv_rows(text, delimiter)
        score = max((_header_score(row) for row in rows), default=0)
        if score > best_score:
            best, best_score = rows, score
    if best_score < 2:
        raise ReportError(
            "not a Zoom or Teams attendance report: no header row with known column names "
            "(such as 'Join Time', 'Email', 'User Name') was found"
        )
    return best


def _csv_rows(text: str, delimiter: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise ReportError(f"the file is not valid delimited text: {exc}") from exc


def _header_score(row: Sequence[str]) -> int:
    return sum(1 for cell in row if _norm(cell) in _KNOWN_HEADERS)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _cells(row: Sequence[str]) -> list[str]:
    """The row's cells, stripped, without the trailing empty cells that comma padding leaves."""
    cells = [cell.strip() for cell in row]
    while cells and not cells[-1]:
        cells.pop()
    return cells


# ---------------------------------------------------------------------------------------------------
# Column names (normalised with _norm)


def _aliases(**fields: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {key: tuple(_norm(name) for name in names) for key, names in fields.items()}


_ZOOM_COLUMNS = _aliases(
    attended=("Attended", "Teilgenommen"),
    name=(
        "User Name (Original Name)",
        "Name (Original Name)",
        "Name (ursprünglicher Name)",
        "User Name",
        "Name",
    ),
    first_name=("First Name", "Vorname"),
    last_name=("Last Name", "Nachname"),
    email=("Email", "E-Mail", "User Email"),
    join=("Join Time", "Beitrittszeit"),
    leave=("Leave Time", "Austrittszeit"),
    minutes=("Time in Session (minutes)", "Duration (Minutes)", "Dauer (Minuten)"),
)
_TEAMS_COLUMNS = _aliases(
    name=("Name", "Full Name", "Nome"),
    first_join=("First Join", "Primeiro ingresso"),
    last_leave=("Last Leave", "Última saída"),
    join=("Join Time",),
    leave=("Leave Time",),
    duration=("In-Meeting Duration", "Duration", "Duração na reunião"),
    email=("Email", "E-Mail"),
    upn=("Participant ID (UPN)", "ID do participante (UPN)"),
    role=("Role", "Função"),
    action=("User Action",),
    timestamp=("Timestamp",),
)
_KNOWN_HEADERS = frozenset(
    name for columns in (_ZOOM_COLUMNS, _TEAMS_COLUMNS) for names in columns.values() for name in names
)
_TEAMS_ROLES = {
    "organiser": "organizer",
    "organizador": "organizer",
    "apresentador": "presenter",
    "participante": "attendee",
}
_MISSING = frozenset({"", "--"})


def _columns(header: Sequence[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Field key -> column index, for the fields this header has (the first matching column wins)."""
    names = [_norm(cell) for cell in header]
    found: dict[str, int] = {}
    for key, options in aliases.items():
        for option in options:
            if option in names:
                found[key] = names.index(option)
                break
    return found


@dataclass(frozen=True, slots=True)
class _Table:
    """A header row and the data rows under it; ``title`` is the one-cell line above the header."""

    title: str | None
    columns: dict[str, int]
    rows: list[list[str]] = field(default_factory=list)

    def get(self, row: Sequence[str], key: str) -> str:
        """The cell, stripped; '' when the column is absent, the row is short, or the cell is '--'."""
        index = self.columns.get(key)
        if index is None or index >= len(row):
            return ""
        value = row[index].strip()
        return "" if value in _MISSING else value


# ---------------------------------------------------------------------------------------------------
# Format detection

_NUMBERED_TITLE = re.compile(r"^\d{1,2}\.\s*\S")
_ZOOM_MARKERS = frozenset(
    _norm(text)
    for text in (
        "Attendee Report",
        "Host Details",
        "Panelist Details",
        "Attendee Details",
        "Other Attended",
        "Report Generated:",
        "Report generated time",
        "Time in Session (minutes)",
        "Dauer (Minuten)",
        "Duration (Minutes)",
        "Attended",
        "User Name (Original Name)",
        "Name (ursprünglicher Name)",
        "User Name",
        "Is Guest",
    )
)
_TEAMS_MARKERS = frozenset(
    _norm(text)
    for text in (
        "Meeting Summary",
        "Total Number of Participants",
        "Meeting title",
        "Participant ID (UPN)",
        "ID do participante (UPN)",
        "In-Meeting Duration",
        "First Join",
        "Primeiro ingresso",
        "Full Name",
        "User Action",
    )
)


def _detect(rows: Sequence[Sequence[str]]) -> ReportFormat:
    zoom = teams = 0
    for row in rows:
        cells = _cells(row)
        if len(cells) == 1 and _NUMBERED_TITLE.match(cells[0]):
            teams += 1
        names = {_norm(cell) for cell in cells}
        zoom += len(names & _ZOOM_MARKERS)
        teams += len(names & _TEAMS_MARKERS)
    if zoom == teams:
        raise ReportError("cannot tell whether this is a Zoom or a Teams report; choose the format")
    return ReportFormat.ZOOM if zoom > teams else ReportFormat.TEAMS


# ---------------------------------------------------------------------------------------------------
# Timestamps

_SLASH = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2}),?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]\.?\s?m\.?)?$", re.I
)
_DOTTED = re.compile(
    r"^(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2}),?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]m)?$", re.I
)
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$")
_MONTH_NAME = re.compile(
    r"^([a-z]{3})[a-z]*\.?\s+(\d{1,2}),\s*(\d{4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]m)?$", re.I
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


@dataclass(frozen=True, slots=True)
class _Stamp:
    """A timestamp split into numbers; for slash dates ``first``/``second`` are not yet month/day."""

    first: int
    second: int
    year: int
    hour: int
    minute: int
    sec: int
    slash: bool


def _clean_stamp(text: str) -> str:
    return " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())


def _split_stamp(text: str) -> _Stamp:
    cleaned = _clean_stamp(text)
    for pattern, build in _STAMP_PARSERS:
        match = pattern.match(cleaned)
        if match:
            return build(match)
    raise ReportError(f"unrecognised date/time {text!r}")


def _hour(hour: str, meridiem: str | None) -> int:
    value = int(hour)
    if meridiem is None:
        return value
    pm = meridiem.lower().startswith("p")
    return value % 12 + (12 if pm else 0)


def _year(text: str) -> int:
    return int(text) + (2000 if len(text) == 2 else 0)


def _from_slash(m: re.Match[str]) -> _Stamp:
    a, b, y, h, mi, s, ampm = m.groups()
    return _Stamp(int(a), int(b), _year(y), _hour(h, ampm), int(mi), int(s or 0), slash=True)


def _from_dotted(m: re.Match[str]) -> _Stamp:
    d, mo, y, h, mi, s, ampm = m.groups()
    return _Stamp(int(mo), int(d), _year(y), _hour(h, ampm), int(mi), int(s or 0), slash=False)


def _from_iso(m: re.Match[str]) -> _Stamp:
    y, mo, d, h, mi, s = m.groups()
    return _Stamp(int(mo), int(d), int(y), int(h), int(mi), int(s or 0), slash=False)


def _from_month_name(m: re.Match[str]) -> _Stamp:
    name, d, y, h, mi, s, ampm = m.groups()
    month = _MONTHS.get(name.lower())
    if month is None:
        raise ReportError(f"unknown month name in {m.string!r}")
    return _Stamp(month, int(d), int(y), _hour(h, ampm), int(mi), int(s or 0), slash=False)


_STAMP_PARSERS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], _Stamp]], ...] = (
    (_SLASH, _from_slash),
    (_DOTTED, _from_dotted),
    (_ISO, _from_iso),
    (_MONTH_NAME, _from_month_name),
)


def _stamp_date(stamp: _Stamp, day_first: bool) -> date | None:
    month, day = (stamp.second, stamp.first) if day_first and stamp.slash else (stamp.first, stamp.second)
    try:
        return date(stamp.year, month, day)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Clock:
    """Turns the file's wall-clock timestamps into UTC, with the file's day/month order."""

    tz: ZoneInfo
    day_first: bool

    def to_utc(self, text: str) -> datetime:
        stamp = _split_stamp(text)
        day = _stamp_date(stamp, self.day_first)
        if day is None:
            raise ReportError(f"impossible date {text!r}")
        try:
            local = datetime(
                day.year, day.month, day.day, stamp.hour, stamp.minute, stamp.sec, tzinfo=self.tz
            )
        except ValueError as exc:
            raise ReportError(f"impossible time {text!r}") from exc
        # fold=0 (the default): a time skipped or repeated by a DST change gets the offset from before it.
        return local.astimezone(UTC)


@dataclass
class _Context:
    tz: ZoneInfo
    event_date: date | None
    warnings: list[str]

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def clock(self, texts: Iterable[str], month_first_by_default: bool) -> _Clock:
        stamps = [_split_stamp(text) for text in texts if text]
        day_first = _day_first(stamps, self.event_date, month_first_by_default)
        self._check_event_date(stamps, day_first)
        return _Clock(tz=self.tz, day_first=day_first)

    def _check_event_date(self, stamps: Sequence[_Stamp], day_first: bool) -> None:
        if self.event_date is None or not stamps:
            return
        days = sorted({d for d in (_stamp_date(s, day_first) for s in stamps) if d is not None})
        if not _near(days, self.event_date):
            self.warn(
                f"the report's dates ({days[0]} to {days[-1]}) differ from the event date {self.event_date}"
            )


def _near(days: Iterable[date], event_date: date) -> bool:
    return all(abs(day - event_date) <= timedelta(days=1) for day in days)


def _day_first(stamps: Sequence[_Stamp], event_date: date | None, month_first_by_default: bool) -> bool:
    """Whether slash dates are day/month: decided by the dates themselves, else by the event date."""
    slash = [s for s in stamps if s.slash and s.first != s.second]
    if not slash:
        return False
    fits = {order: _all_valid(slash, order) for order in (False, True)}
    if fits[False] != fits[True]:
        return fits[True]
    if not fits[False]:
        raise ReportError("the dates fit neither month/day nor day/month order")
    if event_date is not None:
        near = {order: _near(_dates(slash, order), event_date) for order in (False, True)}
        if near[False] != near[True]:
            return near[True]
        if not near[False]:
            raise ReportError(
                f"the dates match the event date {event_date} in neither month/day nor day/month order"
            )
    if month_first_by_default:
        return False
    sample = slash[0]
    raise ReportError(
        f"dates such as {sample.first}/{sample.second}/{sample.year} can be month/day or day/month; "
        "give the event's date so the order can be decided"
    )


def _dates(stamps: Iterable[_Stamp], day_first: bool) -> list[date]:
    return [d for d in (_stamp_date(s, day_first) for s in stamps) if d is not None]


def _all_valid(stamps: Iterable[_Stamp], day_first: bool) -> bool:
    return all(_stamp_date(s, day_first) is not None for s in stamps)


def _zone(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ReportError(f"unknown time zone {zone!r}") from exc


# ---------------------------------------------------------------------------------------------------
# Rows to people


@dataclass(frozen=True, slots=True)
class _Entry:
    """One row's contribution to a person: merged with others by email, never by name."""

    email: str | None
    name: str
    role: str
    segment: Segment | None


def _email(value: str) -> str | None:
    value = value.strip().lower()
    return value if "@" in value else None


def _segment(join: datetime, leave: datetime, who: str, ctx: _Context) -> Segment | None:
    if leave < join:
        ctx.warn(f"{who}: leave time {leave:%Y-%m-%d %H:%M:%S}Z is before join time; row ignored")
        return None
    return Segment(join=join, leave=leave)


def _merge(entries: Iterable[_Entry]) -> tuple[PersonAttendance, ...]:
    """One person per distinct email (first name and role seen win), one per email-less row."""
    groups: dict[str | int, list[_Entry]] = {}
    for index, entry in enumerate(entries):
        groups.setdefault(entry.email if entry.email is not None else index, []).append(entry)
    return tuple(_person(group) for group in groups.values())


def _person(group: Sequence[_Entry]) -> PersonAttendance:
    first = group[0]
    segments = sorted((e.segment for e in group if e.segment), key=lambda s: (s.join, s.leave))
    name = next((e.name for e in group if e.name), "")
    return PersonAttendance(email=first.email, display_name=name, role=first.role, segments=tuple(segments))


# ---------------------------------------------------------------------------------------------------
# Zoom

_ZOOM_STAFF_WORDS = {"host": ("host", "gastgeber"), "panelist": ("panelist", "diskussionsteilnehmer")}
_ZOOM_ATTENDEE_TITLES = frozenset(_norm(t) for t in ("Attendee Details", "Other Attended", "Attendees"))
_ZOOM_TOPIC = frozenset(_norm(t) for t in ("Topic", "Thema"))
#: Time in Session is each segment rounded up to a minute, so it is within a minute of the exact length.
_ZOOM_MINUTES_TOLERANCE = 1.0

_Parsed = tuple[str | None, tuple[PersonAttendance, ...], tuple[PersonAttendance, ...]]


def _parse_zoom(rows: Sequence[Sequence[str]], ctx: _Context) -> _Parsed:
    tables = _zoom_tables(rows)
    if not tables:
        raise ReportError("no Zoom participant table (a header with Join Time and Leave Time) was found")
    clock = ctx.clock(_table_values(tables, ("join", "leave")), month_first_by_default=True)
    people: list[_Entry] = []
    staff: list[_Entry] = []
    for table in tables:
        role = _zoom_role(table.title, ctx)
        target = people if role == "attendee" else staff
        target.extend(_zoom_entry(table, row, role, clock, ctx) for row in table.rows)
    return _zoom_title(rows), _merge(people), _merge(staff)


def _zoom_tables(rows: Sequence[Sequence[str]]) -> list[_Table]:
    """Each header row starts a table; its title is the line just above it when that has one cell."""
    tables: list[_Table] = []
    previous: list[str] = []
    current: _Table | None = None
    for row in rows:
        cells = _cells(row)
        if not cells:
            continue
        columns = _columns(cells, _ZOOM_COLUMNS)
        if _is_zoom_header(columns):
            current = _Table(title=previous[0] if len(previous) == 1 else None, columns=columns)
            tables.append(current)
        elif len(cells) == 1:
            current = None
        elif current is not None:
            current.rows.append(list(row))
        previous = cells
    return tables


def _is_zoom_header(columns: dict[str, int]) -> bool:
    named = any(key in columns for key in ("name", "first_name", "email"))
    return named and "join" in columns and "leave" in columns


def _zoom_role(title: str | None, ctx: _Context) -> str:
    if title is None:
        return "attendee"
    key = _norm(title).rstrip(":")
    for role, words in _ZOOM_STAFF_WORDS.items():
        if any(word in key for word in words):
            return role
    if key not in _ZOOM_ATTENDEE_TITLES:
        ctx.warn(f"unknown Zoom section {title!r}: its rows were read as attendees")
    return "attendee"


def _zoom_entry(table: _Table, row: Sequence[str], role: str, clock: _Clock, ctx: _Context) -> _Entry:
    name = _zoom_name(table, row)
    email = _email(table.get(row, "email"))
    who = email or name or "a row without name or email"
    join, leave = table.get(row, "join"), table.get(row, "leave")
    segment = None
    if join and leave:
        segment = _segment(clock.to_utc(join), clock.to_utc(leave), who, ctx)
    elif _norm(table.get(row, "attended")) == "yes":
        ctx.warn(f"{who}: marked as attended but the join or leave time is missing")
    if segment is not None:
        _check_zoom_minutes(table.get(row, "minutes"), segment, who, ctx)
    return _Entry(email=email, name=name, role=role, segment=segment)


def _zoom_name(table: _Table, row: Sequence[str]) -> str:
    """The registration name (First + Last) when the table has it, else the user name."""
    registered = " ".join(p for p in (table.get(row, "first_name"), table.get(row, "last_name")) if p)
    return registered or table.get(row, "name")


def _check_zoom_minutes(declared: str, segment: Segment, who: str, ctx: _Context) -> None:
    if not declared:
        return
    exact = _seconds(segment) / 60
    try:
        minutes = float(declared)
    except ValueError:
        ctx.warn(f"{who}: unreadable Time in Session {declared!r}")
        return
    if abs(minutes - exact) > _ZOOM_MINUTES_TOLERANCE:
        ctx.warn(f"{who}: Time in Session says {declared} min but join/leave give {exact:.2f} min")


def _zoom_title(rows: Sequence[Sequence[str]]) -> str | None:
    """The value under the preamble's Topic column."""
    non_blank = [cells for cells in (_cells(row) for row in rows) if cells]
    for header, values in itertools.pairwise(non_blank):
        names = [_norm(cell) for cell in header]
        index = next((i for i, name in enumerate(names) if name in _ZOOM_TOPIC), None)
        if index is not None and index < len(values):
            return values[index] or None
    return None


def _table_values(tables: Iterable[_Table], keys: Sequence[str]) -> list[str]:
    return [table.get(row, key) for table in tables for row in table.rows for key in keys]


# ---------------------------------------------------------------------------------------------------
# Teams

_TEAMS_TITLE_KEYS = frozenset(_norm(t) for t in ("Meeting title", "Meeting Title", "Título da reunião"))
#: Teams durations are whole seconds; allow for one second of rounding at each end.
_TEAMS_SECONDS_TOLERANCE = 2.0
_DURATION = re.compile(r"^(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?$", re.I)
_CLOCK_DURATION = re.compile(r"^(\d+):(\d{2}):(\d{2})$")


class _Kind(StrEnum):
    ACTIVITIES = "activities"  # one row per join: Join Time / Leave Time
    PARTICIPANTS = "participants"  # one row per person: First Join / Last Leave
    EVENTS = "events"  # 2020 log: User Action (Joined / Left) / Timestamp


def _teams_kind(columns: dict[str, int]) -> _Kind | None:
    if "name" not in columns and "email" not in columns:
        return None
    if "join" in columns and "leave" in columns:
        return _Kind.ACTIVITIES
    if "first_join" in columns and "last_leave" in columns:
        return _Kind.PARTICIPANTS
    if "action" in columns and "timestamp" in columns:
        return _Kind.EVENTS
    return None


def _parse_teams(rows: Sequence[Sequence[str]], ctx: _Context) -> _Parsed:
    tables = _teams_tables(rows)
    keys = ("join", "leave", "first_join", "last_leave", "timestamp")
    clock = ctx.clock(_table_values(_flatten(tables), keys), month_first_by_default=False)
    activities, participants = tables[_Kind.ACTIVITIES], tables[_Kind.PARTICIPANTS]
    if activities:
        entries = _teams_from_activities(activities, participants, clock, ctx)
    elif participants:
        entries = _teams_from_participants(participants, clock, ctx)
    elif tables[_Kind.EVENTS]:
        entries = _teams_from_events(tables[_Kind.EVENTS], clock, ctx)
    else:
        raise ReportError(
            "no Teams participant table (Name with Join Time/Leave Time or First Join/Last Leave)"
        )
    return _teams_title(rows), _merge(entries), ()


def _flatten(tables: dict[_Kind, list[_Table]]) -> list[_Table]:
    return [table for group in tables.values() for table in group]


def _teams_tables(rows: Sequence[Sequence[str]]) -> dict[_Kind, list[_Table]]:
    """The tables by kind; a blank line or a numbered section title ends a table."""
    tables: dict[_Kind, list[_Table]] = {kind: [] for kind in _Kind}
    current: _Table | None = None
    for row in rows:
        cells = _cells(row)
        if not cells or (len(cells) == 1 and _NUMBERED_TITLE.match(cells[0])):
            current = None
            continue
        columns = _columns(cells, _TEAMS_COLUMNS)
        kind = _teams_kind(columns)
        if kind is not None:
            current = _Table(title=None, columns=columns)
            tables[kind].append(current)
        elif current is not None:
            current.rows.append(list(row))
    return tables


def _teams_title(rows: Sequence[Sequence[str]]) -> str | None:
    for row in rows:
        cells = _cells(row)
        if len(cells) >= 2 and _norm(cells[0]) in _TEAMS_TITLE_KEYS:
            return cells[1]
    return None


def _teams_role(table: _Table, row: Sequence[str]) -> str:
    role = _norm(table.get(row, "role")) or "attendee"
    return _TEAMS_ROLES.get(role, role)


def _warn_upn_only(table: _Table, row: Sequence[str], ctx: _Context) -> None:
    """A UPN is a sign-in identifier, not an email: a row with only a UPN stays unmatched."""
    if table.get(row, "upn"):
        ctx.warn(f"{table.get(row, 'name')}: no Email, only a Participant ID (UPN); left unmatched")


def _teams_row(
    table: _Table, row: Sequence[str], start: str, end: str, clock: _Clock, ctx: _Context
) -> _Entry:
    name = table.get(row, "name")
    email = _email(table.get(row, "email"))
    if email is None:
        _warn_upn_only(table, row, ctx)
    who = email or name or "a row without name or email"
    segment = None
    if table.get(row, start) and table.get(row, end):
        join, leave = clock.to_utc(table.get(row, start)), clock.to_utc(table.get(row, end))
        segment = _segment(join, leave, who, ctx)
    else:
        ctx.warn(f"{who}: join or leave time missing")
    return _Entry(email=email, name=name, role=_teams_role(table, row), segment=segment)


def _teams_from_activities(
    activities: Sequence[_Table], participants: Sequence[_Table], clock: _Clock, ctx: _Context
) -> list[_Entry]:
    entries: list[_Entry] = []
    for table in activities:
        for row in table.rows:
            entry = _teams_row(table, row, "join", "leave", clock, ctx)
            _check_teams_duration(table.get(row, "duration"), entry, ctx)
            entries.append(entry)
    return entries + _participants_missing(activities, participants, clock, ctx)


def _teams_from_participants(participants: Sequence[_Table], clock: _Clock, ctx: _Context) -> list[_Entry]:
    ctx.warn(
        "no In-Meeting Activities section: each person's time is First Join to Last Leave, gaps included"
    )
    return [
        _teams_row(t, row, "first_join", "last_leave", clock, ctx) for t in participants for row in t.rows
    ]


def _teams_from_events(events: Sequence[_Table], clock: _Clock, ctx: _Context) -> list[_Entry]:
    """The 2020 log: each Joined is paired with the next Left under the same name. It has no emails."""
    ctx.warn("Teams join/leave log without an Email column: every connection is unmatched")
    entries: list[_Entry] = []
    for table in events:
        open_joins: dict[str, datetime] = {}
        for row in table.rows:
            name, action = table.get(row, "name"), _norm(table.get(row, "action"))
            when = clock.to_utc(table.get(row, "timestamp"))
            if action.startswith("join"):
                open_joins.setdefault(name, when)
            elif action.startswith("left") and name in open_joins:
                segment = _segment(open_joins.pop(name), when, name, ctx)
                entries.append(_Entry(email=None, name=name, role="attendee", segment=segment))
        for name in open_joins:
            ctx.warn(f"{name}: joined but never left in the log; that connection is ignored")
    return entries


def _duration_seconds(text: str) -> float | None:
    """Teams durations ('1h 4m 2s', '59m', '0s', or '01:04:02'); None when unreadable."""
    cleaned = text.strip()
    match = _CLOCK_DURATION.match(cleaned) or _DURATION.match(cleaned)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def _check_teams_duration(declared: str, entry: _Entry, ctx: _Context) -> None:
    seconds = _duration_seconds(declared)
    if seconds is None or entry.segment is None:
        return
    exact = _seconds(entry.segment)
    if abs(seconds - exact) > _TEAMS_SECONDS_TOLERANCE:
        ctx.warn(
            f"{entry.email or entry.name}: Duration {declared!r} differs from join/leave ({exact:.0f} s)"
        )


def _durations_by_email(tables: Iterable[_Table]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for table in tables:
        for row in table.rows:
            email = _email(table.get(row, "email"))
            seconds = _duration_seconds(table.get(row, "duration"))
            if email is not None:
                totals[email] = totals.get(email, 0.0) + (seconds or 0.0)
    return totals


def _participants_missing(
    activities: Sequence[_Table], participants: Sequence[_Table], clock: _Clock, ctx: _Context
) -> list[_Entry]:
    """Checks section 2 against section 3; a person missing from section 3 keeps section 2's span."""
    in_activities = _durations_by_email(activities)
    _compare_durations(_durations_by_email(participants), in_activities, ctx)
    missing: list[_Entry] = []
    for table in participants:
        for row in table.rows:
            email = _email(table.get(row, "email"))
            if email is None:
                _warn_upn_only(table, row, ctx)
            elif email not in in_activities:
                ctx.warn(f"{email}: not in In-Meeting Activities; First Join to Last Leave used")
                missing.append(_teams_row(table, row, "first_join", "last_leave", clock, ctx))
    return missing


def _compare_durations(participants: dict[str, float], activities: dict[str, float], ctx: _Context) -> None:
    for email, total in participants.items():
        joined = activities.get(email)
        if joined is not None and abs(total - joined) > _TEAMS_SECONDS_TOLERANCE:
            ctx.warn(
                f"{email}: In-Meeting Duration is {total:.0f} s but the activities add up to {joined:.0f} s"
            )
