"""Organisers create, edit, publish, duplicate and cancel events through the HTML forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from conftest import add_event, create_user, csrf_token, login
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import AuditEntry, Event, EventAssignment, EventStatus, Role
from events_app.domain.events.manage_schemas import (
    FORM_FIELDS,
    EventData,
    EventFormInvalid,
    validate_event_form,
)
from events_app.domain.registrations.schemas import MSG_REQUIRED
from events_app.lib.i18n import force_locale, gettext

MANAGER = "manager@example.org"


class FormReader(HTMLParser):
    """The values a browser would submit for the first ``<form>`` whose action matches."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.values: dict[str, str] = {}
        self._in_form = False
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._in_form = attributes.get("action") == self.action
        if not self._in_form:
            return
        name = attributes.get("name", "")
        if tag == "input" and name:
            if attributes.get("type") != "checkbox" or "checked" in attributes:
                self.values[name] = attributes.get("value", "")
        elif tag == "select":
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            self._first_option = self._first_option or attributes.get("value", "")
            if "selected" in attributes:
                self.values[self._select] = attributes.get("value", "")
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select:
            self.values.setdefault(self._select, self._first_option or "")
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data


async def form_values(client: AsyncTestClient[Litestar], page: str, action: str) -> dict[str, str]:
    """Open ``page`` and read its form as a browser would submit it (CSRF token included)."""
    response = await client.get(page)
    assert response.status_code == 200, response.text
    reader = FormReader(action)
    reader.feed(response.text)
    assert "_csrf_token" in reader.values
    return reader.values


async def submit_edit(client: AsyncTestClient[Litestar], event_id: UUID, **changes: str) -> Any:
    """Change some fields of the edit form and save it, keeping every other value as shown."""
    path = f"/manage/events/{event_id}/edit"
    values = await form_values(client, path, path)
    values.update(changes)
    return await client.post(path, data=values)


async def post_action(client: AsyncTestClient[Litestar], event_id: UUID, action: str) -> Any:
    token = await csrf_token(client, "/manage")
    return await client.post(f"/manage/events/{event_id}/{action}", data={"_csrf_token": token})


def new_event_form(**overrides: str) -> dict[str, str]:
    form = {
        "slug": "network-launch-2027",
        "kind": "hybrid",
        "base_language": "es",
        "title_es": "Lanzamiento de la red",
        "summary_es": "Presentación pública",
        "description_es": "Primera línea.\nSegunda línea.",
        "title_en": "Network launch",
        "timezone": "Europe/Madrid",
        "starts_at": "2027-04-14T10:00",
        "ends_at": "2027-04-14T13:30",
        "venue_name": "Casa de América",
        "venue_address": "Plaza de Cibeles 2",
        "venue_city": "Madrid",
        "venue_country": "ES",
        "join_url": "https://meet.example.org/launch",
        "capacity": "80",
        "registration_opens_at": "2027-03-01T09:00",
        "registration_closes_at": "2027-04-13T18:00",
        "approval_required": "",
        "waitlist_enabled": "yes",
        "contact_name": "Secretaría",
        "contact_email": "secretaria@programme.example.org",
        "reminders": "1440, 60",
    }
    form.update(overrides)
    return form


async def create_via_form(client: AsyncTestClient[Litestar], **overrides: str) -> Any:
    token = await csrf_token(client, "/manage/events/new")
    return await client.post("/manage/events/new", data={"_csrf_token": token, **new_event_form(**overrides)})


async def load_event(session_maker: async_sessionmaker[AsyncSession], slug: str) -> Event:
    async with session_maker() as session:
        event = await session.scalar(sa.select(Event).where(Event.slug == slug))
        assert event is not None
        return event


async def audit_actions(session_maker: async_sessionmaker[AsyncSession]) -> list[AuditEntry]:
    async with session_maker() as session:
        statement = sa.select(AuditEntry).where(AuditEntry.action.startswith("event_"))
        return list((await session.scalars(statement.order_by(AuditEntry.created_at, AuditEntry.id))).all())


def event_id_from(url: str) -> UUID:
    found = re.search(r"/manage/events/([0-9a-f-]{36})", url)
    assert found, url
    return UUID(found.group(1))


