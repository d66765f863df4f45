"""One instant, every surface: the page, the API, the email, the invites, the calendar links and the CSV.

A Hypothesis property over random instants and every zone the organisers are offered first (the 18
partner countries' zones and Madrid, Brussels and Lisbon), plus explicit examples around the
daylight-saving changes of Europe, Chile, Paraguay, Mexico (historical: it stopped in 2022) and Cuba
(whose clocks change at midnight, so a night has a skipped and a repeated half hour).

One app, one SQLite database and one SMTP server serve every example: each example re-times the same
event (instant, duration, zone) and the registrant's language, then reads each surface back and checks
it names the instant by itself (the page's and the email's wall time are checked against Babel's
formatting of the wall time zoneinfo gives, together with the UTC offset the label states; the .ics is
resolved through its own VTIMEZONE, not through the zone's name).
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from babel import Locale, dates
from conftest import SmtpServer, add_event, create_user, login, make_settings, submit_registration
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from icalendar import Calendar, Component, Timezone
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_manage_events import submit_edit

from events_app.db.models import Event, Registration, Role
from events_app.domain.attendees.exports import COLUMN_HEADERS
from events_app.domain.events.manage_schemas import PARTNER_ZONES, LocalTimeError, parse_local
from events_app.domain.registrations.notifications import message_id_domain
from events_app.domain.registrations.services import MailKind, TokenSettings, queue_registration_mail
from events_app.lib.i18n import SUPPORTED_LANGUAGES
from events_app.lib.outbox import OutboxWorker
from events_app.settings import Settings

ZONES = PARTNER_ZONES
EARLIEST = datetime(2000, 1, 1)
LATEST = datetime(2040, 12, 31)
SLUG = "time-zones"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: the property is about time arithmetic, which the database stores as UTC either way."""
    return sqlite_url


@pytest.fixture
def settings(tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> Settings:
    """Registrants of events back to 2000 keep their data: the retention job must not erase them."""
    return make_settings(tmp_path, database_url, smtp_server.port, retention_days=100 * 366)


def test_the_partner_zones_cover_the_partner_countries() -> None:
    expected = {
        "America/Argentina/Buenos_Aires", "America/La_Paz", "America/Sao_Paulo", "America/Santiago",
        "America/Bogota", "America/Costa_Rica", "America/Havana", "America/Santo_Domingo",
        "America/Guayaquil", "America/El_Salvador", "America/Guatemala", "America/Tegucigalpa",
        "America/Mexico_City", "America/Panama", "America/Asuncion", "America/Lima",
        "America/Montevideo", "America/Caracas", "Europe/Madrid", "Europe/Brussels", "Europe/Lisbon",
    }  # fmt: skip
    assert expected <= set(ZONES)


# --- independent helpers -------------------------------------------------------------------------


def offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'+' if minutes >= 0 else '-'}{hours}" + (f":{rest:02d}" if rest else "")


def wall_text(instant: datetime, zone: str, language: str) -> tuple[str, str]:
    """(Babel's "full date, short time" of the wall time zoneinfo gives, the offset as "UTC-5")."""
    local = instant.astimezone(ZoneInfo(zone))
    locale = Locale.parse(language)
    naive = local.replace(tzinfo=None)
    text = f"{dates.format_date(naive.date(), 'full', locale=locale)}, "
    text += dates.format_time(naive.time(), "short", locale=locale)
    offset = local.utcoffset()
    assert offset is not None
    return text, offset_text(offset)


def wall_plus_offset(wall: datetime, offset: str) -> datetime:
    """The instant that a wall time and a stated "UTC-3" / "UTC+5:30" name."""
    found = re.fullmatch(r"UTC([+-])(\d+)(?::(\d\d))?", offset)
    assert found, offset
    delta = timedelta(hours=int(found.group(2)), minutes=int(found.group(3) or 0))
    return (wall - (delta if found.group(1) == "+" else -delta)).replace(tzinfo=UTC)


def transitions(zone: str, first_year: int, last_year: int) -> list[datetime]:
    """Every change of UTC offset of `zone` in those years (sampled hourly, bisected to the minute)."""
    tz = ZoneInfo(zone)
    found = []
    instant = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    while instant < end:
        later = instant + timedelta(hours=1)
        if instant.astimezone(tz).utcoffset() != later.astimezone(tz).utcoffset():
            low, high = instant, later
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if middle.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(second=0, microsecond=0))
        instant = later
    return found


