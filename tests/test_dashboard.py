"""Dashboards: counts by SQL over each principal's scope, accessible SVG charts, escaped labels."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from conftest import add_event, create_user, login, registration_form
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from events_app.db.models import (
    CheckIn,
    Event,
    EventKind,
    OnlineAttendance,
    Registration,
    RegistrationStatus,
    Role,
    Sector,
)
from events_app.domain.dashboard import charts
from events_app.domain.dashboard.services import (
    TOP_COUNTRIES,
    Count,
    Dashboard,
    DayCount,
    Rate,
    fill_days,
    fold_countries,
)
from events_app.lib.i18n import force_locale

EVIL_TITLE = "<script>alert('title')</script> Launch"
EVIL_INSTITUTION = "<script>alert('institution')</script>"


class Tables(HTMLParser):
    """Every ``<table id=...>``: row key (``data-key``, else the row header) -> (row header, value cell)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, tuple[str, str]]] = {}
        self._table: str | None = None
        self._key = ""
        self._cells: list[str] = []
        self._in_cell = False
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("id"):
            self._table = found["id"]
            self.tables[self._table or ""] = {}
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table:
            self._key, self._cells = found.get("data-key") or "", []
        elif tag in ("th", "td") and self._table and self._in_body:
            self._cells.append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "tbody":
            self._in_body = False
        elif tag in ("th", "td"):
            self._in_cell = False
        elif tag == "tr" and self._table and self._in_body and len(self._cells) == 2:
            label, value = (cell.strip() for cell in self._cells)
            self.tables[self._table][self._key or label] = (label, value)

    def handle_data(self, data: str) -> None:
        if self._in_cell and self._cells:
            self._cells[-1] += data


def tables_of(html: str) -> dict[str, dict[str, str]]:
    parser = Tables()
    parser.feed(html)
    return {table: {key: value for key, (_, value) in rows.items()} for table, rows in parser.tables.items()}


def labels_of(html: str, table: str) -> dict[str, str]:
    parser = Tables()
    parser.feed(html)
    return {key: label for key, (label, _) in parser.tables[table].items()}


def registration(
    event: Event, country: str, sector: Sector, status: RegistrationStatus, days_ago: int, **fields: Any
) -> Registration:
    now = datetime.now(UTC)
    return Registration(
        id=uuid7(),
        event_id=event.id,
        full_name=fields.get("full_name", "Ana Pérez"),
        email=f"{secrets.token_hex(6)}@example.org",
        email_normalized=f"{secrets.token_hex(6)}@example.org",
        country=country,
        institution=fields.get("institution", "Ministerio"),
        position="",
        sector=sector,
        language="es",
        status=status,
        ticket_hash=secrets.token_hex(32),
        manage_token_hash=secrets.token_hex(32),
        privacy_notice_version="2026-11",
        consent_given_at=now,
        created_at=now - timedelta(days=days_ago),
    )


C, P, W, X, R = (
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.PENDING_APPROVAL,
    RegistrationStatus.WAITLISTED,
    RegistrationStatus.CANCELLED,
    RegistrationStatus.REJECTED,
)


async def programme(session_maker: async_sessionmaker[AsyncSession]) -> tuple[Event, Event]:
    """Event A (evil title): 9 registrations in 6 countries; event B: 3 in 2 countries."""
    launch = await add_event(
        session_maker, slug="launch", texts={"en": {"title": EVIL_TITLE}}, approval_required=False
    )
    webinar = await add_event(session_maker, slug="webinar", texts={"en": {"title": "Webinar"}})
    rows = [
        (launch, "CO", Sector.POLICE, C, 3),
        (launch, "CO", Sector.POLICE, C, 3),
        (launch, "CO", Sector.POLICE, C, 1),
        (launch, "BR", Sector.JUDICIARY, C, 1),
        (launch, "BR", Sector.JUDICIARY, C, 1),
        (launch, "BR", Sector.CUSTOMS, P, 1),
        (launch, "MX", Sector.POLICE, W, 1),
        (launch, "AR", Sector.MINISTRY, X, 3),
        (launch, "PE", Sector.OTHER, R, 3),
        (webinar, "CO", Sector.PROSECUTION, C, 1),
        (webinar, "CO", Sector.PROSECUTION, C, 1),
        (webinar, "CL", Sector.POLICE, C, 3),
    ]
    async with session_maker() as session:
        session.add_all(
            registration(event, country, sector, status, days)
            for event, country, sector, status, days in rows
        )
        await session.commit()
    return launch, webinar


async def register_through_api(client: AsyncTestClient[Litestar]) -> None:
    """One registration the real way: Uruguay, penitentiary, confirmed, today."""
    body: dict[str, Any] = {
        **registration_form(country="UY", sector="penitentiary", institution=EVIL_INSTITUTION),
        "consent": True,
    }
    response = await client.post("/api/events/launch/registrations", json=body)
    assert response.status_code == 201, response.text


def day(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).date().isoformat()


