"""events_app.lib.ical: invites and feeds parse back with the right instants, zones and text."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Component, Event, Timezone

from events_app.lib import ical
from events_app.lib.ical import InviteData, InviteMethod, build_calendar, build_feed

MADRID = "Europe/Madrid"
BOGOTA = "America/Bogota"


def make_invite(**changes: Any) -> InviteData:
    base = InviteData(
        uid="registration-0b7e6f1c-4a51-4d3e-9d57-3f0a5e3c2b10@events.example.org",
        sequence=0,
        summary="Python meetup",
        description="Talks and coffee",
        location="Calle Mayor 1, Madrid",
        starts_at=datetime(2027, 4, 1, 8, 0, tzinfo=UTC),
        ends_at=datetime(2027, 4, 1, 10, 0, tzinfo=UTC),
        timezone=MADRID,
        organizer_email="events@example.org",
        organizer_name="Events Team",
        attendee_email="ana@example.com",
        attendee_name="Ana Pérez",
        url="https://events.example.org/my/registration/abc",
    )
    return dataclasses.replace(base, **changes)


def parse(ics: bytes) -> Calendar:
    return Calendar.from_ical(ics)


def only_event(calendar: Calendar) -> Event:
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, Event)
    return event


def only_timezone(calendar: Calendar) -> Timezone:
    zones = calendar.walk("VTIMEZONE")
    assert len(zones) == 1
    zone = zones[0]
    assert isinstance(zone, Timezone)
    return zone


def wall_time(event: Component, name: str) -> tuple[datetime, str]:
    prop = event[name]
    return prop.dt.replace(tzinfo=None), prop.params["TZID"]


def instant_via_vtimezone(calendar: Calendar, event: Component, name: str) -> datetime:
    """Resolve a TZID time through the calendar's own VTIMEZONE, not through zoneinfo."""
    wall, tzid = wall_time(event, name)
    zone = only_timezone(calendar)
    assert zone["TZID"] == tzid
    return wall.replace(tzinfo=zone.to_tz(lookup_tzid=False)).astimezone(UTC)


# --- calendar and event properties ----------------------------------------------------------------


def test_request_has_the_itip_properties() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    calendar = parse(build_calendar(make_invite(sequence=3), InviteMethod.REQUEST))
    event = only_event(calendar)

    assert calendar["PRODID"] == "-//events_app//EN"
    assert calendar["VERSION"] == "2.0"
    assert calendar["CALSCALE"] == "GREGORIAN"
    assert calendar["METHOD"] == "REQUEST"
    assert event["UID"] == make_invite().uid
    assert event["SEQUENCE"] == 3
    stamp = event["DTSTAMP"].dt
    assert stamp.utcoffset() == timedelta(0)
    assert before <= stamp <= datetime.now(UTC)
    assert event["SUMMARY"] == "Python meetup"
    assert event["DESCRIPTION"] == "Talks and coffee"
    assert event["LOCATION"] == "Calle Mayor 1, Madrid"
    assert event["STATUS"] == "CONFIRMED"
    assert event["TRANSP"] == "OPAQUE"
    assert event["URL"] == "https://events.example.org/my/registration/abc"


def test_organizer_and_attendee_are_mailto_with_parameters() -> None:
    event = only_event(parse(build_calendar(make_invite(), InviteMethod.REQUEST)))

    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:events@example.org"
    assert organizer.params["CN"] == "Events Team"

    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:ana@example.com"
    assert attendee.params["CN"] == "Ana Pérez"
    assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["RSVP"] == "FALSE"


def test_attendee_without_name_has_no_cn() -> None:
    event = only_event(parse(build_calendar(make_invite(attendee_name=None), InviteMethod.REQUEST)))
    assert "CN" not in event["ATTENDEE"].params