#: The daylight-saving changes the examples straddle: (zone, year).
DST_CHANGES = [
    ("Europe/Madrid", 2027),
    ("Europe/Brussels", 2027),
    ("Europe/Lisbon", 2027),
    ("America/Santiago", 2026),
    ("America/Asuncion", 2023),  # Paraguay's last change to summer time (October 2023) ...
    ("America/Asuncion", 2024),  # ... and back (March 2024); it has kept UTC-3 since October 2024
    ("America/Mexico_City", 2021),  # Mexico kept summer time until October 2022
    ("America/Mexico_City", 2022),
    ("America/Havana", 2026),  # midnight changes: 00:30 is skipped in March and repeated in November
]


def dst_examples() -> Iterator[tuple[datetime, str, int, str]]:
    """Around each change: the minute before, the minute of, half an hour after, and an event across it."""
    languages = list(SUPPORTED_LANGUAGES)
    count = 0
    for zone, year in DST_CHANGES:
        for change in transitions(zone, year, year):
            for start, minutes in (
                (change - timedelta(minutes=1), 60),
                (change, 90),
                (change + timedelta(minutes=30), 45),
                (change - timedelta(hours=1), 180),
            ):
                yield start, zone, minutes, languages[count % len(languages)]
                count += 1


def test_the_examples_straddle_real_changes() -> None:
    """The explicit examples are not vacuous: each listed year has its change(s) in the tz database."""
    assert transitions("America/Mexico_City", 2023, 2026) == []  # no summer time since 2022
    assert len(transitions("America/Mexico_City", 2022, 2022)) == 2
    assert len(transitions("America/Havana", 2026, 2026)) == 2
    assert len(transitions("America/Asuncion", 2023, 2023)) == 2
    assert len(transitions("Europe/Lisbon", 2027, 2027)) == 2
    assert len(transitions("America/Santiago", 2026, 2026)) == 2
    havana_back = transitions("America/Havana", 2026, 2026)[1]
    first = (havana_back - timedelta(minutes=30)).astimezone(ZoneInfo("America/Havana"))
    second = (havana_back + timedelta(minutes=30)).astimezone(ZoneInfo("America/Havana"))
    assert first.replace(tzinfo=None) == second.replace(tzinfo=None)  # the same wall time twice


F = TypeVar("F", bound=Callable[..., Any])


def with_dst_examples(test: F) -> F:
    for start, zone, minutes, language in dst_examples():
        test = example(start=start, zone=zone, minutes=minutes, language=language)(test)
    return test


# --- reading each surface --------------------------------------------------------------------------


def ics_instant(calendar: Calendar, event: Component, name: str) -> datetime:
    """DTSTART/DTEND through the calendar's own VTIMEZONE (never zoneinfo's zone of the same name)."""
    prop: Any = event[name]
    value = prop.dt
    assert isinstance(value, datetime), f"{name} is not a date-time: {value!r}"
    if "TZID" not in prop.params:
        assert value.utcoffset() == timedelta(0), f"{name} is floating: {value!r}"
        return value.astimezone(UTC)
    tzid = prop.params["TZID"]
    zones = [tz for tz in calendar.walk("VTIMEZONE") if tz["TZID"] == tzid]
    assert len(zones) == 1, f"no VTIMEZONE for {tzid}"
    assert isinstance(zones[0], Timezone)
    own = zones[0].to_tz(lookup_tzid=False)
    return value.replace(tzinfo=None).replace(tzinfo=own).astimezone(UTC)


def check_ics(raw: bytes, start: datetime, end: datetime, zone: str, what: str) -> None:
    calendar = Calendar.from_ical(raw)
    events = calendar.walk("VEVENT")
    assert len(events) == 1, what
    event = events[0]
    assert ics_instant(calendar, event, "DTSTART") == start, what
    assert ics_instant(calendar, event, "DTEND") == end, what
    tzid = event["DTSTART"].params.get("TZID")
    assert tzid in (zone, None), what  # UTC only for the second of a repeated wall time


