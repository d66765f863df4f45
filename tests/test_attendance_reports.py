"""events_app.lib.attendance_reports: the fixtures give exactly the shared README's §3 results.

Variants (encodings, delimiters, padding, older and localised layouts) are built here from the fixture
bytes or written by hand, and must give the same people and minutes.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from events_app.lib.attendance_reports import (
    AttendanceReport,
    PersonAttendance,
    ReportError,
    ReportFormat,
    detect_format,
    parse_report,
)

FIXTURES = Path(__file__).parent / "fixtures"
ZOOM_RAW = (FIXTURES / "zoom_webinar_attendee_report.csv").read_bytes()
TEAMS_RAW = (FIXTURES / "teams_attendance_report.csv").read_bytes()
BOGOTA = "America/Bogota"
MADRID = "Europe/Madrid"
TEAMS_DAY = date(2027, 4, 29)

#: README §3.1: minutes attended (union of Attendee Details rows) per lower-cased email.
ZOOM_MINUTES = {
    "jose.alvarez@policia.example.gov.co": 92.15,
    "conceicao.ribeiro@pf.example.gov.br": 89.23,
    "sebastian.munoz@carabineros.example.cl": 0.00,
    "lferreyra@mpf.example.gob.ar": 83.77,
    "tomas.nunez@fiscalia.example.gob.mx": 10.00,
    "ana.souza@pf.example.gov.br": 89.93,
    "renata.cardenas@example.org": 59.08,
    "goncalo.araujo@example.org": 0.00,
    "begona.iturriaga@example.net": 52.00,
    "joaopedro.nascimento@pf.example.gov.br": 91.87,
    "camila.rodriguez@policia.example.gov.co": 60.50,
    "ines.ibanez@mpf.example.gob.ar": 0.00,
    "valentina.ospina@redbienestar.example.org": 70.10,
    "diego.quispe@policia.example.gob.pe": 45.50,
    "fatima.guzman@fiscalia.example.gob.mx": 93.25,
    "martin.benitez@mpf.example.gob.ar": 60.00,
    "lucia.fernandes@example.com": 38.63,
    "ximena.cortes@carabineros.example.cl": 88.00,
    "andres.villalobos@example.org": 70.00,
    "rosario.pinheiro@pf.example.gov.br": 37.50,
    "hector.sandoval@policia.example.gov.co": 90.33,
}
#: README §3.1 "≥ 54 min" column.
ZOOM_MEETS = {
    "jose.alvarez@policia.example.gov.co",
    "conceicao.ribeiro@pf.example.gov.br",
    "lferreyra@mpf.example.gob.ar",
    "ana.souza@pf.example.gov.br",
    "renata.cardenas@example.org",
    "joaopedro.nascimento@pf.example.gov.br",
    "camila.rodriguez@policia.example.gov.co",
    "valentina.ospina@redbienestar.example.org",
    "fatima.guzman@fiscalia.example.gob.mx",
    "martin.benitez@mpf.example.gob.ar",
    "ximena.cortes@carabineros.example.cl",
    "andres.villalobos@example.org",
    "hector.sandoval@policia.example.gov.co",
}
ZOOM_NEVER_JOINED = {
    "sebastian.munoz@carabineros.example.cl",
    "goncalo.araujo@example.org",
    "ines.ibanez@mpf.example.gob.ar",
}
#: README §3.1 staff table: (role, segment count, minutes).
ZOOM_STAFF = {
    "carolina.mendez@redbienestar.example.org": ("host", 1, 96.47),
    "paula.quintero@policia.example.gov.co": ("panelist", 1, 95.13),
    "jpena@mpf.example.gob.ar": ("panelist", 2, 93.13),
    "fernanda.goncalves@pf.example.gov.br": ("panelist", 1, 92.92),
}
#: README §3.2: (role, section-3 rows, minutes attended).
TEAMS_PEOPLE = {
    "marta.gil@ip.example.gob.es": ("organizer", 1, 71.63),
    "javier.ortega@ip.example.gob.es": ("presenter", 1, 68.47),
    "ignacio.ferrer@ip.example.gob.es": ("presenter", 1, 64.00),
    "andres.rincon@inpec.example.gov.co": ("presenter", 1, 64.75),
    "elena.sanchez@ip.example.gob.es": ("attendee", 1, 60.58),
    "carmen.ruiztagle@gendarmeria.example.cl": ("attendee", 1, 60.03),
    "inigo.etxeberria@ip.example.gob.es": ("attendee", 1, 58.20),
    "thiago.albuquerque@depen.example.gov.br": ("attendee", 1, 58.25),
    "joaquim.teixeira@example.net": ("attendee", 1, 20.00),
    "nuria.casals@example.org": ("attendee", 1, 59.00),
    "barbara.nogueira@depen.example.gov.br": ("attendee", 2, 56.38),
    "mateo.gimenez@example.com": ("attendee", 1, 59.00),
    "gparedes@spf.example.gob.ar": ("attendee", 1, 8.00),
    "raul.prieto@ip.example.gob.es": ("attendee", 1, 30.00),
    "monica.ayala@inpe.example.gob.pe": ("attendee", 1, 54.67),
    "fj.ledesma@ip.example.gob.es": ("attendee", 1, 50.00),
    "sofia.beltran@ip.example.gob.es": ("attendee", 1, 44.50),
    "alejandra.renteria@inpec.example.gov.co": ("attendee", 1, 30.50),
    "pilar.dominguez@ip.example.gob.es": ("attendee", 1, 31.00),
}
TEAMS_BELOW = {
    "joaquim.teixeira@example.net",
    "gparedes@spf.example.gob.ar",
    "raul.prieto@ip.example.gob.es",
    "alejandra.renteria@inpec.example.gov.co",
    "pilar.dominguez@ip.example.gob.es",
}


# ---------------------------------------------------------------------------------------------------
# Helpers


def matched(report: AttendanceReport) -> dict[str, PersonAttendance]:
    people = {p.email: p for p in report.people if p.email is not None}
    assert len(people) == sum(1 for p in report.people if p.email is not None), "an email appears twice"
    return people


def unmatched(report: AttendanceReport) -> list[PersonAttendance]:
    return [p for p in report.people if p.email is None]


def minutes_by_email(people: tuple[PersonAttendance, ...]) -> dict[str, float]:
    return {p.email: round(p.minutes, 2) for p in people if p.email is not None}


def parse_zoom(raw: bytes = ZOOM_RAW, event_date: date | None = None) -> AttendanceReport:
    return parse_report(raw, BOGOTA, event_date)


def parse_teams(raw: bytes = TEAMS_RAW, event_date: date | None = TEAMS_DAY) -> AttendanceReport:
    return parse_report(raw, MADRID, event_date)


def teams_text() -> str:
    return TEAMS_RAW.decode("utf-16")


def utf16le(text: str) -> bytes:
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


def assert_zoom_expected(report: AttendanceReport) -> None:
    assert minutes_by_email(report.people) == ZOOM_MINUTES
    assert [round(p.minutes, 2) for p in unmatched(report)] == [65.50]
    assert {e: (p.role, len(p.segments), round(p.minutes, 2)) for e, p in matched_staff(report).items()} == (
        ZOOM_STAFF
    )


def matched_staff(report: AttendanceReport) -> dict[str, PersonAttendance]:
    return {p.email: p for p in report.staff if p.email is not None}


def assert_teams_expected(report: AttendanceReport) -> None:
    people = matched(report)
    got = {email: (p.role, len(p.segments), round(p.minutes, 2)) for email, p in people.items()}
    assert got == TEAMS_PEOPLE
    guests = unmatched(report)
    assert [(g.display_name, round(g.minutes, 2)) for g in guests] == [
        ("Patricia Lozano (Unverified)", 45.33)
    ]


# ---------------------------------------------------------------------------------------------------
# The Zoom fixture (README §3.1)


def test_zoom_registrants_minutes_and_threshold() -> None:
    report = parse_zoom()
    assert report.format is ReportFormat.ZOOM
    assert report.title == "Webinar on animal abuse in Latin America"
    assert report.warnings == ()
    people = matched(report)
    assert len(people) == 21
    assert minutes_by_email(report.people) == ZOOM_MINUTES
    assert round(sum(p.minutes for p in people.values()), 2) == 1221.85
    meets = {email for email, p in people.items() if round(p.minutes, 2) >= 54.00}
    assert meets == ZOOM_MEETS
    assert (len(meets), len(people) - len(meets)) == (13, 8)
    for email in ZOOM_NEVER_JOINED:
        assert people[email].segments == ()
        assert people[email].minutes == 0


def test_zoom_people_details() -> None:
    people = matched(parse_zoom())
    assert all(p.role == "attendee" for p in people.values())
    # Display names come from the registration (First + Last), even for Attended = No rows.
    assert people["sebastian.munoz@carabineros.example.cl"].display_name == "Sebastián Muñoz Rojas"
    assert people["conceicao.ribeiro@pf.example.gov.br"].display_name == "Maria da Conceição Ribeiro"
    assert len(people["lferreyra@mpf.example.gob.ar"].segments) == 3
    assert len(people["ana.souza@pf.example.gov.br"].segments) == 2  # overlapping devices, counted once
    assert len(people["renata.cardenas@example.org"].segments) == 2


def test_zoom_unmatched_dial_in_and_staff() -> None:
    report = parse_zoom()
    [dial_in] = unmatched(report)
    assert dial_in.display_name == "+576015550142"
    assert round(dial_in.minutes, 2) == 65.50
    assert len(report.staff) == 4
    assert {e: (p.role, len(p.segments), round(p.minutes, 2)) for e, p in matched_staff(report).items()} == (
        ZOOM_STAFF
    )
    assert not set(matched_staff(report)) & set(ZOOM_MINUTES)


def test_zoom_times_are_converted_from_bogota_to_utc() -> None:
    diego = matched(parse_zoom())["diego.quispe@policia.example.gob.pe"]
    [segment] = diego.segments
    assert segment.join == datetime(2027, 4, 14, 15, 0, 0, tzinfo=UTC)  # "10:00:00 AM"
    assert segment.leave == datetime(2027, 4, 14, 15, 45, 30, tzinfo=UTC)
    assert segment.join.utcoffset() is not None


# ---------------------------------------------------------------------------------------------------
# The Teams fixture (README §3.2)


def test_teams_participants_minutes_and_threshold() -> None:
    report = parse_teams()
    assert report.format is ReportFormat.TEAMS
    assert report.title == "Presentation of the guide on penitentiary intelligence"
    assert report.warnings == ()
    assert report.staff == ()
    people = matched(report)
    assert len(people) == 19
    assert_teams_expected(report)
    assert round(sum(p.minutes for p in people.values()), 2) == 948.97
    below = {email for email, p in people.items() if round(p.minutes, 2) < 36.00}
    assert below == TEAMS_BELOW
    assert (len(people) - len(below), len(below)) == (14, 5)


def test_teams_emails_are_lower_cased_and_upn_is_never_used() -> None:
    people = matched(parse_teams())
    assert all(email == email.lower() for email in people)
    assert "inigo.etxeberria@ip.example.gob.es" in people
    assert "ietxeberria@ip.example.gob.es" not in people
    assert people["thiago.albuquerque@depen.example.gov.br"].display_name == "Thiago Albuquerque (External)"
    assert people["elena.sanchez@ip.example.gob.es"].display_name == "Sánchez Vidal, Elena"


def test_teams_times_are_converted_from_madrid_to_utc() -> None:
    people = matched(parse_teams())
    [marta] = people["marta.gil@ip.example.gob.es"].segments
    assert marta.join == datetime(2027, 4, 29, 12, 52, 40, tzinfo=UTC)
    assert marta.leave == datetime(2027, 4, 29, 14, 4, 18, tzinfo=UTC)
    # "3:00:12 PM" (written into Íñigo's section-3 row) is 13:00:12Z; his Duration no longer agrees.
    moved = teams_text().replace(
        "Íñigo Etxeberria Goñi\t4/29/27, 3:00:02 PM\t4/29/27, 3:58:14 PM\t58m 12s",
        "Íñigo Etxeberria Goñi\t4/29/27, 3:00:12 PM\t4/29/27, 3:58:14 PM\t58m 12s",
    )
    assert moved != teams_text()
    report = parse_teams(utf16le(moved))
    [inigo] = matched(report)["inigo.etxeberria@ip.example.gob.es"].segments
    assert inigo.join == datetime(2027, 4, 29, 13, 0, 12, tzinfo=UTC)
    assert any("inigo.etxeberria" in w and "Duration" in w for w in report.warnings)


def test_teams_email_only_in_upn_stays_unmatched() -> None:
    text = teams_text().replace("Inigo.Etxeberria@ip.example.gob.es", "")
    report = parse_teams(utf16le(text))
    assert len(matched(report)) == 18
    assert "ietxeberria@ip.example.gob.es" not in matched(report)
    names = {p.display_name: round(p.minutes, 2) for p in unmatched(report)}
    assert names == {"Íñigo Etxeberria Goñi": 58.20, "Patricia Lozano (Unverified)": 45.33}
    assert any("UPN" in w for w in report.warnings)


def test_detect_format_on_both_fixtures() -> None:
    assert detect_format(ZOOM_RAW) is ReportFormat.ZOOM
    assert detect_format(TEAMS_RAW) is ReportFormat.TEAMS


def test_parsing_is_pure() -> None:
    assert parse_zoom() == parse_zoom()
    assert parse_teams() == parse_teams()
    assert parse_report(ZOOM_RAW, BOGOTA, fmt=ReportFormat.ZOOM) == parse_zoom()


# ---------------------------------------------------------------------------------------------------
# Zoom variants built from the fixture


def test_zoom_with_utf8_bom_and_crlf() -> None:
    raw = codecs.BOM_UTF8 + ZOOM_RAW.replace(b"\n", b"\r\n")
    assert detect_format(raw) is ReportFormat.ZOOM
    report = parse_zoom(raw)
    assert_zoom_expected(report)
    assert report.title == "Webinar on animal abuse in Latin America"


def test_zoom_padded_with_trailing_commas() -> None:
    rows = list(csv.reader(io.StringIO(ZOOM_RAW.decode("utf-8"), newline="")))
    width = max(len(row) for row in rows)
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(row + [""] * (width - len(row)) for row in rows)
    raw = out.getvalue().encode("utf-8")
    assert b"Attendee Report,,,,,,,,,,,,," in raw
    report = parse_zoom(raw)
    assert_zoom_expected(report)
    assert report.warnings == ()


def test_zoom_with_nul_bytes_inside_a_row() -> None:
    raw = ZOOM_RAW.replace(b"Jose.Alvarez@policia", b"Jose\x00.Alva\x00rez@poli\x00cia")
    assert raw.count(b"\x00") == 3
    report = parse_zoom(raw)
    assert_zoom_expected(report)
    assert any("NUL" in w for w in report.warnings)


def test_zoom_saved_as_windows_1252() -> None:
    raw = ZOOM_RAW.decode("utf-8").encode("cp1252")
    report = parse_zoom(raw)
    assert_zoom_expected(report)
    assert matched(report)["jose.alvarez@policia.example.gov.co"].display_name == "José Álvarez Gutiérrez"


def test_zoom_with_a_known_event_date_agrees_and_a_wrong_one_warns() -> None:
    assert parse_zoom(event_date=date(2027, 4, 14)).warnings == ()
    report = parse_zoom(event_date=date(2027, 5, 14))
    assert_zoom_expected(report)
    assert any("differ from the event date" in w for w in report.warnings)


# ---------------------------------------------------------------------------------------------------
# Teams variants built from the fixture


def test_teams_as_utf16_big_endian() -> None:
    raw = codecs.BOM_UTF16_BE + teams_text().encode("utf-16-be")
    assert detect_format(raw) is ReportFormat.TEAMS
    assert_teams_expected(parse_teams(raw))


def test_teams_as_utf8_comma_separated() -> None:
    rows = list(csv.reader(io.StringIO(teams_text(), newline=""), delimiter="\t"))
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    raw = out.getvalue().encode("utf-8")
    assert b'"4/29/27, 2:52:40 PM"' in raw
    assert b'"Sent reaction ""Like"""' in raw
    assert detect_format(raw) is ReportFormat.TEAMS
    report = parse_teams(raw)
    assert_teams_expected(report)
    assert report.warnings == ()