async def test_manager_creates_edits_publishes_duplicates_and_cancels(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    manager = await create_user(session_maker, MANAGER, Role.EVENT_MANAGER)
    await login(client, MANAGER)
    assert 'href="/manage/events/new"' in (await client.get("/manage")).text

    created = await create_via_form(client)
    assert created.status_code == 200, created.text
    event_id = event_id_from(str(created.url))
    assert "Network launch" in created.text  # the page is in English: the English title
    event = await load_event(session_maker, "network-launch-2027")
    assert event.id == event_id
    assert event.status is EventStatus.DRAFT
    # 10:00 in Madrid two weeks after the switch to summer time is 08:00 UTC.
    assert event.starts_at == datetime(2027, 4, 14, 8, 0, tzinfo=UTC)
    assert event.ends_at == datetime(2027, 4, 14, 11, 30, tzinfo=UTC)
    assert event.registration_closes_at == datetime(2027, 4, 13, 16, 0, tzinfo=UTC)
    assert event.timezone == "Europe/Madrid"
    assert event.texts["es"]["description"] == "Primera línea.\nSegunda línea."
    assert event.texts["en"] == {"title": "Network launch"}
    assert event.capacity == 80
    assert event.reminder_offsets_minutes == [1440, 60]
    assert event.invite_sequence == 0
    async with session_maker() as session:
        assignment = await session.scalar(
            sa.select(EventAssignment).where(EventAssignment.user_id == manager.id)
        )
    assert assignment is not None
    assert assignment.event_id == event_id
    # A draft is not public.
    assert (await client.get("/events/network-launch-2027")).status_code == 404

    # The edit form shows the stored values in the event's own zone; an edit keeps the rest.
    edit_path = f"/manage/events/{event_id}/edit"
    shown = await form_values(client, edit_path, edit_path)
    assert shown["starts_at"] == "2027-04-14T10:00"
    assert shown["timezone"] == "Europe/Madrid"
    assert shown["description_es"] == "Primera línea.\nSegunda línea."
    assert shown["waitlist_enabled"] == "yes"
    assert "approval_required" not in shown
    saved = await submit_edit(client, event_id, title_en="Launch of the network", capacity="")
    assert saved.status_code == 200, saved.text
    event = await load_event(session_maker, "network-launch-2027")
    assert event.texts["en"]["title"] == "Launch of the network"
    assert event.capacity is None
    assert event.starts_at == datetime(2027, 4, 14, 8, 0, tzinfo=UTC)

    published = await post_action(client, event_id, "publish")
    assert published.status_code == 200
    assert (await load_event(session_maker, "network-launch-2027")).status is EventStatus.PUBLISHED
    assert (await client.get("/events/network-launch-2027")).status_code == 200

    copy = await post_action(client, event_id, "duplicate")
    assert copy.status_code == 200
    assert str(copy.url).endswith("/edit")
    duplicate = await load_event(session_maker, "network-launch-2027-copy")
    assert str(copy.url).endswith(f"/manage/events/{duplicate.id}/edit")
    assert duplicate.status is EventStatus.DRAFT
    assert duplicate.texts == event.texts
    assert duplicate.starts_at == event.starts_at
    assert (duplicate.invite_sequence, duplicate.seats_taken) == (0, 0)
    await post_action(client, event_id, "duplicate")
    await load_event(session_maker, "network-launch-2027-copy-2")
    # The manager manages the copies too.
    assert (await client.get(f"/manage/events/{duplicate.id}/edit")).status_code == 200

    confirm = await client.get(f"/manage/events/{event_id}/cancel")
    assert confirm.status_code == 200
    assert (await load_event(session_maker, "network-launch-2027")).status is EventStatus.PUBLISHED
    cancelled = await post_action(client, event_id, "cancel")
    assert cancelled.status_code == 200
    event = await load_event(session_maker, "network-launch-2027")
    assert event.status is EventStatus.CANCELLED
    assert event.invite_sequence == 1
    # A cancelled event is final.
    assert (await client.get(edit_path)).status_code == 409
    assert (await post_action(client, event_id, "publish")).status_code == 409

    entries = await audit_actions(session_maker)
    assert [entry.action for entry in entries] == [
        "event_created",
        "event_updated",
        "event_published",
        "event_duplicated",
        "event_duplicated",
        "event_cancelled",
    ]
    assert all(entry.actor_id == manager.id for entry in entries)
    assert sorted(entries[1].details["changed"]) == ["capacity", "title_en"]
    assert entries[3].details["source_id"] == str(event_id)
    assert entries[5].event_id == event_id


async def test_invalid_forms_answer_422_with_inline_errors_and_keep_the_values(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await create_user(session_maker, MANAGER, Role.EVENT_MANAGER)
    await login(client, MANAGER)
    cases = [
        ("slug", {"slug": "Launch 2027!"}, "Launch 2027!"),
        ("ends_at", {"ends_at": "2027-04-14T09:00"}, "2027-04-14T09:00"),
        # Clocks in Madrid jump from 02:00 to 03:00 on 28 March 2027: 02:30 never happens.
        ("starts_at", {"starts_at": "2027-03-28T02:30", "ends_at": "2027-03-28T05:00"}, "2027-03-28T02:30"),
        ("timezone", {"timezone": "Mars/Olympus_Mons"}, "Lanzamiento de la red"),
        ("contact_email", {"contact_email": "secretaria@@example"}, "secretaria@@example"),
        ("capacity", {"capacity": "-5"}, "-5"),
        ("join_url", {"join_url": "javascript:alert(1)"}, "javascript:alert(1)"),
        ("title_es", {"title_es": "", "base_language": "es"}, "Network launch"),
        ("registration_closes_at", {"registration_closes_at": "2027-02-01T09:00"}, "2027-02-01T09:00"),
    ]
    for field, changes, kept in cases:
        response = await create_via_form(client, **changes)
        assert response.status_code == 422, (field, response.status_code)
        assert f'id="{field}-error"' in response.text, field
        tag = re.search(rf'<(?:input|select|textarea) id="{field}"[^>]*>', response.text)
        assert tag, field
        assert 'aria-invalid="true"' in tag.group(0), field
        assert f'aria-describedby="{field}-error"' in tag.group(0), field
        assert f'value="{kept}"' in response.text or f">{kept}<" in response.text, field
        assert response.text.count('class="field-error"') == 1, field
    nonexistent = await create_via_form(client, starts_at="2027-03-28T02:30", ends_at="2027-03-28T05:00")
    assert "Europe/Madrid" in re.search(r'id="starts_at-error">([^<]*)<', nonexistent.text).group(1)  # type: ignore[union-attr]
    async with session_maker() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0

    # The errors come in the organiser's language.
    assert (await client.get("/manage?lang=es")).status_code == 200
    response = await create_via_form(client, contact_email="")
    assert response.status_code == 422
    with force_locale("es"):
        required = gettext(MSG_REQUIRED)
    assert required != MSG_REQUIRED
    assert re.search(r'id="contact_email-error">([^<]*)<', response.text).group(1) == required  # type: ignore[union-attr]

    # A slug already taken is refused too.
    assert (await create_via_form(client)).status_code == 200
    taken = await create_via_form(client)
    assert taken.status_code == 422
    assert 'id="slug-error"' in taken.text


async def test_a_time_that_happens_twice_means_the_first_one(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await create_user(session_maker, "admin@example.org", Role.ADMIN)
    await login(client, "admin@example.org")
    # Madrid goes back from 03:00 to 02:00 on 31 October 2027: 02:30 happens twice (UTC+2, then UTC+1).
    response = await create_via_form(client, starts_at="2027-10-31T02:30", ends_at="2027-10-31T05:00")
    assert response.status_code == 200, response.text
    event = await load_event(session_maker, "network-launch-2027")
    assert event.starts_at == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    assert event.ends_at == datetime(2027, 10, 31, 4, 0, tzinfo=UTC)


async def test_capacity_cannot_drop_below_the_seats_taken(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker, capacity=10, seats_taken=4)
    await create_user(session_maker, MANAGER, Role.EVENT_MANAGER, events=[event])
    await login(client, MANAGER)
    response = await submit_edit(client, event.id, capacity="3")
    assert response.status_code == 422
    assert 'id="capacity-error"' in response.text
    assert 'value="3"' in response.text
    assert (await load_event(session_maker, "launch")).capacity == 10
    assert (await submit_edit(client, event.id, capacity="4")).status_code == 200
    assert (await load_event(session_maker, "launch")).capacity == 4


async def test_scopes_other_managers_focal_points_staff_and_anonymous(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    mine = await add_event(session_maker, slug="mine", status=EventStatus.DRAFT)
    theirs = await add_event(session_maker, slug="theirs")
    await create_user(session_maker, MANAGER, Role.EVENT_MANAGER, events=[mine])
    await create_user(session_maker, "other@example.org", Role.EVENT_MANAGER, events=[theirs])
    await create_user(session_maker, "focal@example.org", Role.FOCAL_POINT, countries=["CO"])
    await create_user(session_maker, "door@example.org", Role.CHECKIN_STAFF, events=[theirs])

    # Anonymous: sent to the login page.
    for path in ("/manage/events/new", f"/manage/events/{theirs.id}", f"/manage/events/{theirs.id}/edit"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code in (302, 303), path
        assert response.headers["location"].startswith("/login"), path
    token = await csrf_token(client, "/login")
    anonymous = await client.post(
        f"/manage/events/{theirs.id}/cancel", data={"_csrf_token": token}, follow_redirects=False
    )
    assert anonymous.status_code in (302, 303)
    assert anonymous.headers["location"].startswith("/login")

    await login(client, MANAGER)
    assert (await client.get(f"/manage/events/{mine.id}")).status_code == 200
    await assert_cannot_change(client, theirs.id, can_see=False)
    # Ids that do not exist answer like ids out of scope.
    await assert_cannot_change(client, UUID("00000000-0000-7000-8000-000000000000"), can_see=False)

    await login(client, "focal@example.org")
    page = await client.get(f"/manage/events/{theirs.id}")
    assert page.status_code == 200
    assert f"/manage/events/{theirs.id}/edit" not in page.text
    assert f'action="/manage/events/{theirs.id}/publish"' not in page.text
    assert f'action="/manage/events/{theirs.id}/duplicate"' not in page.text
    assert (await client.get("/manage/events/new")).status_code == 404
    assert 'href="/manage/events/new"' not in (await client.get("/manage")).text
    await assert_cannot_change(client, theirs.id, can_see=True)
    token = await csrf_token(client, "/manage")
    create = await client.post("/manage/events/new", data={"_csrf_token": token, **new_event_form()})
    assert create.status_code == 404

    await login(client, "door@example.org")
    await assert_cannot_change(client, theirs.id, can_see=False)
    assert (await client.get("/manage/events/new")).status_code == 404

    async with session_maker() as session:
        stored = await session.get(Event, theirs.id)
        assert stored is not None
        assert stored.status is EventStatus.PUBLISHED
        assert await session.scalar(sa.select(sa.func.count()).select_from(Event)) == 2
        changes = sa.select(sa.func.count()).where(AuditEntry.action != "login")
        assert await session.scalar(changes) == 0


async def assert_cannot_change(client: AsyncTestClient[Litestar], event_id: UUID, can_see: bool) -> None:
    page = await client.get(f"/manage/events/{event_id}")
    assert page.status_code == (200 if can_see else 404)
    assert (await client.get(f"/manage/events/{event_id}/edit")).status_code == 404
    assert (await client.get(f"/manage/events/{event_id}/cancel")).status_code == 404
    token = await csrf_token(client, "/manage")
    edit = await client.post(
        f"/manage/events/{event_id}/edit", data={"_csrf_token": token, **new_event_form(slug="stolen")}
    )
    assert edit.status_code == 404
    for action in ("publish", "cancel", "duplicate"):
        response = await client.post(f"/manage/events/{event_id}/{action}", data={"_csrf_token": token})
        assert response.status_code == 404, action


FORM_FIELD_NAMES = (*new_event_form(), "description_fr", "summary_pt_BR")


@given(
    st.dictionaries(
        st.sampled_from(FORM_FIELD_NAMES),
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(["9999-12-31T23:59", "0001-01-01T00:00", "http://[::1", "Etc/GMT+14", "1e3"]),
        ),
    )
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_any_form_is_either_valid_or_a_form_error(changes: dict[str, str]) -> None:
    """Hostile values never escape as anything but field errors (which the page shows as 422)."""
    result = validated(new_event_form(**changes))
    if isinstance(result, EventFormInvalid):
        assert result.errors
        assert set(result.errors) <= set(FORM_FIELDS)
    else:
        assert result.ends_at > result.starts_at
        assert result.slug


def validated(form: dict[str, str]) -> EventData | EventFormInvalid:
    try:
        return validate_event_form(form)
    except EventFormInvalid as invalid:
        return invalid


def test_extreme_dates_and_addresses_are_form_errors() -> None:
    last_day = validated(
        new_event_form(timezone="America/Bogota", starts_at="9999-12-31T23:59", ends_at="9999-12-31T23:59")
    )
    assert isinstance(last_day, EventFormInvalid)
    assert set(last_day.errors) == {"starts_at", "ends_at"}
    first_day = validated(new_event_form(timezone="Asia/Tokyo", starts_at="0001-01-01T00:00"))
    assert isinstance(first_day, EventFormInvalid)
    assert "starts_at" in first_day.errors
    broken_url = validated(new_event_form(join_url="http://[::1"))
    assert isinstance(broken_url, EventFormInvalid)
    assert set(broken_url.errors) == {"join_url"}