def check_wall_text(text: str, start: datetime, end: datetime, zone: str, language: str, what: str) -> None:
    """`text` holds "<start> – <end> (<place>, UTC±h)" and those name `start` and `end`.

    The end is a time alone on the same day, else a date and time; when the clocks change during the
    event, the end states its own offset: "… – 02:00 (UTC-4) (hora de Chile, UTC-3)".
    """
    tz = ZoneInfo(zone)
    expected, offset = wall_text(start, zone, language)
    assert f"{expected} – " in text, f"{what}: {expected!r} not in {text!r}"
    stated = re.search(r", (UTC[+-][\d:]+)\)$", text.strip())
    assert stated, f"{what}: no UTC offset in {text!r}"
    assert stated.group(1) == offset, what
    local = start.astimezone(tz).replace(tzinfo=None)
    assert wall_plus_offset(local, stated.group(1)) == start, what

    end_local = end.astimezone(tz)
    end_text, end_offset = wall_text(end, zone, language)
    if end_local.date() == start.astimezone(tz).date():
        end_text = dates.format_time(end_local.replace(tzinfo=None).time(), "short", locale=language)
    if end_offset != offset:
        end_text += f" ({end_offset})"
    assert f" – {end_text} (" in text, f"{what}: {end_text!r} not in {text!r}"
    assert wall_plus_offset(end_local.replace(tzinfo=None), end_offset) == end, what