def test_cancel_is_always_cancelled() -> None:
    calendar = parse(build_calendar(make_invite(sequence=2, cancelled=False), InviteMethod.CANCEL))
    event = only_event(calendar)
    assert calendar["METHOD"] == "CANCEL"
    assert event["STATUS"] == "CANCELLED"
    assert event["SEQUENCE"] == 2
    assert str(event["ATTENDEE"]) == "mailto:ana@example.com"


def test_cancelled_flag_with_request() -> None:
    event = only_event(parse(build_calendar(make_invite(cancelled=True), InviteMethod.REQUEST)))
    assert event["STATUS"] == "CANCELLED"


def test_public_ics_has_no_attendee() -> None:
    invite = make_invite(attendee_email=None, attendee_name=None, url=None)
    calendar = parse(build_calendar(invite, InviteMethod.PUBLISH))
    event = only_event(calendar)
    assert calendar["METHOD"] == "PUBLISH"
    assert "ATTENDEE" not in event
    assert "URL" not in event
    assert str(event["ORGANIZER"]) == "mailto:events@example.org"


def test_publish_leaves_out_a_given_attendee() -> None:
    """RFC 5546 section 3.2.1: a PUBLISH carries no ATTENDEE."""
    ics = build_calendar(make_invite(), InviteMethod.PUBLISH)
    assert "ATTENDEE" not in only_event(parse(ics))
    assert b"ana@example.com" not in ics


@pytest.mark.parametrize("method", [InviteMethod.REQUEST, InviteMethod.CANCEL])
def test_request_and_cancel_need_an_attendee(method: InviteMethod) -> None:
    with pytest.raises(ValueError, match="attendee"):
        build_calendar(make_invite(attendee_email=None, attendee_name=None), method)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sequence": -1}, "sequence"),
        ({"starts_at": datetime(2027, 4, 1, 8)}, "aware"),
        ({"ends_at": datetime(2027, 4, 1, 7, tzinfo=UTC)}, "after"),
        ({"ends_at": datetime(2027, 4, 1, 8, tzinfo=UTC)}, "after"),
        ({"attendee_email": "ana@example.com\r\nATTENDEE:mailto:eve@example.com"}, "attendee_email"),
        ({"organizer_email": "events@example.org\nX: y"}, "organizer_email"),
        ({"url": "https://example.org/\r\nX-INJECTED:1"}, "url"),
    ],
)
def test_bad_input_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_calendar(make_invite(**changes), InviteMethod.REQUEST)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(KeyError):
        build_calendar(make_invite(timezone="Mars/Olympus_Mons"), InviteMethod.REQUEST)


# --- times and zones --------------------------------------------------------------------------------


def test_bogota_start_and_end() -> None:
    invite = make_invite(
        timezone=BOGOTA,
        starts_at=datetime(2027, 3, 10, 15, 0, tzinfo=UTC),
        ends_at=datetime(2027, 3, 10, 16, 30, tzinfo=UTC),
    )
    calendar = parse(build_calendar(invite, InviteMethod.REQUEST))
    event = only_event(calendar)

    assert wall_time(event, "DTSTART") == (datetime(2027, 3, 10, 10, 0), BOGOTA)
    assert wall_time(event, "DTEND") == (datetime(2027, 3, 10, 11, 30), BOGOTA)
    assert instant_via_vtimezone(calendar, event, "DTSTART") == invite.starts_at
    assert instant_via_vtimezone(calendar, event, "DTEND") == invite.ends_at
    assert event["DTSTART"].dt == invite.starts_at