def _day_first(match: re.Match[str]) -> str:
    month, day, year, hour, minute, second, meridiem = match.groups()
    hour24 = int(hour) % 12 + (12 if meridiem == "PM" else 0)
    return f"{int(day):02d}/{int(month):02d}/{year}, {hour24:02d}:{minute}:{second}"


def test_teams_with_day_first_dates() -> None:
    pattern = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}), (\d{1,2}):(\d{2}):(\d{2}) (AM|PM)")
    text = pattern.sub(_day_first, teams_text())
    assert "29/04/27, 15:00:02" in text
    assert "PM" not in text
    report = parse_teams(utf16le(text), event_date=TEAMS_DAY)
    assert_teams_expected(report)
    assert report.warnings == ()


def test_teams_with_translated_section_titles() -> None:
    text = (
        teams_text()
        .replace("1. Summary", "1. Resumo")
        .replace("2. Participants", "2. Participantes")
        .replace("3. In-Meeting Activities", "3. Atividades em Reunião")
        .replace("4. Meeting Engagement", "4. Compromisso da Reunião")
    )
    assert_teams_expected(parse_teams(utf16le(text)))


def test_teams_without_activities_section_uses_first_join_to_last_leave() -> None:
    """Older layouts have no section 3; section-2 rows are also ragged (12 cells)."""
    text = teams_text()
    head = text[: text.index("3. In-Meeting Activities")]
    rows = list(csv.reader(io.StringIO(head, newline=""), delimiter="\t"))
    ragged = [row[:12] if len(row) == 15 and "@" in row[4] else row for row in rows]
    out = io.StringIO(newline="")
    csv.writer(out, delimiter="\t", lineterminator="\r\n").writerows(ragged)
    report = parse_teams(utf16le(out.getvalue()))
    people = matched(report)
    assert len(people) == 19
    # Bárbara's span 3:01:10-3:59:58 includes her 2m25s gap; everyone else has one connection.
    assert round(people["barbara.nogueira@depen.example.gov.br"].minutes, 2) == 58.80
    expected = {e: m for e, (_, _, m) in TEAMS_PEOPLE.items() if not e.startswith("barbara.")}
    assert {e: round(p.minutes, 2) for e, p in people.items() if not e.startswith("barbara.")} == expected
    assert [round(p.minutes, 2) for p in unmatched(report)] == [45.33]
    assert any("no In-Meeting Activities" in w for w in report.warnings)