async def test_admin_programme_and_event_dashboards_count_everything(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch, webinar = await programme(session_maker)
    await register_through_api(client)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")

    response = await client.get("/manage/dashboard")
    assert response.status_code == 200, response.text
    page = response.text
    tables = tables_of(page)
    assert tables["table-statuses"] == {
        "confirmed": "9",
        "pending_approval": "1",
        "waitlisted": "1",
        "cancelled": "1",
        "rejected": "1",
    }
    assert tables["table-countries"] == {"CO": "5", "BR": "3", "MX": "1", "CL": "1", "UY": "1"}
    assert tables["table-sectors"] == {
        "police": "5",
        "prosecution": "2",
        "judiciary": "2",
        "penitentiary": "1",
        "customs": "1",
        "ministry": "0",
        "international_organisation": "0",
        "other": "0",
    }
    assert tables["table-days"] == {day(3): "5", day(1): "7", day(0): "1"}
    assert tables["table-events"] == {str(launch.id): "8", str(webinar.id): "3"}
    assert re.search(r'<dd id="summary-total">13</dd>', page)
    assert re.search(r'<dd id="summary-active">11</dd>', page)
    assert labels_of(page, "table-countries")["CO"] == "Colombia"
    assert "table-rates" in tables

    # Four charts, each an image with a title and a description, and no script anywhere.
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"') == 4
    for chart in ("chart-days", "chart-statuses", "chart-countries", "chart-sectors"):
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in page
        assert f'<title id="{chart}-title">' in page
        assert f'<desc id="{chart}-desc">' in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; Launch" in page

    event_page = (await client.get(f"/manage/events/{launch.id}/dashboard")).text
    event_tables = tables_of(event_page)
    assert event_tables["table-countries"] == {"CO": "3", "BR": "3", "MX": "1", "UY": "1"}
    assert event_tables["table-statuses"]["cancelled"] == "1"
    assert event_tables["table-statuses"]["confirmed"] == "6"
    assert "table-events" not in event_tables
    assert "<script>alert" not in event_page
    assert "Dashboard: &lt;script&gt;" in event_page

    assert (await client.get(f"/manage/events/{uuid7()}/dashboard")).status_code == 404
    assert (await client.get("/manage/events/not-a-uuid/dashboard")).status_code == 404


async def test_dashboard_speaks_the_readers_language(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await programme(session_maker)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    page = (await client.get("/manage/dashboard?lang=fr")).text
    assert labels_of(page, "table-countries")["BR"] == "Brésil"
    spanish = (await client.get("/manage/dashboard?lang=es")).text
    assert labels_of(spanish, "table-sectors")["police"] == "Policía"
    assert labels_of(spanish, "table-countries")["MX"] == "México"


async def test_event_manager_sees_only_their_events(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch, webinar = await programme(session_maker)
    await create_user(session_maker, "manager@example.org", Role.EVENT_MANAGER, events=[webinar])
    await login(client, "manager@example.org")
    tables = tables_of((await client.get("/manage/dashboard")).text)
    assert tables["table-countries"] == {"CO": "2", "CL": "1"}
    assert tables["table-events"] == {str(webinar.id): "3"}
    assert tables["table-statuses"]["confirmed"] == "3"
    assert (await client.get(f"/manage/events/{webinar.id}/dashboard")).status_code == 200
    assert (await client.get(f"/manage/events/{launch.id}/dashboard")).status_code == 404


async def test_focal_point_counts_only_their_countries(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch, _ = await programme(session_maker)
    await create_user(session_maker, "focal@example.org", Role.FOCAL_POINT, countries=["BR", "CL"])
    await login(client, "focal@example.org")
    page = (await client.get("/manage/dashboard")).text
    tables = tables_of(page)
    assert tables["table-countries"] == {"BR": "3", "CL": "1"}
    assert tables["table-statuses"] == {
        "confirmed": "3",
        "pending_approval": "1",
        "waitlisted": "0",
        "cancelled": "0",
        "rejected": "0",
    }
    assert "Only registrants from your countries are counted." in page
    event_tables = tables_of((await client.get(f"/manage/events/{launch.id}/dashboard")).text)
    assert event_tables["table-countries"] == {"BR": "3"}
    assert event_tables["table-sectors"]["judiciary"] == "2"
    assert event_tables["table-sectors"]["police"] == "0"


async def test_checkin_staff_see_no_dashboard(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch, _ = await programme(session_maker)
    await create_user(session_maker, "door@example.org", Role.CHECKIN_STAFF, events=[launch])
    await login(client, "door@example.org")
    assert (await client.get("/manage/dashboard")).status_code == 404
    assert (await client.get(f"/manage/events/{launch.id}/dashboard")).status_code == 404


async def test_more_than_eighteen_countries_fold_into_other(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker)
    codes = ["AR", "BO", "BR", "CL", "CO", "CR", "CU", "DO", "EC", "SV", "GT", "HN", "MX", "PA", "PY"]
    codes += ["PE", "UY", "VE", "ES", "FR", "PT"]
    async with session_maker() as session:
        for rank, code in enumerate(codes):
            for _ in range(len(codes) - rank):  # AR has the most, PT the fewest
                session.add(registration(event, code, Sector.POLICE, C, 0))
        await session.commit()
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    countries = tables_of((await client.get("/manage/dashboard")).text)["table-countries"]
    assert list(countries) == [*codes[:TOP_COUNTRIES], "other"]
    assert countries["AR"] == "21"
    assert countries["other"] == str(3 + 2 + 1)


async def test_a_dashboard_without_registrations_says_so(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    response = await client.get("/manage/dashboard")
    assert response.status_code == 200
    assert "No registrations yet." in response.text
    assert tables_of(response.text)["table-statuses"]["confirmed"] == "0"


# --- the pieces, without a database ------------------------------------------------------------------


def test_chart_colours_are_readable_on_white() -> None:
    for colour in charts.GRAPHIC_COLOURS:
        assert charts.contrast_ratio(colour, charts.WHITE) >= charts.MIN_GRAPHIC_CONTRAST, colour
    for colour in charts.TEXT_COLOURS:
        assert charts.contrast_ratio(colour, charts.WHITE) >= charts.MIN_TEXT_CONTRAST, colour
    assert charts.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert charts.contrast_ratio("#d0d0d0", "#ffffff") < 3  # the check can fail


def test_numbers_and_dates_are_localised() -> None:
    dashboard = Dashboard(
        total=12345,
        active=1234,
        per_day=[DayCount(date(2027, 3, 1), 1234), DayCount(date(2027, 3, 2), 0)],
        by_country=[Count("BR", "Brasil", 1234)],
        by_sector=[Count("police", "Policía", 1234)],
        by_status=[Count("confirmed", "Confirmada", 1234)],
        rates=[Rate("checkin", "Check-in", 3, 4), Rate("online", "Online")],
        by_event=[],
    )
    with force_locale("fr"):
        view = charts.present_dashboard(dashboard)
    assert view.total == "12\u202f345"
    assert view.country_rows[0].value == "1\u202f234"
    assert view.day_rows[0].label == "1 mars 2027"
    assert [row.key for row in view.day_rows] == ["2027-03-01"]
    assert view.rates[0].text is not None
    assert view.rates[0].text.startswith("75\xa0%")
    assert view.rates[1].text is None
    with force_locale("es"):
        assert charts.present_dashboard(dashboard).total == "12.345"


def test_chart_geometry() -> None:
    chart = charts.bar_chart("c", "Title", [Count("a", "A" * 80, 10), Count("b", "B", 5), Count("z", "Z", 0)])
    assert [bar.width for bar in chart.bars] == [360.0, 180.0, 0.0]
    assert chart.bars[0].label.endswith("…")
    assert len(chart.bars[0].label) == charts.MAX_LABEL_CHARACTERS
    assert chart.bars[0].full_label == "A" * 80
    columns = charts.column_chart("d", "Days", fill_days({date(2027, 1, 1): 4, date(2027, 1, 3): 2}))
    assert len(columns.columns) == 2  # the empty day draws nothing
    assert columns.columns[0].height == 2 * columns.columns[1].height
    assert charts.nice_ticks(0) == [0, 1]
    assert charts.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(230) == [0, 100, 200, 300]


def test_fill_days_and_fold_countries() -> None:
    days = fill_days({date(2027, 1, 30): 2, date(2027, 2, 2): 1})
    assert [(d.day.isoformat(), d.value) for d in days] == [
        ("2027-01-30", 2),
        ("2027-01-31", 0),
        ("2027-02-01", 0),
        ("2027-02-02", 1),
    ]
    rows = [(f"C{index:02d}", 1) for index in range(20)] + [("ZZ", 5)]
    folded = fold_countries(rows, "en")
    assert folded[0].key == "ZZ"
    assert len(folded) == TOP_COUNTRIES + 1
    assert folded[-1].key == "other"
    assert folded[-1].value == 3


async def test_checkin_and_online_attendance_rates(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    launch = await add_event(session_maker, slug="launch")
    webinar = await add_event(session_maker, slug="webinar", kind=EventKind.ONLINE)
    people = [registration(launch, "CO", Sector.POLICE, C, 1) for _ in range(4)]
    online = [registration(webinar, "BR", Sector.POLICE, C, 1) for _ in range(2)]
    duration = (webinar.ends_at - webinar.starts_at).total_seconds() / 60
    async with session_maker() as session:
        session.add_all([*people, *online])
        await session.flush()
        session.add(
            CheckIn(
                event_id=launch.id,
                registration_id=people[0].id,
                device="door",
                nonce="n1",
                scanned_at=datetime.now(UTC),
            )
        )
        session.add_all(
            [
                OnlineAttendance(
                    event_id=webinar.id, identity="a", registration_id=online[0].id, minutes=duration * 0.9
                ),
                OnlineAttendance(
                    event_id=webinar.id, identity="b", registration_id=online[1].id, minutes=duration * 0.3
                ),
            ]
        )
        await session.commit()
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")

    rates = tables_of((await client.get("/manage/dashboard?lang=en")).text)["table-rates"]

    assert rates["checkin"].startswith("25")
    assert rates["online_attendance"].startswith("50")