@pytest.mark.parametrize(
    ("instant", "local"),
    [
        # the week after the change to summer time (2027-03-28): UTC+2
        (datetime(2027, 4, 1, 8, 0, tzinfo=UTC), datetime(2027, 4, 1, 10, 0)),
        # the week after the change back (2027-10-31): UTC+1
        (datetime(2027, 11, 2, 9, 0, tzinfo=UTC), datetime(2027, 11, 2, 10, 0)),
        # the week before each change
        (datetime(2027, 3, 25, 9, 0, tzinfo=UTC), datetime(2027, 3, 25, 10, 0)),
        (datetime(2027, 10, 28, 8, 0, tzinfo=UTC), datetime(2027, 10, 28, 10, 0)),
    ],
)
def test_madrid_around_dst_changes(instant: datetime, local: datetime) -> None:
    invite = make_invite(starts_at=instant, ends_at=instant + timedelta(hours=1))
    calendar = parse(build_calendar(invite, InviteMethod.REQUEST))
    event = only_event(calendar)

    assert wall_time(event, "DTSTART") == (local, MADRID)
    assert instant_via_vtimezone(calendar, event, "DTSTART") == instant
    assert instant_via_vtimezone(calendar, event, "DTEND") == instant + timedelta(hours=1)
    assert event["DTSTART"].dt == instant


def test_bogota_vtimezone_has_a_standard_part_only() -> None:
    zone = only_timezone(parse(build_calendar(make_invite(timezone=BOGOTA), InviteMethod.REQUEST)))
    assert zone["TZID"] == BOGOTA
    assert zone.daylight == []
    [standard] = zone.standard
    assert standard["TZOFFSETFROM"].td == timedelta(hours=-5)
    assert standard["TZOFFSETTO"].td == timedelta(hours=-5)
    assert "DTSTART" in standard


def test_madrid_vtimezone_uses_yearly_rules() -> None:
    """Outlook misreads RDATE lists: the usual last-Sunday rules must be RRULEs."""
    zone = only_timezone(parse(build_calendar(make_invite(), InviteMethod.REQUEST)))
    [standard] = zone.standard
    [daylight] = zone.daylight
    one, two = timedelta(hours=1), timedelta(hours=2)
    assert (standard["TZOFFSETFROM"].td, standard["TZOFFSETTO"].td) == (two, one)
    assert (daylight["TZOFFSETFROM"].td, daylight["TZOFFSETTO"].td) == (one, two)
    assert daylight["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"
    assert standard["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"
    assert daylight["TZNAME"] == "CEST"
    assert standard["TZNAME"] == "CET"
    assert "RDATE" not in daylight
    assert "RDATE" not in standard


@pytest.mark.parametrize(
    "tzid",
    [
        "Europe/Madrid",
        "America/New_York",
        "Australia/Sydney",
        "Pacific/Auckland",
        "Australia/Lord_Howe",  # half-hour DST
        "Asia/Kolkata",
        "America/Bogota",
        "America/Santiago",  # not an nth-weekday rule: falls back to icalendar's generator
        "Asia/Jerusalem",  # idem
    ],
)
def test_vtimezone_agrees_with_zoneinfo(tzid: str) -> None:
    """Every half hour for three years, the VTIMEZONE text gives the same wall time as zoneinfo."""
    text = b"BEGIN:VCALENDAR\r\n" + ical.vtimezone(tzid).to_ical() + b"END:VCALENDAR\r\n"
    parsed = only_timezone(Calendar.from_ical(text))
    assert parsed.standard
    from_ics, zone = parsed.to_tz(lookup_tzid=False), ZoneInfo(tzid)
    instant = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC)
    end = instant.replace(year=instant.year + 3)
    while instant < end:
        shown, expected = instant.astimezone(from_ics), instant.astimezone(zone)
        assert shown.replace(tzinfo=None) == expected.replace(tzinfo=None)
        instant += timedelta(minutes=30)


@pytest.mark.parametrize("tzid", ["UTC", "Etc/UTC"])
def test_utc_is_written_with_z_and_no_vtimezone(tzid: str) -> None:
    ics = build_calendar(make_invite(timezone=tzid), InviteMethod.REQUEST)
    calendar = parse(ics)
    assert calendar.walk("VTIMEZONE") == []
    assert b"DTSTART:20270401T080000Z" in ics
    assert b"DTEND:20270401T100000Z" in ics
    assert b"TZID" not in ics
    assert only_event(calendar)["DTSTART"].dt == datetime(2027, 4, 1, 8, 0, tzinfo=UTC)


def test_non_utc_input_offsets_are_converted() -> None:
    starts = datetime(2027, 4, 1, 3, 0, tzinfo=ZoneInfo("America/New_York"))  # 07:00Z
    invite = make_invite(starts_at=starts, ends_at=starts + timedelta(hours=1))
    event = only_event(parse(build_calendar(invite, InviteMethod.REQUEST)))
    assert wall_time(event, "DTSTART") == (datetime(2027, 4, 1, 9, 0), MADRID)


# --- text values ----------------------------------------------------------------------------------

AWKWARD_TEXT = [
    "Commas, semicolons; and colons: all here",
    "Line one\nLine two\n\nLine four\n",
    'Back\\slash, C:\\new\\Nigeria, \\N \\n \\\\N \\; \\, "quotes"',
    "Ünïcødé: 日本語のイベント, Ελληνικά, עברית, العربية 🎉🐍",
    "Trailing space ",
    " Leading space",
    "Tab\there",
    "Unicode line breaks: \u0085 \u2028 \u2029 and \ufeff BOM",
    "Long " + "é€😀 ,;\\\n" * 60,
    "",
]


@pytest.mark.parametrize("value", AWKWARD_TEXT)
def test_text_round_trips(value: str) -> None:
    invite = make_invite(summary=value, description=value, location=value)
    event = only_event(parse(build_calendar(invite, InviteMethod.REQUEST)))
    assert str(event["SUMMARY"]) == value
    assert str(event["DESCRIPTION"]) == value
    assert str(event["LOCATION"]) == value


#: Any text but surrogates and the C0/DEL controls that iCalendar TEXT cannot hold (TAB and LF can).
CONTROLS = [chr(c) for c in [*range(9), *range(11, 32), 127]]
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=CONTROLS))