# ---------------------------------------------------------------------------------------------------
# Hand-written layouts

TEAMS_2022 = "\n".join(
    [
        "1. Summary",
        "Meeting title\tQuarterly review",
        "Attended participants\t5",
        "Start time\t5/4/27, 15:00:00",
        "End time\t5/4/27, 16:00:00",
        "",
        "2. Participants",
        "Name\tFirst join\tLast leave\tIn-meeting duration\tEmail\tParticipant ID (UPN)\tRole",
        "Lee Wong\t5/4/27, 15:00:00\t5/4/27, 15:30:00\t30m\tlee.wong@example.org\t"
        "lwong@example.org\tOrganizer",
        "Wong, Lee (External)\t5/4/27, 15:20:00\t5/4/27, 15:50:00\t30m\tLee.Wong@Example.org\t"
        "lee.wong@example.org\tAttendee",
        '" +1 555 0100"\t5/4/27, 15:05:00\t5/4/27, 15:25:00\t20m\t\t\tAttendee',
        "Guest (Unverified)\t5/4/27, 15:10:00\t5/4/27, 15:40:30\t25m 30s\t\t\tAttendee",
        "",
        "3. In-Meeting activities",
        "Name\tJoin time\tLeave time\tDuration\tEmail\tRole",
        "Lee Wong\t5/4/27, 15:00:00\t5/4/27, 15:30:00\t30m\tlee.wong@example.org\tOrganizer",
        "Wong, Lee (External)\t5/4/27, 15:20:00\t5/4/27, 15:50:00\t30m\tLee.Wong@Example.org\tAttendee",
        '" +1 555 0100"\t5/4/27, 15:05:00\t5/4/27, 15:25:00\t20m\t\tAttendee',
        "Guest (Unverified)\t5/4/27, 15:10:00\t5/4/27, 15:20:00\t10m\t\tAttendee",
        "Guest (Unverified)\t5/4/27, 15:25:00\t5/4/27, 15:40:30\t15m 30s\t\tAttendee",
        "",
    ]
)


