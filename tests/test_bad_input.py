"""Bad input, on the form and the API: a clear 4xx, never a 500, nothing stored, nothing already stored lost.

The form answers 422 with inline errors (in the page's language) and keeps what was typed; the API answers
422 with ``errors: [{"field", "message"}]`` (400 for a body that is not JSON at all). Closed, full,
not-yet-open and unpublished events answer 409 or 404. Hypothesis then throws hostile strings at both.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import add_event, csrf_token, make_settings, registration_form
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from markupsafe import escape
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from events_app.app import create_app
from events_app.db.engine import configure_sqlite
from events_app.db.models import EventStatus, OutboxMessage, Registration
from events_app.domain.registrations.schemas import (
    MAX_LENGTHS,
    MSG_BAD_CHARACTERS,
    MSG_BAD_COUNTRY,
    MSG_BAD_EMAIL,
    MSG_BAD_LANGUAGE,
    MSG_BAD_SECTOR,
    MSG_CONSENT,
    MSG_REQUIRED,
    MSG_TOO_LONG,
    has_forbidden_characters,
)
from events_app.lib.i18n import force_locale, gettext

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]

FORM_URL = "/events/launch/register"
API_URL = "/api/events/launch/registrations"
TEXT_INPUTS = ("full_name", "email", "institution", "position")
SELECTS = ("country", "sector", "language")
#: In the order of the form, which is the order of the error summary.
ALL_FIELDS = ("full_name", "email", "country", "institution", "position", "sector", "language", "consent")
REQUIRED = ("full_name", "email", "country", "institution", "sector", "language")
#: Characters refused in every field: they would break email headers, logs and CSV exports.
FORBIDDEN = {"cr": "\r", "lf": "\n", "crlf": "\r\n", "nul": "\x00", "u2028": "\u2028"}
BAD_EMAILS = ("not-an-email", "a@b", "x@@example.org", "a b@example.org")


def base_form(**overrides: str) -> dict[str, str]:
    """A valid form whose values need HTML escaping, so "what was typed is kept" is checked escaped."""
    values = {"institution": 'Policía "Nacional" <Trata & Tráfico>', "position": "Investigadora O'Brien"}
    return registration_form(**{**values, **overrides})


def too_long(name: str) -> str:
    length = 5000
    return "a" * (length - len("@example.org")) + "@example.org" if name == "email" else "x" * length


def too_long_message(name: str) -> str:
    return gettext(MSG_TOO_LONG) % {"max": MAX_LENGTHS[name]}


# ---------------------------------------------------------------------------------------------------
# What is stored


@dataclass(frozen=True)
class Stored:
    registrations: list[tuple[str, str, str, str]]
    outbox: int


async def stored(session_maker: Sessions) -> Stored:
    async with session_maker() as session:
        rows = (await session.execute(sa.select(Registration).order_by(Registration.id))).unique().scalars()
        outbox = await session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
        return Stored(
            [(str(row.id), row.email_normalized, row.full_name, row.status.value) for row in rows],
            int(outbox or 0),
        )


async def registered_already(client: Client, session_maker: Sessions) -> Stored:
    """One good registration made first: bad input afterwards must neither add to it nor lose it."""
    response = await client.post(API_URL, json={**base_form(), "consent": True})
    assert response.status_code == 201, response.text
    before = await stored(session_maker)
    assert len(before.registrations) == 1
    assert before.outbox == 1
    return before


# ---------------------------------------------------------------------------------------------------
# Reading the form page


def summary_links(page: str) -> list[str]:
    found = re.search(r'<div class="error-summary".*?</div>', page, re.S)
    assert found, "no error summary on the page"
    return re.findall(r'<a href="#([a-z_]+)">', found.group(0))


def inline_error(page: str, name: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="{name}-error">(.*?)</p>', page, re.S)
    return found.group(1) if found else None


def control_tag(page: str, name: str) -> str:
    found = re.search(rf'<(?:input|select) id="{name}"[^>]*>', page)
    assert found, f"no control for {name}"
    return found.group(0)


def typed_value(page: str, name: str) -> str:
    found = re.search(r'\svalue="([^"]*)"', control_tag(page, name))
    assert found, f"{name} has no value attribute"
    return found.group(1)


def selected_options(page: str, name: str) -> list[str]:
    found = re.search(rf'<select id="{name}".*?</select>', page, re.S)
    assert found, f"no select for {name}"
    return re.findall(r'<option value="([^"]*)"[^>]*\sselected', found.group(0))


def assert_form_shows_errors(page: str, expected: dict[str, str], form: dict[str, str]) -> None:
    """Inline errors, a summary linking to the fields, aria-invalid, and everything typed kept, escaped."""
    assert summary_links(page) == [name for name in ALL_FIELDS if name in expected]
    for name in ALL_FIELDS:
        tag = control_tag(page, name)
        if name in expected:
            assert inline_error(page, name) == str(escape(expected[name])), name
            assert 'aria-invalid="true"' in tag, name
            assert f'aria-describedby="{name}-error"' in tag, name
        else:
            assert inline_error(page, name) is None, name
            assert "aria-invalid" not in tag, name
    for name in TEXT_INPUTS:
        assert typed_value(page, name) == str(escape(form.get(name, ""))), name
    for name in SELECTS:
        if name not in expected:
            assert selected_options(page, name) == [form[name]], name
    if "consent" not in expected:
        assert " checked" in control_tag(page, "consent")


async def post_form(client: Client, data: dict[str, str], **kwargs: Any) -> Any:
    token = await csrf_token(client, FORM_URL)
    return await client.post(FORM_URL, data={"_csrf_token": token, **data}, **kwargs)


def without(form: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in form.items() if key != name}


# ---------------------------------------------------------------------------------------------------
# 1. The form


@dataclass(frozen=True)
class FormCase:
    label: str
    form: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


def form_cases(category: str) -> list[FormCase]:
    good = base_form()
    cases: list[FormCase] = []
    if category == "empty":
        for name in REQUIRED:
            cases.append(FormCase(f"{name} empty", {**good, name: ""}, {name: MSG_REQUIRED}))
            cases.append(FormCase(f"{name} blank", {**good, name: "   "}, {name: MSG_REQUIRED}))
        everything_empty = dict.fromkeys(ALL_FIELDS, "")
        errors = {name: MSG_REQUIRED for name in REQUIRED} | {"consent": MSG_CONSENT}
        cases.append(FormCase("all empty", everything_empty, errors))
    elif category == "missing":
        for name in REQUIRED:
            cases.append(FormCase(f"{name} missing", without(good, name), {name: MSG_REQUIRED}))
        cases.append(FormCase("consent missing", without(good, "consent"), {"consent": MSG_CONSENT}))
    elif category == "oversized":
        for name in (*TEXT_INPUTS, *SELECTS):
            cases.append(
                FormCase(f"{name} 5000", {**good, name: too_long(name)}, {name: too_long_message(name)})
            )
    elif category == "email":
        for email in BAD_EMAILS:
            cases.append(FormCase(email, {**good, "email": email}, {"email": MSG_BAD_EMAIL}))
    elif category == "characters":
        for (label, char), name in itertools.product(FORBIDDEN.items(), ALL_FIELDS):
            value = good[name]
            for where, bad in (("inside", value[:1] + char + value[1:]), ("at end", value + char)):
                cases.append(
                    FormCase(f"{label} {where} {name}", {**good, name: bad}, {name: MSG_BAD_CHARACTERS})
                )
    elif category == "choices":
        for country in ("XX", "ZZ", "C0"):
            cases.append(
                FormCase(f"country {country}", {**good, "country": country}, {"country": MSG_BAD_COUNTRY})
            )
        cases.append(FormCase("sector", {**good, "sector": "mafia"}, {"sector": MSG_BAD_SECTOR}))
        cases.append(FormCase("language", {**good, "language": "xx"}, {"language": MSG_BAD_LANGUAGE}))
        cases.append(FormCase("consent no", {**good, "consent": "no"}, {"consent": MSG_CONSENT}))
    else:
        raise AssertionError(category)
    return cases


@pytest.mark.parametrize("category", ["empty", "missing", "oversized", "email", "characters", "choices"])
async def test_form_rejects_bad_input_inline_and_stores_nothing(
    client: Client, session_maker: Sessions, category: str
) -> None:
    await add_event(session_maker)
    before = await registered_already(client, session_maker)
    token = await csrf_token(client, FORM_URL)

    for case in form_cases(category):
        response = await client.post(
            FORM_URL, data={"_csrf_token": token, **case.form}, follow_redirects=False
        )
        assert response.status_code == 422, (case.label, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
        expected = {name: gettext(message) for name, message in case.errors.items()}
        try:
            assert_form_shows_errors(response.text, expected, case.form)
        except AssertionError as failure:
            raise AssertionError(f"{case.label}: {failure}") from failure
        assert await stored(session_maker) == before, case.label


async def test_form_accepts_the_base_form_without_the_optional_position(
    client: Client, session_maker: Sessions
) -> None:
    """The control for the cases above: the same form, valid, is stored (so they fail for their reason)."""
    await add_event(session_maker)
    response = await post_form(client, without(base_form(), "position"), follow_redirects=False)
    assert response.status_code in (302, 303), response.text
    assert response.headers["location"] == "/events/launch/registered"
    after = await stored(session_maker)
    assert len(after.registrations) == 1
    assert after.outbox == 1


@pytest.mark.parametrize("how", ["switcher", "accept-language"])
async def test_form_errors_are_in_the_pages_language(
    client: Client, session_maker: Sessions, how: str
) -> None:
    await add_event(session_maker)
    headers = {"Accept-Language": "es-CO,es;q=0.9,en;q=0.5"} if how == "accept-language" else {}
    if how == "switcher":
        switched = await client.get(f"{FORM_URL}?lang=es")
        assert switched.status_code == 200
        assert "lang=es" in switched.headers["set-cookie"]
    page = await client.get(FORM_URL, headers=headers)
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert token
    form = base_form(full_name="", email="x@@example.org", country="XX")

    response = await client.post(FORM_URL, data={"_csrf_token": token.group(1), **form}, headers=headers)

    assert response.status_code == 422
    assert '<html lang="es"' in response.text
    with force_locale("es"):
        expected = {
            "full_name": gettext(MSG_REQUIRED),
            "email": gettext(MSG_BAD_EMAIL),
            "country": gettext(MSG_BAD_COUNTRY),
        }
    assert expected["full_name"] != MSG_REQUIRED
    assert expected["email"] != MSG_BAD_EMAIL
    assert expected["country"] != MSG_BAD_COUNTRY
    assert_form_shows_errors(response.text, expected, form)
    assert MSG_REQUIRED not in response.text
    assert await stored(session_maker) == Stored([], 0)


# ---------------------------------------------------------------------------------------------------
# 2. The API


@dataclass(frozen=True)
class ApiCase:
    label: str
    request: dict[str, Any]
    status: int = 422
    #: (field, message) expected among ``errors``; message None means "any non-empty message".
    error: tuple[str, str | None] | None = None


def api_body(**overrides: Any) -> dict[str, Any]:
    return {**base_form(), "consent": True, **overrides}


def api_cases(category: str) -> list[ApiCase]:
    good = api_body()
    cases: list[ApiCase] = []
    if category == "missing":
        for name in (*REQUIRED, "consent"):
            body = without(good, name)
            cases.append(ApiCase(f"{name} missing", {"json": body}, error=(name, gettext(MSG_REQUIRED))))
        for name in REQUIRED:
            cases.append(
                ApiCase(f"{name} empty", {"json": {**good, name: ""}}, error=(name, gettext(MSG_REQUIRED)))
            )
        cases.append(
            ApiCase(
                "consent false", {"json": {**good, "consent": False}}, error=("consent", gettext(MSG_CONSENT))
            )
        )
    elif category == "types":
        cases += [
            ApiCase("number for name", {"json": {**good, "full_name": 42}}, error=("full_name", None)),
            ApiCase("string for consent", {"json": {**good, "consent": "yes"}}, error=("consent", None)),
            ApiCase("list for email", {"json": {**good, "email": ["a@example.org"]}}, error=("email", None)),
            ApiCase(
                "object for country", {"json": {**good, "country": {"code": "CO"}}}, error=("country", None)
            ),
            ApiCase(
                "null for institution", {"json": {**good, "institution": None}}, error=("institution", None)
            ),
        ]
    elif category == "values":
        for email in BAD_EMAILS:
            cases.append(
                ApiCase(email, {"json": {**good, "email": email}}, error=("email", gettext(MSG_BAD_EMAIL)))
            )
        for country in ("XX", "ZZ"):
            cases.append(
                ApiCase(
                    country,
                    {"json": {**good, "country": country}},
                    error=("country", gettext(MSG_BAD_COUNTRY)),
                )
            )
        cases.append(
            ApiCase(
                "sector", {"json": {**good, "sector": "mafia"}}, error=("sector", gettext(MSG_BAD_SECTOR))
            )
        )
        for name in (*TEXT_INPUTS, *SELECTS):
            body = {**good, name: too_long(name)}
            cases.append(ApiCase(f"{name} 5000", {"json": body}, error=(name, too_long_message(name))))
    elif category == "characters":
        for (label, char), name in itertools.product(FORBIDDEN.items(), (*TEXT_INPUTS, *SELECTS)):
            body = {**good, name: good[name] + char}
            cases.append(
                ApiCase(f"{label} {name}", {"json": body}, error=(name, gettext(MSG_BAD_CHARACTERS)))
            )
    elif category == "bodies":
        json_type = {"content-type": "application/json"}
        cases += [
            ApiCase("not JSON", {"content": b"full_name=Jose", "headers": json_type}, status=400),
            ApiCase("truncated JSON", {"content": b'{"full_name": "Jo', "headers": json_type}, status=400),
            ApiCase("not UTF-8", {"content": b'{"full_name": "\xff\xfe"}', "headers": json_type}, status=400),
            ApiCase("form-encoded", {"data": registration_form()}, status=400),
            ApiCase(
                "empty body", {"content": b"", "headers": json_type}, error=("body", gettext(MSG_REQUIRED))
            ),
            ApiCase("JSON null", {"content": b"null", "headers": json_type}, error=("body", None)),
            ApiCase("JSON array", {"json": [good]}, error=("body", None)),
            ApiCase("JSON string", {"json": "José"}, error=("body", None)),
            ApiCase("JSON number", {"json": 7}, error=("body", None)),
        ]
    else:
        raise AssertionError(category)
    return cases


@pytest.mark.parametrize("category", ["missing", "types", "values", "characters", "bodies"])
async def test_api_rejects_bad_input_with_field_errors_and_stores_nothing(
    client: Client, session_maker: Sessions, category: str
) -> None:
    await add_event(session_maker)
    before = await registered_already(client, session_maker)

    for case in api_cases(category):
        response = await client.post(API_URL, **case.request)
        assert response.status_code == case.status, (case.label, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json"), case.label
        body = response.json()
        assert isinstance(body["detail"], str), case.label
        assert body["detail"], case.label
        if case.status == 422:
            assert body["code"] == "invalid", case.label
            assert body["detail"] == gettext("Some fields are not valid.")
            assert all(set(error) == {"field", "message"} for error in body["errors"]), case.label
            assert all(error["message"] for error in body["errors"]), case.label
        if case.error is not None:
            name, message = case.error
            fields = {error["field"]: error["message"] for error in body["errors"]}
            assert name in fields, (case.label, body)
            if message is not None:
                assert fields[name] == message, (case.label, body)
        assert await stored(session_maker) == before, case.label


async def test_api_field_errors_follow_accept_language(client: Client, session_maker: Sessions) -> None:
    await add_event(session_maker)
    body = api_body(email="a@b", full_name="")
    response = await client.post(API_URL, json=body, headers={"Accept-Language": "es"})
    assert response.status_code == 422
    with force_locale("es"):
        expected = [
            {"field": "full_name", "message": gettext(MSG_REQUIRED)},
            {"field": "email", "message": gettext(MSG_BAD_EMAIL)},
        ]
        detail = gettext("Some fields are not valid.")
    assert expected[0]["message"] != MSG_REQUIRED
    assert response.json() == {"detail": detail, "code": "invalid", "errors": expected}
    assert await stored(session_maker) == Stored([], 0)


# ---------------------------------------------------------------------------------------------------
# 3. Events that cannot take registrations


async def cookie_token(client: Client, path: str) -> str:
    """The CSRF token from the cookie: a page without a form (404, closed event) still sets it."""
    await client.get(path)
    token = client.cookies.get("csrftoken")
    assert token
    return str(token)


@pytest.mark.parametrize("case", ["draft", "unknown slug"])
async def test_unpublished_or_unknown_event_is_not_found(
    client: Client, session_maker: Sessions, case: str
) -> None:
    await add_event(session_maker, slug="other")  # something to register for, to show it is not touched
    if case == "draft":
        await add_event(session_maker, status=EventStatus.DRAFT)

    page = await client.get(FORM_URL)
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "This event does not exist or is not published." in page.text
    assert 'name="_csrf_token"' not in page.text

    token = await cookie_token(client, FORM_URL)
    posted = await client.post(FORM_URL, data={"_csrf_token": token, **base_form()}, follow_redirects=False)
    assert posted.status_code == 404
    assert "This event does not exist or is not published." in posted.text

    api = await client.post(API_URL, json=api_body())
    assert api.status_code == 404
    assert api.json()["detail"] == "This event does not exist or is not published."
    assert await stored(session_maker) == Stored([], 0)


@dataclass(frozen=True)
class Unavailable:
    overrides: dict[str, Any]
    message: str
    codes: tuple[str, ...]
    word: str


def unavailable_cases() -> dict[str, Unavailable]:
    now = datetime.now(UTC).replace(microsecond=0)
    closed = gettext("Registration for this event is closed.")
    return {
        "closes_at in the past": Unavailable(
            {"registration_closes_at": now - timedelta(hours=1)}, closed, ("closed",), "closed"
        ),
        "event over": Unavailable(
            {
                "starts_at": now - timedelta(days=2),
                "ends_at": now - timedelta(days=1),
                "registration_opens_at": now - timedelta(days=10),
            },
            closed,
            ("closed",),
            "closed",
        ),
        "opens_at in the future": Unavailable(
            {"registration_opens_at": now + timedelta(days=1)},
            gettext("Registration has not opened yet."),
            ("not_yet_open",),
            "not opened yet",
        ),
        # A cancelled event is shown to the public but takes nobody.
        "cancelled": Unavailable(
            {"status": EventStatus.CANCELLED}, closed, ("cancelled", "not_published"), "closed"
        ),
    }


@pytest.mark.parametrize("case", list(unavailable_cases()))
async def test_closed_event_answers_409_and_stores_nothing(
    client: Client, session_maker: Sessions, case: str
) -> None:
    expected = unavailable_cases()[case]
    await add_event(session_maker, **expected.overrides)
    token = await cookie_token(client, FORM_URL)

    page = await client.post(FORM_URL, data={"_csrf_token": token, **base_form()}, follow_redirects=False)
    assert page.status_code == 409
    assert f'<div class="alert" role="alert"><p>{escape(expected.message)}</p></div>' in page.text
    assert expected.word in page.text
    assert 'class="registration-form"' not in page.text

    api = await client.post(API_URL, json=api_body())
    assert api.status_code == 409
    assert api.json()["detail"] == expected.message
    assert api.json()["code"] in expected.codes
    assert await stored(session_maker) == Stored([], 0)


async def test_full_event_answers_409_and_keeps_the_one_registration(
    client: Client, session_maker: Sessions
) -> None:
    await add_event(session_maker, capacity=1)
    before = await registered_already(client, session_maker)
    newcomer = base_form(email="another.person@fiscalia.example.gov.co", full_name="Ana Pérez")
    token = await cookie_token(client, FORM_URL)

    page = await client.post(FORM_URL, data={"_csrf_token": token, **newcomer}, follow_redirects=False)
    assert page.status_code == 409
    alert = re.search(r'<div class="alert" role="alert"><p>(.*?)</p></div>', page.text)
    assert alert
    assert "full" in alert.group(1)
    assert 'class="registration-form"' not in page.text

    api = await client.post(API_URL, json={**newcomer, "consent": True})
    assert api.status_code == 409
    assert api.json()["code"] == "full"
    assert "full" in api.json()["detail"]
    assert await stored(session_maker) == before


# ---------------------------------------------------------------------------------------------------
# 4. Hypothesis: hostile strings in random fields, SQLite only


TRICKY = (
    "\r\n",
    "\r",
    "\n",
    "\x00",
    "\t",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\u202e",
    "\u200b",
    "\ufeff",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }}",
    "{% raw %}",
    "${7*7}",
    "' OR 1=1 --",
    "'; DROP TABLE registrations; --",
    "Robert'); --",
    "%00",
    "%0d%0aBcc: victim@example.org",
    "José Ñúñez Çağlar Ελένη Дмитрий 李小龍 محمد אבי 👩🏽‍⚖️",
    "",
    " ",
    "CO",
    "police",
    "es",
    "yes",
    "a@b.co",
    "jose@example.org\r\nBcc: x@example.org",
)


def long_text() -> st.SearchStrategy[str]:
    return st.tuples(st.text(min_size=1, max_size=8), st.integers(min_value=201, max_value=10_000)).map(
        lambda pair: (pair[0] * pair[1])[: pair[1]]
    )


hostile_text = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=40),
    st.lists(st.sampled_from(TRICKY) | st.text(max_size=6), min_size=2, max_size=5).map("".join),
    long_text(),
)
#: field -> replacement (None: leave the field out)
hostile_form = st.dictionaries(st.sampled_from(ALL_FIELDS), hostile_text | st.none(), min_size=1, max_size=3)
json_values = st.one_of(
    hostile_text,
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
hostile_json = st.dictionaries(
    st.sampled_from(ALL_FIELDS), json_values | st.just(...), min_size=1, max_size=3
)

_unique = itertools.count()


def unique_email() -> str:
    return f"fuzz.{next(_unique)}@example.org"


@dataclass
class Fuzz:
    client: Client
    session_maker: Sessions
    token: str


@pytest.fixture
async def fuzz(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Fuzz]:
    engine = create_async_engine(sqlite_url)
    configure_sqlite(engine)
    session_maker = async_sessionmaker(engine, expire_on_commit=False)
    await add_event(session_maker)
    app = create_app(make_settings(tmp_path, sqlite_url))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield Fuzz(client, session_maker, await csrf_token(client, FORM_URL))
    await engine.dispose()


def assert_stored_rows_are_clean(rows: list[Registration]) -> None:
    for row in rows:
        for name in ("full_name", "email", "country", "institution", "position", "language"):
            value = getattr(row, name)
            assert not has_forbidden_characters(value), (name, value)
            assert value == value.strip(), (name, value)
            assert len(value) <= MAX_LENGTHS[name], (name, len(value))
        assert row.full_name, row
        assert row.institution, row
        assert "@" in row.email, row


async def all_registrations(session_maker: Sessions) -> list[Registration]:
    async with session_maker() as session:
        return list((await session.execute(sa.select(Registration))).unique().scalars())


FUZZ_SETTINGS = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ_SETTINGS
@given(changes=hostile_form)
async def test_form_survives_hostile_input(fuzz: Fuzz, changes: dict[str, str | None]) -> None:
    form = base_form(email=unique_email())
    for name, value in changes.items():
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    before = await stored(fuzz.session_maker)

    response = await fuzz.client.post(
        FORM_URL, data={"_csrf_token": fuzz.token, **form}, follow_redirects=False
    )

    assert response.status_code in (302, 303, 422), (response.status_code, response.text[:500])
    after = await stored(fuzz.session_maker)
    if response.status_code == 422:
        assert after == before
        page = response.text
        assert summary_links(page), "a 422 without an error summary"
        assert "<script>alert(1)</script>" not in page
        assert "<img src=x" not in page
        for name in TEXT_INPUTS:
            assert typed_value(page, name) == str(escape(form.get(name, ""))), name
    else:
        assert response.headers["location"] == "/events/launch/registered"
        assert len(after.registrations) - len(before.registrations) in (0, 1)
        assert_stored_rows_are_clean(await all_registrations(fuzz.session_maker))


@FUZZ_SETTINGS
@given(changes=hostile_json)
async def test_api_survives_hostile_input(fuzz: Fuzz, changes: dict[str, Any]) -> None:
    body: dict[str, Any] = api_body(email=unique_email())
    for name, value in changes.items():
        if value is ...:
            body.pop(name, None)
        else:
            body[name] = value
    before = await stored(fuzz.session_maker)

    response = await fuzz.client.post(API_URL, json=body)

    assert response.status_code in (201, 422), (response.status_code, response.text[:500])
    answer = response.json()
    after = await stored(fuzz.session_maker)
    if response.status_code == 422:
        assert after == before
        assert answer["code"] == "invalid"
        assert answer["errors"], answer
        for error in answer["errors"]:
            assert error["field"] in ALL_FIELDS, error
            assert isinstance(error["message"], str), error
            assert error["message"], error
    else:
        assert answer["event"] == "launch"
        assert len(after.registrations) - len(before.registrations) in (0, 1)
        assert_stored_rows_are_clean(await all_registrations(fuzz.session_maker))
