"""CSV and XLSX exports hold exactly the filtered list, readable by spreadsheets and safe to open."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import sqlalchemy as sa
from conftest import add_event, create_user, login
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_attendees import Person, add_registrations, person

from events_app.db.models import AuditEntry, RegistrationStatus, Role
from events_app.domain.attendees.exports import COLUMN_HEADERS
from events_app.lib.i18n import force_locale, gettext

BOGOTA = ZoneInfo("America/Bogota")
BASE = datetime(2026, 5, 4, 13, 30, 15, tzinfo=UTC)
FILTER = "status=confirmed&country=CO&country=PE&country=JP"
CONFIRMED = RegistrationStatus.CONFIRMED


def people() -> tuple[list[Person], list[Person]]:
    """(the people the filter keeps, the people it leaves out)."""
    kept = [
        person(0, BASE, full_name="Maria da Conceição", country="CO", status=CONFIRMED),
        person(1, BASE, full_name="José Núñez", country="PE", status=CONFIRMED),
        person(2, BASE, full_name="Ōkubo Haruka", country="JP", status=CONFIRMED),
        person(
            3, BASE, full_name='=HYPERLINK("http://evil.example","click")', country="CO", status=CONFIRMED
        ),
        person(4, BASE, full_name="Plus Person", institution="+SUM(A1:A9)", country="PE", status=CONFIRMED),
        person(5, BASE, full_name="-2+3", institution="@cmd", country="CO", status=CONFIRMED),
        person(6, BASE, full_name="\tTabbed", institution="\rReturned", country="JP", status=CONFIRMED),
    ]
    left_out = [
        person(7, BASE, full_name="Pending Person", country="CO", status=RegistrationStatus.PENDING_APPROVAL),
        person(8, BASE, full_name="Cancelled Person", country="PE", status=RegistrationStatus.CANCELLED),
        person(9, BASE, full_name="Brazil Person", country="BR", status=CONFIRMED),
    ]
    return kept, left_out


def headers_in(language: str) -> list[str]:
    with force_locale(language):
        return [gettext(header) for header in COLUMN_HEADERS]


def local_iso(moment: datetime) -> str:
    return moment.astimezone(BOGOTA).isoformat(timespec="seconds")


async def setup(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> tuple[str, list[Person]]:
    event = await add_event(session_maker, timezone="America/Bogota")
    kept, left_out = people()
    await add_registrations(session_maker, event, kept + left_out)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    return f"/manage/events/{event.id}/attendees", kept


def check_rows(rows: list[list[str]], kept: list[Person], language: str) -> None:
    assert rows[0] == headers_in(language)
    body = rows[1:]
    assert [row[1] for row in body] == [p.email for p in kept]  # exactly the filtered rows, in order
    by_email = {row[1]: row for row in body}
    assert by_email["person0@example.org"][0] == "Maria da Conceição"
    assert by_email["person1@example.org"][0] == "José Núñez"
    assert by_email["person2@example.org"][0] == "Ōkubo Haruka"
    # Formulas stay text.
    assert by_email["person3@example.org"][0] == '\'=HYPERLINK("http://evil.example","click")'
    assert by_email["person4@example.org"][3] == "'+SUM(A1:A9)"
    assert by_email["person5@example.org"][0] == "'-2+3"
    assert by_email["person5@example.org"][3] == "'@cmd"
    assert by_email["person6@example.org"][0] == "'\tTabbed"
    # (XML turns a carriage return into a line feed when the XLSX is read back)
    assert by_email["person6@example.org"][3] in ("'\rReturned", "'\nReturned")
    for someone in kept:
        registered = by_email[someone.email][8]
        assert registered == local_iso(someone.created_at)
        assert registered.endswith("-05:00")
        assert datetime.fromisoformat(registered) == someone.created_at


async def test_csv_holds_exactly_the_filtered_rows_in_the_page_language(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    url, kept = await setup(client, session_maker)

    response = await client.get(f"{url}.csv?{FILTER}&lang=es")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="attendees-launch-')
    assert response.headers["content-disposition"].endswith('.csv"')
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    check_rows(rows, kept, "es")
    assert rows[0][:4] == ["Nombre completo", "Correo electrónico", "País", "Institución"]
    countries = {row[1]: row[2] for row in rows[1:]}
    assert countries["person1@example.org"] == "Perú"
    assert countries["person2@example.org"] == "Japón"
    assert {row[7] for row in rows[1:]} == {"Confirmada"}

    english = await client.get(f"{url}.csv?{FILTER}&lang=en")
    rows_en = list(csv.reader(io.StringIO(english.content.decode("utf-8-sig"), newline="")))
    check_rows(rows_en, kept, "en")
    assert rows_en[0][:4] == ["Full name", "Email", "Country", "Institution"]
    assert {row[1]: row[2] for row in rows_en[1:]}["person1@example.org"] == "Peru"

    async with session_maker() as session:
        entries = list(
            (await session.execute(sa.select(AuditEntry).where(AuditEntry.action == "attendees_exported")))
            .scalars()
            .all()
        )
    assert len(entries) == 2
    assert entries[0].actor_label == "admin@example.org"
    assert entries[0].details["format"] == "csv"
    assert entries[0].details["rows"] == len(kept)
    assert entries[0].details["filters"]["status"] == ["confirmed"]
    assert entries[0].details["filters"]["country"] == ["CO", "PE", "JP"]


async def test_xlsx_holds_the_same_rows_as_text(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    url, kept = await setup(client, session_maker)

    response = await client.get(f"{url}.xlsx?{FILTER}&lang=es")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.headers["content-disposition"].endswith('.xlsx"')
    assert response.headers["cache-control"] == "no-store"
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = workbook.worksheets[0]
    assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row)  # no formula
    rows = [
        ["" if value is None else str(value) for value in row] for row in sheet.iter_rows(values_only=True)
    ]
    check_rows(rows, kept, "es")
    async with session_maker() as session:
        formats = list(
            (
                await session.execute(
                    sa.select(AuditEntry.details).where(AuditEntry.action == "attendees_exported")
                )
            ).scalars()
        )
    assert [details["format"] for details in formats] == ["xlsx"]


async def test_exports_span_many_chunks_without_losing_or_repeating_rows(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker)
    everyone = [
        person(index, BASE + timedelta(seconds=index % 7), status=CONFIRMED, full_name=f"Name {index % 50}")
        for index in range(2345)
    ]
    await add_registrations(session_maker, event, everyone)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    url = f"/manage/events/{event.id}/attendees"

    # Sorted by a column with many ties, across chunks of 1000: the id keeps the order total.
    response = await client.get(f"{url}.csv?sort=full_name&order=desc")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))[1:]
    assert len(rows) == 2345
    assert sorted(row[1] for row in rows) == sorted(p.email for p in everyone)
    assert [row[0] for row in rows] == sorted((p.full_name for p in everyone), reverse=True)

    colombians = [p for p in everyone if p.country == "CO"]
    workbook = openpyxl.load_workbook(io.BytesIO((await client.get(f"{url}.xlsx?country=CO")).content))
    emails = [row[1] for row in workbook.worksheets[0].iter_rows(min_row=2, values_only=True)]
    assert emails == [p.email for p in sorted(colombians, key=lambda p: (p.created_at, p.id))]