@settings(max_examples=300, deadline=None)
@given(summary=ANY_TEXT, description=ANY_TEXT, location=ANY_TEXT)
def test_any_text_round_trips(summary: str, description: str, location: str) -> None:
    invite = make_invite(summary=summary, description=description, location=location)
    event = only_event(parse(build_calendar(invite, InviteMethod.REQUEST)))
    assert (str(event["SUMMARY"]), str(event["DESCRIPTION"]), str(event["LOCATION"])) == (
        summary,
        description,
        location,
    )


AWKWARD_NAMES = ["Pérez, Ana", 'Ana "Anita" Pérez; Jr.', "日本 太郎", "Ana\nPérez", "O'Brien: ^x^"]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_names_round_trip(name: str) -> None:
    invite = make_invite(organizer_name=name, attendee_name=name)
    event = only_event(parse(build_calendar(invite, InviteMethod.REQUEST)))
    assert event["ORGANIZER"].params["CN"] == name
    assert event["ATTENDEE"].params["CN"] == name


def test_carriage_returns_become_newlines_and_controls_are_dropped() -> None:
    invite = make_invite(description="a\r\nb\rc\x00d\x07e\x1bf")
    event = only_event(parse(build_calendar(invite, InviteMethod.REQUEST)))
    assert str(event["DESCRIPTION"]) == "a\nb\ncdef"


def test_output_is_folded_crlf_text() -> None:
    invite = make_invite(description="😀 Ünïcødé, text; " * 40, summary="x" * 300)
    ics = build_calendar(invite, InviteMethod.REQUEST)
    assert ics.endswith(b"\r\n")
    lines = ics.split(b"\r\n")[:-1]
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert all(len(line) <= 75 for line in lines)
    assert all(line.decode("utf-8") for line in lines)  # folding never splits a UTF-8 sequence


# --- feed -------------------------------------------------------------------------------------------