def teams_2022_raw() -> bytes:
    """The 2022 download: UTF-16 big-endian with a BOM, LF line ends, lower-case header words."""
    return codecs.BOM_UTF16_BE + TEAMS_2022.encode("utf-16-be")


def test_teams_2022_layout_merges_by_email_never_by_name() -> None:
    report = parse_report(teams_2022_raw(), MADRID, date(2027, 4, 5))
    assert report.title == "Quarterly review"
    assert report.warnings == ()
    [lee] = matched(report).values()
    assert lee.email == "lee.wong@example.org"
    assert lee.display_name == "Lee Wong"
    assert lee.role == "organizer"
    assert round(lee.minutes, 2) == 50.00  # 15:00-15:30 and 15:20-15:50 overlap
    guests = [(p.display_name, round(p.minutes, 2)) for p in unmatched(report)]
    # One entry per email-less row: the guest who rejoined is two entries, never merged by name.
    assert guests == [("+1 555 0100", 20.00), ("Guest (Unverified)", 10.00), ("Guest (Unverified)", 15.50)]


def test_teams_ambiguous_dates_are_decided_by_the_event_date() -> None:
    # 5/4/27 is 5 April (day first) or 4 May (month first).
    april = parse_report(teams_2022_raw(), MADRID, date(2027, 4, 5))
    may = parse_report(teams_2022_raw(), MADRID, date(2027, 5, 4))
    assert matched(april)["lee.wong@example.org"].segments[0].join == datetime(2027, 4, 5, 13, 0, tzinfo=UTC)
    assert matched(may)["lee.wong@example.org"].segments[0].join == datetime(2027, 5, 4, 13, 0, tzinfo=UTC)


