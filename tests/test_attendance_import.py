"""Importing Zoom and Teams reports through the organiser page gives exactly the shared README's §3.

Registrants are written straight into the database (emails in other cases than the reports, so the
match has to normalise); the reports are uploaded through the HTML form like an organiser would.
"""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from conftest import add_event, create_user, csrf_token, login
from email_validator import validate_email
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from events_app.db.models import (
    AttendanceImport,
    AuditEntry,
    CheckIn,
    Event,
    EventKind,
    OnlineAttendance,
    Registration,
    RegistrationStatus,
    Role,
    Sector,
)
from events_app.lib.security import TokenPurpose, derive_token, hash_token

FIXTURES = Path(__file__).parent / "fixtures"
ZOOM_RAW = (FIXTURES / "zoom_webinar_attendee_report.csv").read_bytes()
TEAMS_RAW = (FIXTURES / "teams_attendance_report.csv").read_bytes()
SECRET = "test-secret-key-that-is-long-enough-0123456789"

#: README §3.1: registrant -> minutes attended (union), and the ≥ 54 min column.
ZOOM = {
    "jose.alvarez@policia.example.gov.co": ("José Álvarez Gutiérrez", 92.15, True),
    "conceicao.ribeiro@pf.example.gov.br": ("Maria da Conceição Ribeiro", 89.23, True),
    "sebastian.munoz@carabineros.example.cl": ("Sebastián Muñoz Rojas", 0.00, False),
    "lferreyra@mpf.example.gob.ar": ("Luciana Ferreyra", 83.77, True),
    "tomas.nunez@fiscalia.example.gob.mx": ("Tomás Núñez Herrera", 10.00, False),
    "ana.souza@pf.example.gov.br": ("Ana Beatriz Souza", 89.93, True),
    "renata.cardenas@example.org": ("Renata Cárdenas Vélez", 59.08, True),
    "goncalo.araujo@example.org": ("Gonçalo Araújo", 0.00, False),
    "begona.iturriaga@example.net": ("Begoña Iturriaga Sáez", 52.00, False),
    "joaopedro.nascimento@pf.example.gov.br": ("João Pedro Nascimento", 91.87, True),
    "camila.rodriguez@policia.example.gov.co": ("Camila Rodríguez Peña", 60.50, True),
    "ines.ibanez@mpf.example.gob.ar": ("Inés Ibáñez", 0.00, False),
    "valentina.ospina@redbienestar.example.org": ("Valentina Ospina Zuluaga", 70.10, True),
    "diego.quispe@policia.example.gob.pe": ("Diego Quispe Mamani", 45.50, False),
    "fatima.guzman@fiscalia.example.gob.mx": ("Fátima Guzmán Leal", 93.25, True),
    "martin.benitez@mpf.example.gob.ar": ("Martín Benítez", 60.00, True),
    "lucia.fernandes@example.com": ("Lúcia Fernandes", 38.63, False),
    "ximena.cortes@carabineros.example.cl": ("Ximena Cortés", 88.00, True),
    "andres.villalobos@example.org": ("Andrés Villalobos", 70.00, True),
    "rosario.pinheiro@pf.example.gov.br": ("Rosário Pinheiro", 37.50, False),
    "hector.sandoval@policia.example.gov.co": ("Héctor Sandoval", 90.33, True),
}
#: README §3.2, threshold 36 min.
TEAMS = {
    "marta.gil@ip.example.gob.es": ("Marta Gil Navarro", 71.63, True),
    "javier.ortega@ip.example.gob.es": ("Javier Ortega Ruiz", 68.47, True),
    "ignacio.ferrer@ip.example.gob.es": ("Ignacio Ferrer Solís", 64.00, True),
    "andres.rincon@inpec.example.gov.co": ("Andrés Felipe Rincón", 64.75, True),
    "elena.sanchez@ip.example.gob.es": ("Elena Sánchez Vidal", 60.58, True),
    "carmen.ruiztagle@gendarmeria.example.cl": ("Carmen Ruiz-Tagle", 60.03, True),
    "inigo.etxeberria@ip.example.gob.es": ("Íñigo Etxeberria Goñi", 58.20, True),
    "thiago.albuquerque@depen.example.gov.br": ("Thiago Albuquerque", 58.25, True),
    "joaquim.teixeira@example.net": ("Joaquim Teixeira", 20.00, False),
    "nuria.casals@example.org": ("Nuria Casals i Puig", 59.00, True),
    "barbara.nogueira@depen.example.gov.br": ("Bárbara Nogueira", 56.38, True),
    "mateo.gimenez@example.com": ("Mateo Giménez", 59.00, True),
    "gparedes@spf.example.gob.ar": ("Guillermo Paredes", 8.00, False),
    "raul.prieto@ip.example.gob.es": ("Raúl Prieto Calvo", 30.00, False),
    "monica.ayala@inpe.example.gob.pe": ("Mónica Ayala Torres", 54.67, True),
    "fj.ledesma@ip.example.gob.es": ("Francisco Javier Ledesma", 50.00, True),
    "sofia.beltran@ip.example.gob.es": ("Sofía Beltrán", 44.50, True),
    "alejandra.renteria@inpec.example.gov.co": ("Alejandra Rentería", 30.50, False),
    "pilar.dominguez@ip.example.gob.es": ("Pilar Domínguez", 31.00, False),
}
COUNTRY_BY_TLD = {"co": "CO", "br": "BR", "cl": "CL", "ar": "AR", "mx": "MX", "pe": "PE", "es": "ES"}