def text_body(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def attachment(message: EmailMessage, filename: str) -> bytes:
    for part in message.iter_attachments():
        if part.get_filename() == filename:
            content = part.get_content()
            return content if isinstance(content, bytes) else content.encode()
    raise AssertionError(f"no {filename} attached")


# --- the property ----------------------------------------------------------------------------------


def whole_minute(moment: datetime) -> datetime:
    """Organisers type minutes (the page shows no seconds): instants on the minute."""
    return moment.replace(second=0, microsecond=0)


WHEN_ON_PAGE = re.compile(
    r'<p class="when">\s*<time datetime="([^"]+)">([^<]*)</time>\s*<span class="zone">([^<]*)</span>'
)


@dataclass
class Harness:
    client: AsyncTestClient[Litestar]
    session_maker: async_sessionmaker[AsyncSession]
    worker: OutboxWorker
    smtp: SmtpServer
    tokens: TokenSettings
    event_id: UUID
    registration_id: UUID


@pytest.fixture
async def harness(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
    settings: Settings,
) -> Harness:
    event = await add_event(session_maker, slug=SLUG)
    response = await submit_registration(client, SLUG, email="tz@example.org", country="BR")
    assert response.status_code in (200, 201, 302, 303), response.text
    await worker.drain()
    smtp_server.messages.clear()
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    async with session_maker() as session:
        registration_id = (await session.execute(sa.select(Registration.id))).scalar_one()
    tokens = TokenSettings(settings.secret_key, message_id_domain(settings))
    return Harness(client, session_maker, worker, smtp_server, tokens, event.id, registration_id)


async def retime(h: Harness, start: datetime, end: datetime, zone: str, language: str) -> str:
    """Move the event and switch the registrant's language; queue a confirmation; its Message-ID."""
    async with h.session_maker() as session:
        event = await session.get(Event, h.event_id)
        registration = await session.get(Registration, h.registration_id)
        assert event is not None
        assert registration is not None
        event.starts_at, event.ends_at, event.timezone = start, end, zone
        registration.language = language
        row = queue_registration_mail(session, h.tokens, registration, MailKind.CONFIRMED)
        await session.commit()
        return row.message_id


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@with_dst_examples
@given(
    start=st.datetimes(min_value=EARLIEST, max_value=LATEST).map(whole_minute),
    zone=st.sampled_from(ZONES),
    minutes=st.integers(min_value=15, max_value=3 * 24 * 60),
    language=st.sampled_from(SUPPORTED_LANGUAGES),
)
async def test_every_surface_names_the_same_instant(
    harness: Harness, start: datetime, zone: str, minutes: int, language: str
) -> None:
    h = harness
    start = start.replace(tzinfo=UTC)
    end = start + timedelta(minutes=minutes)
    message_id = await retime(h, start, end, zone, language)

    # The event page: the machine-readable instant and the visible wall time with its offset.
    page = await h.client.get(f"/events/{SLUG}", params={"lang": language})
    assert page.status_code == 200
    when = WHEN_ON_PAGE.search(page.text)
    assert when, "no <time> on the page"
    assert datetime.fromisoformat(when.group(1)) == start
    shown = html.unescape(when.group(2) + " " + when.group(3))
    check_wall_text(shown, start, end, zone, language, "page")

    # "Add to calendar" links.
    google = re.search(r'href="(https://calendar\.google\.com/[^"]+)"', page.text)
    outlook = re.search(r'href="(https://outlook\.live\.com/[^"]+)"', page.text)
    assert google
    assert outlook
    google_query = parse_qs(urlsplit(html.unescape(google.group(1))).query)
    google_start, google_end = google_query["dates"][0].split("/")
    assert datetime.strptime(google_start, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) == start
    assert datetime.strptime(google_end, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) == end
    assert google_query["ctz"] == [zone]
    outlook_query = parse_qs(urlsplit(html.unescape(outlook.group(1))).query)
    assert datetime.fromisoformat(outlook_query["startdt"][0]) == start
    assert datetime.fromisoformat(outlook_query["enddt"][0]) == end

    # The public .ics and the subscription feed.
    public_ics = await h.client.get(f"/events/{SLUG}/calendar.ics")
    check_ics(public_ics.content, start, end, zone, "event .ics")
    feed = await h.client.get("/calendar.ics", params={"lang": language})
    check_ics(feed.content, start, end, zone, "feed")

    # The JSON API.
    api = (await h.client.get(f"/api/events/{SLUG}")).json()
    assert datetime.fromisoformat(api["starts_at"]) == start
    assert datetime.fromisoformat(api["ends_at"]) == end
    assert api["timezone"] == zone

    # The confirmation email, through the real outbox worker and SMTP: its text and its invite.
    await h.worker.drain()
    mails = [mail for mail in h.smtp.messages if mail["Message-ID"] == message_id]
    assert len(mails) == 1
    h.smtp.messages.clear()
    body = text_body(mails[0])
    lines = [line for line in body.splitlines() if wall_text(start, zone, language)[0] in line]
    assert lines, f"the email does not show {wall_text(start, zone, language)[0]!r}:\n{body}"
    check_wall_text(lines[0], start, end, zone, language, "email")
    check_ics(attachment(mails[0], "invite.ics"), start, end, zone, "email invite")

    # The organiser's CSV export, in the event's zone with its offset.
    export = await h.client.get(f"/manage/events/{h.event_id}/attendees.csv", params={"lang": language})
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    row = rows[1]
    exported_start = datetime.fromisoformat(row[COLUMN_HEADERS.index("Event starts")])
    exported_end = datetime.fromisoformat(row[COLUMN_HEADERS.index("Event ends")])
    assert exported_start == start
    assert exported_end == end
    assert exported_start.utcoffset() == start.astimezone(ZoneInfo(zone)).utcoffset()


# --- what an organiser types on the nights the clocks change ----------------------------------------


def test_cuba_skipped_and_repeated_local_times() -> None:
    """Havana: 00:30 on 8 March 2026 does not exist; 00:30 on 1 November 2026 happens twice."""
    with pytest.raises(LocalTimeError) as skipped:
        parse_local("2026-03-08T00:30", "America/Havana")
    assert skipped.value.nonexistent
    # A repeated wall time is its first occurrence (summer time, UTC-4), as RFC 5545 reads it too.
    assert parse_local("2026-11-01T00:30", "America/Havana") == datetime(2026, 11, 1, 4, 30, tzinfo=UTC)
    assert parse_local("2026-11-01T01:30", "America/Havana") == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


async def test_saving_the_form_unchanged_keeps_the_second_of_a_repeated_wall_time(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    """An event at the second 00:30 of Havana's 1 November 2026 shows "00:30" in its edit form; saving
    the form as it is must not move it to the first 00:30, an hour earlier."""
    second = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 00:30 CST, after the clocks went back
    event = await add_event(
        session_maker, timezone="America/Havana", starts_at=second, ends_at=second + timedelta(hours=2)
    )
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    saved = await submit_edit(client, event.id, title_en="Renamed")
    assert saved.status_code in (200, 302, 303), saved.text
    async with session_maker() as session:
        stored = await session.get(Event, event.id)
        assert stored is not None
        assert stored.texts["en"]["title"] == "Renamed"
        assert (stored.starts_at, stored.ends_at) == (second, second + timedelta(hours=2))
    # Typing another time still moves it, and a typed repeated time is its first occurrence.
    await submit_edit(client, event.id, starts_at="2026-11-01T00:45")
    async with session_maker() as session:
        stored = await session.get(Event, event.id)
        assert stored is not None
        assert stored.starts_at == datetime(2026, 11, 1, 4, 45, tzinfo=UTC)