def test_teams_ambiguous_dates_without_event_date_raise() -> None:
    with pytest.raises(ReportError, match="month/day or day/month"):
        parse_report(teams_2022_raw(), MADRID)
    with pytest.raises(ReportError, match="event date"):
        parse_report(teams_2022_raw(), MADRID, date(2027, 6, 1))


def test_teams_2021_layout() -> None:
    text = "\n".join(
        [
            "Meeting Summary",
            "Total Number of Participants\t2",
            "Meeting Title\tDevOps sync",
            "Meeting Start Time\t12/10/2021, 7:37:51 PM",
            "Meeting End Time\t12/10/2021, 8:07:14 PM",
            "Meeting Id\t00000000-1111-2222-3333-444444444444",
            "",
            "Full Name\tJoin Time\tLeave Time\tDuration\tEmail\tRole\tParticipant ID (UPN)",
            "Ana Ruiz\t12/10/2021, 7:37:51 PM\t12/10/2021, 8:07:14 PM\t29m 23s\tana@example.ie\tOrganiser\t"
            "ana@example.ie",
            "Ben Shaw\t12/10/2021, 7:38:13 PM\t12/10/2021, 8:07:12 PM\t28m 59s\tBen@Example.ie\tPresenter\t"
            "bshaw@example.ie",
        ]
    )
    raw = utf16le(text)
    assert detect_format(raw) is ReportFormat.TEAMS
    # 12/10 is ambiguous on its own; the meeting was on 10 December 2021.
    report = parse_report(raw, "Europe/Dublin", date(2021, 12, 10))
    assert report.title == "DevOps sync"
    assert report.warnings == ()
    people = matched(report)
    assert {e: (p.role, round(p.minutes, 2)) for e, p in people.items()} == {
        "ana@example.ie": ("organizer", 29.38),
        "ben@example.ie": ("presenter", 28.98),
    }
    assert people["ana@example.ie"].segments[0].join == datetime(2021, 12, 10, 19, 37, 51, tzinfo=UTC)