#: A second Teams report: the meeting was restarted at 4 PM (2021 layout, UTF-16 like Teams writes).
RESTART_RAW = "\n".join(
    [
        "Meeting Summary",
        "Total Number of Participants\t2",
        "Meeting Title\tCoordinación penitenciaria (continuación)",
        "Meeting Start Time\t4/29/2027, 4:00:00 PM",
        "Meeting End Time\t4/29/2027, 4:30:00 PM",
        "",
        "Full Name\tJoin Time\tLeave Time\tDuration\tEmail\tRole\tParticipant ID (UPN)",
        "Marta Gil Navarro\t4/29/2027, 4:00:00 PM\t4/29/2027, 4:30:00 PM\t30m\tMarta.Gil@ip.example.gob.es\t"
        "Organizer\tmarta.gil@ip.example.gob.es",
        "Joaquim Teixeira (External)\t4/29/2027, 4:10:00 PM\t4/29/2027, 4:30:00 PM\t20m\t"
        "JOAQUIM.TEIXEIRA@example.net\tAttendee\t",
    ]
).encode("utf-16")


def country_of(email: str) -> str:
    return COUNTRY_BY_TLD.get(email.rsplit(".", 1)[-1], "UY")


def sector_of(email: str) -> Sector:
    if any(word in email for word in ("policia", "carabineros", "@pf.", "depen")):
        return Sector.POLICE
    if any(word in email for word in ("fiscalia", "mpf")):
        return Sector.PROSECUTION
    return Sector.OTHER


def variant(email: str, index: int) -> str:
    """The email as the person typed it: other letter cases, surrounding spaces."""
    local, _, domain = email.partition("@")
    shapes = (
        f"{local.upper()}@{domain}",
        f"  {local.title()}@{domain.upper()} ",
        f"{local}@{domain.title()}",
    )
    return shapes[index % len(shapes)]


def registration_row(event: Event, email: str, name: str, index: int, **overrides: Any) -> dict[str, Any]:
    registration_id = uuid7()
    typed = variant(email, index)
    normalized = validate_email(typed.strip(), check_deliverability=False).normalized
    values = {
        "id": registration_id,
        "event_id": event.id,
        "full_name": name,
        "email": normalized,
        "email_normalized": normalized.lower(),
        "country": country_of(email),
        "institution": "Institución",
        "position": "",
        "sector": sector_of(email),
        "language": "es",
        "status": RegistrationStatus.CONFIRMED,
        "ticket_hash": hash_token(derive_token(SECRET, TokenPurpose.TICKET, registration_id, 1)),
        "manage_token_hash": hash_token(derive_token(SECRET, TokenPurpose.MANAGE, registration_id, 1)),
        "privacy_notice_version": "2026-11",
        "consent_given_at": datetime.now(UTC),
    }
    values.update(overrides)
    return values