def test_feed_has_each_zone_once_and_every_event() -> None:
    events = [
        make_invite(uid="e1@events.example.org", summary="One"),
        make_invite(uid="e2@events.example.org", summary="Two", cancelled=True),
        make_invite(uid="e3@events.example.org", summary="Three", timezone=BOGOTA),
        make_invite(uid="e4@events.example.org", summary="Four", timezone="UTC"),
        make_invite(uid="e5@events.example.org", summary="Five", timezone=BOGOTA),
    ]
    ics = build_feed(events, "Events, Madrid; & more")
    calendar = parse(ics)

    assert calendar["METHOD"] == "PUBLISH"
    # NAME (RFC 7986) and X-WR-CALNAME are TEXT; icalendar's parser keeps them raw, so look at the bytes.
    assert b"\r\nNAME:Events\\, Madrid\\; & more\r\n" in ics
    assert b"\r\nX-WR-CALNAME:Events\\, Madrid\\; & more\r\n" in ics
    assert sorted(zone["TZID"] for zone in calendar.walk("VTIMEZONE")) == [BOGOTA, MADRID]
    vevents = calendar.walk("VEVENT")
    assert [event["UID"] for event in vevents] == [invite.uid for invite in events]
    assert [event["STATUS"] for event in vevents] == ["CONFIRMED", "CANCELLED", *["CONFIRMED"] * 3]
    assert all("ATTENDEE" not in event for event in vevents)
    assert b"ana@example.com" not in ics
    assert vevents[2]["DTSTART"].dt == events[2].starts_at
    kinds = [component.name for component in calendar.subcomponents]
    assert kinds == ["VTIMEZONE", "VTIMEZONE", "VEVENT", "VEVENT", "VEVENT", "VEVENT", "VEVENT"]


def test_empty_feed() -> None:
    calendar = parse(build_feed([], "Nothing yet"))
    assert calendar["METHOD"] == "PUBLISH"
    assert calendar.subcomponents == []


# --- VTIMEZONE cache ------------------------------------------------------------------------------


def test_vtimezone_copies_are_equal_and_independent() -> None:
    first, second = ical.vtimezone(MADRID), ical.vtimezone(MADRID)
    assert first == second
    assert first is not second

    first["TZID"] = "Changed/Zone"
    first.subcomponents.clear()
    third = ical.vtimezone(MADRID)
    assert third == second
    assert third["TZID"] == MADRID
    assert len(third.subcomponents) == 2


def test_vtimezone_is_built_once() -> None:
    ical.vtimezone("Asia/Tokyo")
    misses = ical._cached_vtimezone.cache_info().misses
    build_calendar(make_invite(timezone="Asia/Tokyo"), InviteMethod.REQUEST)
    build_feed([make_invite(timezone="Asia/Tokyo")], "Tokyo")
    assert ical._cached_vtimezone.cache_info().misses == misses


def test_cached_zone_serves_different_events_correctly() -> None:
    spring = make_invite(uid="spring@events.example.org", summary="Spring")
    autumn_start = datetime(2027, 11, 2, 9, 0, tzinfo=UTC)
    autumn = make_invite(
        uid="autumn@events.example.org",
        summary="Autumn",
        starts_at=autumn_start,
        ends_at=autumn_start + timedelta(hours=2),
        attendee_email="bo@example.com",
    )
    first = parse(build_calendar(spring, InviteMethod.REQUEST))
    second = parse(build_calendar(autumn, InviteMethod.CANCEL))
    again = parse(build_calendar(spring, InviteMethod.REQUEST))

    for calendar, invite in ((first, spring), (second, autumn), (again, spring)):
        event = only_event(calendar)
        assert event["UID"] == invite.uid
        assert event["SUMMARY"] == invite.summary
        assert str(event["ATTENDEE"]) == f"mailto:{invite.attendee_email}"
        assert instant_via_vtimezone(calendar, event, "DTSTART") == invite.starts_at
        assert instant_via_vtimezone(calendar, event, "DTEND") == invite.ends_at
    assert only_timezone(first) == only_timezone(second) == only_timezone(again)