def test_teams_2020_join_leave_log() -> None:
    text = "\n".join(
        [
            "Full Name\tUser Action\tTimestamp",
            "Ana Ruiz\tJoined\t3/27/2020, 9:59:43 AM",
            "Ben Shaw\tJoined\t3/27/2020, 10:01:00 AM",
            "Ben Shaw\tLeft\t3/27/2020, 10:31:00 AM",
            "Ana Ruiz\tLeft\t3/27/2020, 11:00:13 AM",
        ]
    )
    report = parse_report(utf16le(text), "Europe/London")
    assert report.format is ReportFormat.TEAMS
    assert matched(report) == {}
    assert [(p.display_name, round(p.minutes, 2)) for p in unmatched(report)] == [
        ("Ben Shaw", 30.00),
        ("Ana Ruiz", 60.50),
    ]


ZOOM_2020 = "\n".join(
    [
        "Attendee Report,",
        'Report Generated:,"Mar 28, 2020 6:26 PM"',
        "Topic,Webinar ID,Actual Start Time,Actual Duration (minutes),# Registered,# Cancelled,"
        "Unique Viewers,Total Users,Max Concurrent Views",
        'Shelter medicine workshop,123-456-789,"Mar 28, 2020 8:07 AM",95,4,0,3,6,3',
        "Host Details,",
        "Attended,User Name,Email,Join Time,Leave Time,Time in Session (minutes),Country/Region Name",
        'Yes,Host Person,host@example.org,"Mar 28, 2020 08:00:10","Mar 28, 2020 09:40:00",100,Spain',
        "Panelist Details,",
        '"Attended","User Name","Email","Join Time","Leave Time","Time in Session (minutes)",'
        '"Country/Region Name"',
        '"Yes","Dr Vet","vet@example.org","Mar 28, 2020 08:05:00","Mar 28, 2020 09:00:00",55,"Chile"',
        '"Yes","Dr Vet","vet@example.org","Mar 28, 2020 08:50:00","Mar 28, 2020 09:35:00",45,"Chile"',
        "Attendee Details,",
        '"Attended","First Name","Last Name","Email","Registration Time","Approval Status",'
        '"Join Time","Leave Time","Time in Session (minutes)","Country/Region Name"',
        '"Yes","Ada","Lovelace","ada@example.org","Mar 20, 2020 10:00:00","approved",'
        '"Mar 28, 2020 08:07:27","Mar 28, 2020 08:37:27","30","Peru"',
        '"Yes","Ada","Lovelace","ADA@example.org",,,'
        '"Mar 28, 2020 09:00:00","Mar 28, 2020 09:30:30","31","Peru"',
        '"Yes","Alan","Turing","alan@example.org","Mar 21, 2020 11:00:00","approved",'
        '"Mar 28, 2020 08:10:00","Mar 28, 2020 08:20:38","11","Peru"',
        '"No","Grace","Hopper","grace@example.org","Mar 22, 2020 12:00:00","approved","--","--","--","--"',
        "Other Attended,",
        '"User Name","Join Time","Leave Time","Time in Session (minutes)","Country/Region Name"',
        '"Walk-in 1","Mar 28, 2020 8:20 AM","Mar 28, 2020 8:45 AM",25,"India"',
        '"Walk-in 2","Mar 28, 2020 8:30 AM","Mar 28, 2020 8:31 AM",2,"India"',
        "",
    ]
)