async def add_registrants(
    session_maker: async_sessionmaker[AsyncSession], event: Event, people: dict[str, tuple[str, float, bool]]
) -> None:
    rows = [
        registration_row(event, email, name, index)
        for index, (email, (name, _, _)) in enumerate(people.items())
    ]
    async with session_maker() as session:
        await session.execute(sa.insert(Registration), rows)
        await session.commit()


def local(day: str, time: str, zone: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def add_webinars(session_maker: async_sessionmaker[AsyncSession]) -> tuple[Event, Event]:
    common = {"kind": EventKind.ONLINE, "join_url": "https://meet.example.org/j/1", "venue_name": ""}
    zoom = await add_event(
        session_maker,
        slug="zoom-webinar",
        starts_at=local("2027-04-14", "10:00", "America/Bogota"),
        ends_at=local("2027-04-14", "11:30", "America/Bogota"),
        timezone="America/Bogota",
        **common,
    )
    teams = await add_event(
        session_maker,
        slug="teams-meeting",
        starts_at=local("2027-04-29", "15:00", "Europe/Madrid"),
        ends_at=local("2027-04-29", "16:00", "Europe/Madrid"),
        timezone="Europe/Madrid",
        **common,
    )
    await add_registrants(session_maker, zoom, ZOOM)
    await add_registrants(session_maker, teams, TEAMS)
    return zoom, teams


async def upload(
    client: AsyncTestClient[Litestar],
    event: Event,
    raw: bytes,
    zone: str,
    name: str = "report.csv",
    **form: str,
) -> Any:
    path = f"/manage/events/{event.id}/attendance/import"
    token = await csrf_token(client, path)
    data = {"_csrf_token": token, "timezone": zone, "format": "auto", **form}
    return await client.post(path, data=data, files={"file": (name, raw, "text/csv")}, follow_redirects=False)


async def post_form(client: AsyncTestClient[Litestar], page: str, action: str, **form: str) -> Any:
    token = await csrf_token(client, page)
    return await client.post(action, data={"_csrf_token": token, **form}, follow_redirects=False)


async def attendance(
    session_maker: async_sessionmaker[AsyncSession], event: Event
) -> dict[str, tuple[float, str]]:
    """email of the registrant (or ``?name`` for a row without one) -> (minutes, matched_by)."""
    statement = (
        sa.select(OnlineAttendance, Registration.email_normalized)
        .outerjoin(Registration, Registration.id == OnlineAttendance.registration_id)
        .where(OnlineAttendance.event_id == event.id)
    )
    async with session_maker() as session:
        rows = (await session.execute(statement)).all()
    return {(email or f"?{row.display_name}"): (round(row.minutes, 2), row.matched_by) for row, email in rows}


def expected(people: dict[str, tuple[str, float, bool]]) -> dict[str, tuple[float, str]]:
    return {email: (minutes, "email") for email, (_, minutes, _) in people.items()}


def page_rows(text: str, table: str) -> dict[str, tuple[str, str]]:
    """The matched table of the import page: email -> (minutes, attended)."""
    body = text.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    pattern = re.compile(
        r"<td data-email>([^<]*)</td>.*?<td data-minutes>([^<]*)</td><td data-attended=\"(\w+)\""
    )
    return {
        html.unescape(email).lower(): (minutes, attended)
        for email, minutes, attended in pattern.findall(body)
    }


async def audit_actions(session_maker: async_sessionmaker[AsyncSession]) -> Counter[str]:
    async with session_maker() as session:
        return Counter((await session.execute(sa.select(AuditEntry.action))).scalars())


async def test_zoom_and_teams_imports_give_the_readme_minutes(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    zoom, teams = await add_webinars(session_maker)
    await create_user(
        session_maker, "manager@programme.example.org", Role.EVENT_MANAGER, events=[zoom, teams]
    )
    await login(client, "manager@programme.example.org")

    response = await upload(client, zoom, ZOOM_RAW, "America/Bogota", "zoom.csv")
    assert response.status_code in (302, 303), response.text
    zoom_rows = await attendance(session_maker, zoom)
    assert {key: value for key, value in zoom_rows.items() if not key.startswith("?")} == expected(ZOOM)
    assert zoom_rows["?+576015550142"] == (65.50, "none")  # the dial-in, unmatched
    staff = {key: value for key, value in zoom_rows.items() if value[1] == "staff"}
    assert len(staff) == 4  # host and panelists are kept apart, never counted as registrants

    page = await client.get(response.headers["location"])
    assert "The report was imported." in page.text
    assert page_rows(page.text, "matched") == {
        email: (f"{minutes:.2f}", "yes" if meets else "no") for email, (_, minutes, meets) in ZOOM.items()
    }
    assert re.search(r'data-count="matched">21<', page.text)
    assert re.search(r'data-count="attended">13<', page.text)
    assert re.search(r'data-count="unmatched">1<', page.text)
    unmatched = page.text.split('id="unmatched"', 1)[1].split("</table>", 1)[0]
    assert "+576015550142" in unmatched
    assert "65.50" in unmatched

    response = await upload(client, teams, TEAMS_RAW, "Europe/Madrid", "teams.csv")
    assert response.status_code in (302, 303), response.text
    teams_rows = await attendance(session_maker, teams)
    assert teams_rows == {**expected(TEAMS), "?Patricia Lozano (Unverified)": (45.33, "none")}
    page = await client.get(f"/manage/events/{teams.id}/attendance/import")
    assert page_rows(page.text, "matched") == {
        email: (f"{minutes:.2f}", "yes" if meets else "no") for email, (_, minutes, meets) in TEAMS.items()
    }
    assert re.search(r'data-count="attended">14<', page.text)

    # The restarted meeting's second report is merged: union of segments, not a sum.
    response = await upload(client, teams, RESTART_RAW, "Europe/Madrid", "teams-restart.csv")
    assert response.status_code in (302, 303), response.text
    merged = await attendance(session_maker, teams)
    assert merged["marta.gil@ip.example.gob.es"] == (97.33, "email")  # 2:52:40 PM to 4:30 PM
    assert merged["joaquim.teixeira@example.net"] == (40.00, "email")  # 20 + 20 minutes: now attended
    assert {
        k: v
        for k, v in merged.items()
        if k not in ("marta.gil@ip.example.gob.es", "joaquim.teixeira@example.net")
    } == {
        k: v
        for k, v in teams_rows.items()
        if k not in ("marta.gil@ip.example.gob.es", "joaquim.teixeira@example.net")
    }
    assert (await audit_actions(session_maker))["attendance_imported"] == 3


async def test_the_same_file_twice_changes_nothing_and_bad_files_store_nothing(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    zoom, _ = await add_webinars(session_maker)
    await create_user(session_maker, "manager@programme.example.org", Role.EVENT_MANAGER, events=[zoom])
    await login(client, "manager@programme.example.org")
    await upload(client, zoom, ZOOM_RAW, "America/Bogota")
    before = await attendance(session_maker, zoom)

    response = await upload(client, zoom, ZOOM_RAW, "America/Bogota", "again.csv")
    assert response.status_code in (302, 303)
    page = await client.get(response.headers["location"])
    assert "This file was already imported: nothing changed." in page.text
    assert await attendance(session_maker, zoom) == before
    async with session_maker() as session:
        imports = (await session.execute(sa.select(AttendanceImport))).scalars().all()
        rows = (await session.execute(sa.select(sa.func.count()).select_from(OnlineAttendance))).scalar_one()
    assert len(imports) == 1
    assert rows == len(before)
    assert (await audit_actions(session_maker))["attendance_imported"] == 1

    # Not a report, a bad zone, no file, a file too large: inline errors, 422, nothing stored.
    response = await upload(client, zoom, b"name,age\nana,3\n", "America/Bogota")
    assert response.status_code == 422
    assert 'id="file-error"' in response.text
    assert 'aria-describedby="file-error"' in response.text
    response = await upload(client, zoom, ZOOM_RAW, "Mars/Olympus")
    assert response.status_code == 422
    assert 'id="timezone-error"' in response.text
    assert 'value="Mars/Olympus"' in response.text
    response = await upload(client, zoom, b"", "America/Bogota")
    assert response.status_code == 422
    assert 'id="file-error"' in response.text
    response = await upload(client, zoom, b"x" * (5 * 1024 * 1024 + 1), "America/Bogota")
    assert response.status_code == 422
    assert "at most 5 MB" in response.text
    response = await upload(client, zoom, b"x" * (7 * 1024 * 1024), "America/Bogota")
    assert response.status_code == 413
    async with session_maker() as session:
        assert len((await session.execute(sa.select(AttendanceImport))).scalars().all()) == 1
    assert await attendance(session_maker, zoom) == before


async def test_manual_match_threshold_overview_and_export(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    zoom, _ = await add_webinars(session_maker)
    manager = await create_user(
        session_maker, "manager@programme.example.org", Role.EVENT_MANAGER, events=[zoom]
    )
    async with session_maker() as session:
        tomas = (
            (
                await session.execute(
                    sa.select(Registration).where(
                        Registration.email_normalized == "tomas.nunez@fiscalia.example.gob.mx"
                    )
                )
            )
            .unique()
            .scalar_one()
        )
        session.add(
            CheckIn(
                id=uuid7(),
                event_id=zoom.id,
                registration_id=tomas.id,
                device="door-1",
                staff_user_id=manager.id,
                scanned_at=datetime(2027, 4, 14, 14, 55, tzinfo=UTC),
                nonce="nonce-1",
            )
        )
        session.add(
            Registration(
                **registration_row(
                    zoom, "gone@example.org", "Gone Away", 0, status=RegistrationStatus.CANCELLED
                )
            )
        )
        await session.commit()
    await login(client, "manager@programme.example.org")
    await upload(client, zoom, ZOOM_RAW, "America/Bogota")
    page_url = f"/manage/events/{zoom.id}/attendance/import"

    # Match the dial-in by hand to Sebastián (who never joined with his own account).
    rows = await attendance(session_maker, zoom)
    async with session_maker() as session:
        dial_in = (
            await session.execute(
                sa.select(OnlineAttendance).where(OnlineAttendance.display_name == "+576015550142")
            )
        ).scalar_one()
        sebastian = (
            (
                await session.execute(
                    sa.select(Registration).where(
                        Registration.email_normalized == "sebastian.munoz@carabineros.example.cl"
                    )
                )
            )
            .unique()
            .scalar_one()
        )
    search = await client.get(page_url, params={"q": "muñoz"})
    assert f'<option value="{sebastian.id}">' in search.text
    action = f"/manage/events/{zoom.id}/attendance/{dial_in.id}/match"
    bad = await post_form(client, page_url, action, registration_id=str(uuid.uuid4()))
    assert bad.status_code == 422
    assert f'id="registration_id-{dial_in.id}-error"' in bad.text
    response = await post_form(client, page_url, action, registration_id=str(sebastian.id))
    assert response.status_code in (302, 303)
    matched = await attendance(session_maker, zoom)
    assert matched["sebastian.munoz@carabineros.example.cl"] == (65.50, "email")  # merged into his row
    assert "?+576015550142" not in matched
    assert len(matched) == len(rows) - 1
    again = await post_form(client, page_url, action, registration_id=str(sebastian.id))
    assert again.status_code == 404  # the row is gone (merged)

    overview = await client.get(f"/manage/events/{zoom.id}/attendance")
    assert overview.status_code == 200
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', overview.text))
    # 22 registered (one cancelled), 18 joined with segments + Sebastián, 13 + Sebastián attended,
    # Tomás checked in: no-shows are the 21 confirmed less 14 online less Tomás.
    assert counts == {
        "registered": "22",
        "confirmed": "21",
        "checked_in": "1",
        "joined_online": "19",
        "attended_online": "14",
        "no_shows": "6",
    }
    by_country = overview.text.split('id="by-country"', 1)[1].split("</table>", 1)[0]
    mexico = re.search(r'<th scope="row">México</th>((?:<td>\d+</td>){6})', by_country) or re.search(
        r'<th scope="row">Mexico</th>((?:<td>\d+</td>){6})', by_country
    )
    assert mexico is not None
    assert re.findall(r"<td>(\d+)</td>", mexico.group(1)) == ["2", "2", "1", "2", "1", "0"]

    export = await client.get(f"/manage/events/{zoom.id}/attendance.csv")
    assert export.status_code == 200
    assert export.headers["cache-control"] == "no-store"
    lines = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert len(lines[0]) == 9
    assert len(lines) == 1 + 22
    by_email = {line[1].lower(): line for line in lines[1:]}
    assert by_email["jose.alvarez@policia.example.gov.co"][6:] == ["92.15", "yes", "yes"]
    assert by_email["begona.iturriaga@example.net"][6:] == ["52.00", "no", "no"]
    assert by_email["tomas.nunez@fiscalia.example.gob.mx"][5].startswith("2027-04-14T09:55:00-05:00")
    assert by_email["tomas.nunez@fiscalia.example.gob.mx"][6:] == ["10.00", "no", "yes"]
    assert by_email["gone@example.org"][6:] == ["", "no", "no"]

    # The threshold: 90 % of 90 minutes is 81.
    invalid = await post_form(
        client, page_url, f"/manage/events/{zoom.id}/attendance/threshold", attendance_threshold_percent="0"
    )
    assert invalid.status_code == 422
    assert 'id="attendance_threshold_percent-error"' in invalid.text
    saved = await post_form(
        client, page_url, f"/manage/events/{zoom.id}/attendance/threshold", attendance_threshold_percent="90"
    )
    assert saved.status_code in (302, 303)
    page = await client.get(page_url)
    assert re.search(r'data-count="attended">8<', page.text)

    actions = await audit_actions(session_maker)
    assert actions["attendance_imported"] == 1
    assert actions["attendance_matched"] == 1
    assert actions["attendance_exported"] == 1
    assert actions["attendance_threshold_changed"] == 1


async def test_other_managers_focal_points_and_checkin_staff(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    zoom, teams = await add_webinars(session_maker)
    await create_user(session_maker, "zoom@programme.example.org", Role.EVENT_MANAGER, events=[zoom])
    await create_user(session_maker, "teams@programme.example.org", Role.EVENT_MANAGER, events=[teams])
    await create_user(session_maker, "brazil@programme.example.org", Role.FOCAL_POINT, countries=["BR"])
    await create_user(session_maker, "door@programme.example.org", Role.CHECKIN_STAFF, events=[zoom])
    await login(client, "zoom@programme.example.org")
    await upload(client, zoom, ZOOM_RAW, "America/Bogota")
    async with session_maker() as session:
        dial_in_id = (
            await session.execute(sa.select(OnlineAttendance.id).where(OnlineAttendance.matched_by == "none"))
        ).scalar_one()
    await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/manage")})

    await login(client, "teams@programme.example.org")
    base = f"/manage/events/{zoom.id}"
    for path in (
        f"{base}/attendance",
        f"{base}/attendance.csv",
        f"{base}/attendance/import",
        f"{base}/certificates",
    ):
        assert (await client.get(path)).status_code == 404, path
    token = await csrf_token(client, f"/manage/events/{teams.id}/attendance/import")
    posts = {
        f"{base}/attendance/import": {"timezone": "America/Bogota"},
        f"{base}/attendance/threshold": {"attendance_threshold_percent": "50"},
        f"{base}/attendance/{dial_in_id}/match": {"registration_id": str(uuid.uuid4())},
        f"/manage/events/{teams.id}/attendance/{dial_in_id}/match": {"registration_id": str(uuid.uuid4())},
        f"{base}/certificates/send": {},
    }
    for path, form in posts.items():
        files = {"file": ("r.csv", ZOOM_RAW)} if path.endswith("/import") else None
        response = await client.post(path, data={"_csrf_token": token, **form}, files=files)
        assert response.status_code == 404, path
    await client.post("/logout", data={"_csrf_token": token})

    await login(client, "brazil@programme.example.org")
    overview = await client.get(f"{base}/attendance")
    assert overview.status_code == 200
    brazil = [email for email in ZOOM if email.endswith(".br")]
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', overview.text))
    assert counts["registered"] == str(len(brazil))
    assert counts["attended_online"] == str(sum(1 for email in brazil if ZOOM[email][2]))
    export = await client.get(f"{base}/attendance.csv")
    emails = {
        line[1].lower() for line in list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))[1:]
    }
    assert emails == set(brazil)
    assert (await client.get(f"{base}/attendance/import")).status_code == 404
    await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/manage")})

    await login(client, "door@programme.example.org")
    for path in (f"{base}/attendance", f"{base}/attendance.csv", f"{base}/attendance/import"):
        assert (await client.get(path, follow_redirects=False)).status_code in (302, 303, 404), path
        assert (await client.get(path, follow_redirects=False)).status_code != 200