def test_zoom_2020_layout_with_other_attended() -> None:
    raw = ZOOM_2020.encode("utf-8")
    assert detect_format(raw) is ReportFormat.ZOOM
    report = parse_report(raw, "America/New_York")
    assert report.title == "Shelter medicine workshop"
    assert report.warnings == ()
    assert minutes_by_email(report.people) == {
        "ada@example.org": 60.50,
        "alan@example.org": 10.63,
        "grace@example.org": 0.00,
    }
    assert matched(report)["ada@example.org"].display_name == "Ada Lovelace"
    assert [(p.display_name, round(p.minutes, 2)) for p in unmatched(report)] == [
        ("Walk-in 1", 25.00),
        ("Walk-in 2", 1.00),
    ]
    assert {p.email: (p.role, round(p.minutes, 2)) for p in report.staff} == {
        "host@example.org": ("host", 99.83),
        "vet@example.org": ("panelist", 90.00),
    }
    # New York is on daylight time (UTC-4) on 28 March 2020.
    ada = matched(report)["ada@example.org"]
    assert ada.segments[0].join == datetime(2020, 3, 28, 12, 7, 27, tzinfo=UTC)


@pytest.mark.parametrize(
    ("join", "leave"),
    [("14.04.2027 10:00:00", "14.04.2027 11:00:30"), ("04/14/2027 10:00:00 AM", "04/14/2027 11:00:30 AM")],
)
def test_zoom_german_headers(join: str, leave: str) -> None:
    text = "\n".join(
        [
            "Name (ursprünglicher Name),E-Mail,Beitrittszeit,Austrittszeit,Dauer (Minuten),Gast",
            f"Eva Müller,Eva.Mueller@example.de,{join},{leave},61,Nein",
            f"Eva Müller (Telefon),eva.mueller@example.de,{join},{leave},61,Nein",
            f"Telefonteilnehmer,,{join},{leave},61,Ja",
        ]
    )
    raw = text.encode("utf-8")
    assert detect_format(raw) is ReportFormat.ZOOM
    report = parse_report(raw, "Europe/Berlin")
    assert report.warnings == ()
    [eva] = matched(report).values()
    assert (eva.email, eva.display_name, eva.role) == ("eva.mueller@example.de", "Eva Müller", "attendee")
    assert round(eva.minutes, 2) == 60.50
    assert eva.segments[0].join == datetime(2027, 4, 14, 8, 0, tzinfo=UTC)
    assert [p.display_name for p in unmatched(report)] == ["Telefonteilnehmer"]


def test_nonexistent_and_repeated_local_times_use_fold_0() -> None:
    text = "\n".join(
        [
            "User Name,Email,Join Time,Leave Time",
            "Spring,spring@example.org,03/28/2027 02:30:00 AM,03/28/2027 03:30:00 AM",
            "Autumn,autumn@example.org,10/31/2027 02:30:00 AM,10/31/2027 03:30:00 AM",
        ]
    )
    people = matched(parse_report(text.encode("utf-8"), MADRID))
    # 02:30 does not exist on 28 March: read with the winter offset (UTC+1).
    assert people["spring@example.org"].segments[0].join == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    # 02:30 happens twice on 31 October: the first time (summer, UTC+2).
    assert people["autumn@example.org"].segments[0].join == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------
# Unreadable input


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (bytes(range(256)) * 4, "cannot be decoded"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(200)), "cannot be decoded"),
        (b"PK\x03\x04" + bytes(60), "ZIP"),
        (
            b"Lorem ipsum dolor sit amet,\nconsectetur,adipiscing elit\n",
            "not a Zoom or Teams attendance report",
        ),
    ],
)
def test_garbage_raises_a_clear_error(raw: bytes, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_report(raw, MADRID)
    with pytest.raises(ReportError, match=message):
        detect_format(raw)


def test_unknown_zone_and_bad_timestamps_raise() -> None:
    with pytest.raises(ReportError, match="time zone"):
        parse_report(ZOOM_RAW, "Mars/Olympus_Mons")
    broken = ZOOM_RAW.replace(b'"04/14/2027 10:00:00 AM"', b'"sometime in the morning"')
    with pytest.raises(ReportError, match="sometime in the morning"):
        parse_zoom(broken)


def test_minutes_of_a_person_is_the_union_of_segments() -> None:
    ana = matched(parse_zoom())["ana.souza@pf.example.gov.br"]
    laptop, phone = ana.segments
    assert laptop.join < phone.join
    assert phone.leave < laptop.leave
    assert ana.minutes == (laptop.leave - laptop.join).total_seconds() / 60
