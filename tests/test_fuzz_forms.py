"""Hypothesis over the HTML forms with hostile strings: never a 500, and what is stored renders as text.

Strings: CR/LF, NUL, U+2028/U+2029, values beyond every field cap, mixed scripts (Arabic, Cyrillic, CJK,
emoji, combining marks, an RTL override), HTML and template syntax, printf/format placeholders and
iCalendar syntax. A refused value comes back as an inline error with what was typed kept; an accepted one
must show as the same text in pages (escaped), in emails (headers never split, body shows it) and in .ics
(parsed back with icalendar: equal values, no property or component injected).

Hypothesis drives the app from a worker thread: each step is scheduled on the test's event loop, where
the ASGI app, the database engine and the outbox worker live. Derandomized and bounded in examples.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Awaitable, Callable
from email.header import decode_header, make_header
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from conftest import (
    SmtpServer,
    add_event,
    create_user,
    csrf_token,
    login,
    make_settings,
    registration_form,
)
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from icalendar import Calendar
from litestar import Litestar
from litestar.testing import AsyncTestClient
from markupsafe import escape
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import ApiToken, Event, Registration, Role, User
from events_app.lib.outbox import OutboxWorker
from events_app.settings import Settings

T = TypeVar("T")

PIECES = [
    "\r\n",
    "\n",
    "\r",
    "\x00",
    "\u2028",
    "\u2029",
    "\t",
    "<script>alert(1)</script>",
    "</textarea><script>alert(2)</script>",
    '"><img src=x onerror=alert(3)>',
    "{{ 7*7 }}",
    "{% raw %}",
    "{# c #}",
    "%(name)s",
    "%s",
    "${x}",
    "{name}",
    "{0}",
    "\nATTENDEE:mailto:evil@example.org",
    "\r\nBcc: victim@example.org",
    "\nEND:VEVENT\nBEGIN:VEVENT",
    ";",
    ",",
    ":",
    "\\",
    "\\n",
    "\\N",
    '"',
    "'",
    "&amp;",
    "<",
    ">",
    "@",
    "=?utf-8?q?x?=",
    "العدالة الجنائية",
    "Прокуратура",
    "検察庁",
    "😀👮🏽‍♀️",
    "e\u0301\u0327",
    "\u202eevil\u202c",
    "\u200b",
    "José Álvarez",
]
#: Printable, non-blank pieces only: what a careful person could type and the app must keep as is.
SAFE_PIECES = [piece for piece in PIECES if piece.strip() and piece.isprintable()]

INJECTION_MARKERS = ("<script>alert", "</textarea><script>", "<img src=x")


def hostile(pieces: list[str], cap: int) -> st.SearchStrategy[str]:
    """Mixes of hostile pieces and random text, and now and then a value far beyond the field's cap.

    Half the mixes use printable pieces only, so that many hostile values are accepted and stored.
    """

    def mixes(source: list[str]) -> st.SearchStrategy[str]:
        parts = st.one_of(st.sampled_from(source), st.text(max_size=4))
        return st.lists(parts, min_size=1, max_size=6).map("".join)

    safe = [piece for piece in pieces if piece in SAFE_PIECES]
    too_long = st.tuples(st.sampled_from(pieces), st.integers(cap + 1, cap * 3)).map(
        lambda item: (item[0] * (item[1] // max(len(item[0]), 1) + 1))[: item[1]]
    )
    return st.one_of(mixes(pieces), mixes(safe), mixes(safe), too_long)


FUZZ = hypothesis_settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

#: For a form that hashes a password on every example (argon2 is slow on purpose).
FUZZ_SLOW = hypothesis_settings(FUZZ, max_examples=80)


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str, smtp_server: SmtpServer) -> Settings:
    """SQLite only (the forms' checks are in Python and Jinja), and no rate limits: the fuzz is one IP."""
    return make_settings(
        tmp_path, sqlite_url, smtp_server.port, registration_limit_per_ip=0, registration_limit_per_email=0
    )


class Loop:
    """Runs coroutines on the test's event loop from Hypothesis's worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def __call__(self, coroutine: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=120)


# --- reading pages, emails and .ics ---------------------------------------------------------------------


class FormFields(HTMLParser):
    """The fields a browser would submit for one form: inputs, checked boxes, selected options."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._first_option: str | None = None
        self._selected = False
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.inside = found.get("action", "") == self.action
        if not self.inside or ("name" not in found and tag != "option"):
            return
        if tag == "input":
            kind = found.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in found:
                return
            if kind not in ("submit", "button"):
                self.fields.append((found["name"], found.get("value", "")))
        elif tag == "select":
            self._select, self._first_option, self._selected = found["name"], None, False
        elif tag == "option" and self._select is not None:
            if self._first_option is None:
                self._first_option = found.get("value", "")
            if "selected" in found:
                self.fields.append((self._select, found.get("value", "")))
                self._selected = True
        elif tag == "textarea":
            self._textarea, self._text = found["name"], []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            if not self._selected and self._first_option is not None:
                self.fields.append((self._select, self._first_option))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)


def form_fields(page: str, action: str) -> dict[str, Any]:
    parser = FormFields(action)
    parser.feed(page)
    fields: dict[str, Any] = {}
    for name, value in parser.fields:
        if name in fields:
            fields[name] = [*(fields[name] if isinstance(fields[name], list) else [fields[name]]), value]
        else:
            fields[name] = value
    assert fields, f"no form posting to {action}"
    return fields


def shown_as_text(page: str, value: str) -> None:
    """``value`` is in the HTML, escaped, and nothing in it became markup or was evaluated."""
    assert str(escape(value)) in page, value
    for marker in INJECTION_MARKERS:
        assert marker not in page, marker


def refused_and_kept(page: str, typed: dict[str, str]) -> None:
    """An inline error next to a field, and every value typed is still in the form (escaped)."""
    assert 'class="field-error"' in page
    for name, value in typed.items():
        at = page.find(f'name="{name}"')
        assert str(escape(value)) in page, (name, value, page[at : at + len(value) * 2 + 300])
    for marker in INJECTION_MARKERS:
        assert marker not in page, marker


def text_part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def invite_of(message: EmailMessage) -> bytes:
    parts = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    assert parts, "no invite"
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


CARET = {"^n": "\n", "^^": "^", "^'": '"'}


def literal_cn(ics: bytes, prop: str) -> str:
    """The CN parameter of ``prop`` read as RFC 5545 says (no backslash escapes in parameter values,
    RFC 6868 caret encoding). icalendar's own reader also undoes backslash escapes there, so a name
    holding ``\\;`` reads back changed with it though the file is right; this reader checks the file."""
    unfolded = ics.decode().replace("\r\n ", "").replace("\r\n\t", "")
    lines = [line for line in unfolded.split("\r\n") if line.startswith(f"{prop};")]
    assert len(lines) == 1, lines
    found = re.search(r';CN=(?:"([^"]*)"|([^";:]*))[;:]', lines[0])
    assert found is not None, lines[0]
    raw = found.group(1) if found.group(1) is not None else found.group(2)
    return re.sub(r"\^[n^']", lambda caret: CARET[caret.group(0)], raw)


#: What an event of ours may hold: anything else means something was injected.
VEVENT_PROPERTIES = {
    "UID", "SEQUENCE", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "DESCRIPTION", "LOCATION", "STATUS",
    "TRANSP", "ORGANIZER", "ATTENDEE", "URL", "CLASS", "CREATED", "LAST-MODIFIED",
}  # fmt: skip


def only_one_clean_event(calendar: Calendar) -> Any:
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert set(event.keys()) <= VEVENT_PROPERTIES, set(event.keys())
    assert not event.subcomponents
    attendees = event.get("ATTENDEE")
    assert attendees is None or not isinstance(attendees, list), "more than one ATTENDEE"
    return event


# --- the app, logged in ----------------------------------------------------------------------------------


_emails = itertools.count()


def fresh_email() -> str:
    return f"fuzz{next(_emails)}@example.org"


async def admin_client(client: AsyncTestClient[Litestar], session_maker: Any) -> None:
    await create_user(session_maker, "admin@programme.example.org", Role.ADMIN)
    response = await login(client, "admin@programme.example.org")
    assert "admin@programme.example.org" in response.text


def last_message_to(smtp_server: SmtpServer, email: str) -> EmailMessage:
    found = [m for m in smtp_server.messages if any(a.addr_spec == email for a in m["To"].addresses)]
    assert found, f"no email to {email}"
    return found[-1]


async def stored_registration(session_maker: async_sessionmaker[AsyncSession], email: str) -> Registration:
    async with session_maker() as session:
        found = await session.scalar(sa.select(Registration).where(Registration.email_normalized == email))
        assert found is not None
        return found


MANAGE_LINK = re.compile(r"https?://[^/\s]+(/my/[A-Za-z0-9_\-]+)")


def display_name(message: EmailMessage, header: str) -> str:
    """The display name of a one-address header as a mail client reads it.

    A name holding ``=?`` is sent as RFC 2047 encoded words from end to end, several for a long name;
    Python's address parser puts a space between adjacent encoded words, which RFC 2047 says to drop,
    so such a header is read here with ``decode_header``, which follows the RFC.
    """
    [address] = message[header].addresses
    if "=?" not in address.display_name:
        return str(address.display_name)
    raw = dict(message.raw_items())[header]
    text = str(make_header(decode_header(raw)))
    suffix = f" <{address.addr_spec}>"
    assert text.endswith(suffix), text
    return text.removesuffix(suffix)


def header_names(message: EmailMessage) -> list[str]:
    return sorted(key.lower() for key in message)


async def run_in_thread(test: Callable[[], None]) -> None:
    await asyncio.to_thread(test)


# --- public registration ---------------------------------------------------------------------------------


async def test_registration_form_keeps_hostile_text_as_text(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event = await add_event(session_maker)
    await admin_client(client, session_maker)
    run = Loop(asyncio.get_running_loop())
    path = f"/events/{event.slug}/register"
    token = await csrf_token(client, path)

    # A plain registration: the headers every registration email has.
    plain_email = fresh_email()
    plain = {"_csrf_token": token, **registration_form(email=plain_email)}
    response = await client.post(path, data=plain, follow_redirects=False)
    assert response.status_code in (302, 303), response.text
    await worker.drain()
    usual_headers = header_names(last_message_to(smtp_server, plain_email))

    texts = {
        "full_name": hostile(PIECES, 200),
        "institution": hostile(PIECES, 200),
        "position": hostile(PIECES, 200),
    }
    outcomes: dict[str, int] = {"refused": 0, "stored": 0}

    @FUZZ
    @given(typed=st.fixed_dictionaries({}, optional=texts))
    def register(typed: dict[str, str]) -> None:
        email = fresh_email()
        form = {"_csrf_token": token, **registration_form(email=email), **typed}
        response = run(client.post(path, data=form, follow_redirects=False))
        assert response.status_code in (302, 303, 422), (response.status_code, response.text[:2000])
        if response.status_code == 422:
            outcomes["refused"] += 1
            refused_and_kept(response.text, typed)
            return
        outcomes["stored"] += 1
        registration = run(stored_registration(session_maker, email))
        for field, value in typed.items():  # stored as typed, but for spaces around and in between
            assert getattr(registration, field) == " ".join(value.split()), field
        name = registration.full_name

        run(worker.drain())
        message = last_message_to(smtp_server, email)
        assert header_names(message) == usual_headers
        recipient = message["To"].addresses
        assert len(recipient) == 1
        assert recipient[0].addr_spec == email
        assert display_name(message, "To") == name
        assert name in text_part(message, "plain")
        shown_as_text(text_part(message, "html"), name)
        invite = invite_of(message)
        attendee = only_one_clean_event(Calendar.from_ical(invite))["ATTENDEE"]
        assert str(attendee) == f"mailto:{email}"
        assert literal_cn(invite, "ATTENDEE") == name
        if "\\" not in name:
            assert attendee.params["CN"] == name

        link = MANAGE_LINK.search(text_part(message, "plain"))
        assert link is not None
        my_page = run(client.get(link.group(1)))
        assert my_page.status_code == 200
        shown_as_text(my_page.text, name)
        download = run(client.get(f"{link.group(1)}/invite.ics"))
        assert download.status_code == 200
        only_one_clean_event(Calendar.from_ical(download.content))
        assert literal_cn(download.content, "ATTENDEE") == name

        organiser_page = run(client.get(f"/manage/registrations/{registration.id}"))
        assert organiser_page.status_code == 200
        for field in typed:
            shown_as_text(organiser_page.text, getattr(registration, field))

    await run_in_thread(register)
    assert outcomes["refused"], outcomes
    assert outcomes["stored"], outcomes


# --- the organiser's event editor ------------------------------------------------------------------------


async def test_event_editor_keeps_hostile_text_as_text(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker)
    await admin_client(client, session_maker)
    run = Loop(asyncio.get_running_loop())
    edit = f"/manage/events/{event.id}/edit"
    original = form_fields((await client.get(edit)).text, edit)
    free_text = {
        "title_en": hostile(PIECES, 200),
        "summary_en": hostile(PIECES, 300),
        "description_en": hostile(PIECES, 10_000),
        "title_es": hostile(SAFE_PIECES, 200),
        "venue_name": hostile(PIECES, 200),
        "venue_address": hostile(PIECES, 300),
        "venue_city": hostile(PIECES, 120),
        "contact_name": hostile(PIECES, 200),
    }
    assert set(free_text) <= set(original), sorted(original)
    outcomes: dict[str, int] = {"refused": 0, "stored": 0}

    @FUZZ
    @given(typed=st.fixed_dictionaries({}, optional=free_text))
    def save(typed: dict[str, str]) -> None:
        response = run(client.post(edit, data={**original, **typed}, follow_redirects=False))
        assert response.status_code in (302, 303, 422), (response.status_code, response.text[:2000])
        if response.status_code == 422:
            outcomes["refused"] += 1
            refused_and_kept(response.text, typed)
            return
        outcomes["stored"] += 1
        stored = run(stored_event(session_maker, event.id))
        title = stored.text("title", "en")
        public = run(client.get(f"/events/{event.slug}?lang=en"))
        assert public.status_code == 200
        shown_as_text(public.text, title)
        for field in ("venue_name", "venue_city"):
            if field in typed:
                shown_as_text(public.text, getattr(stored, field))
        ics = run(client.get(f"/events/{event.slug}/calendar.ics?lang=en"))
        assert ics.status_code == 200
        vevent = only_one_clean_event(Calendar.from_ical(ics.content))
        assert str(vevent["SUMMARY"]) == title
        assert str(stored.venue_name) in str(vevent["LOCATION"])
        assert literal_cn(ics.content, "ORGANIZER") == (stored.contact_name or stored.contact_email)
        summary = stored.text("summary", "en")
        if summary:
            assert str(vevent["DESCRIPTION"]).startswith(summary)
        manage = run(client.get(f"/manage/events/{event.id}"))
        assert manage.status_code == 200
        shown_as_text(manage.text, title)

    await run_in_thread(save)
    assert outcomes["refused"], outcomes
    assert outcomes["stored"], outcomes


async def stored_event(session_maker: async_sessionmaker[AsyncSession], event_id: Any) -> Event:
    async with session_maker() as session:
        event = await session.get(Event, event_id)
        assert event is not None
        return event


# --- mass messages ---------------------------------------------------------------------------------------


async def test_mass_message_keeps_hostile_text_as_text(
    client: AsyncTestClient[Litestar],
    session_maker: async_sessionmaker[AsyncSession],
    worker: OutboxWorker,
    smtp_server: SmtpServer,
) -> None:
    event = await add_event(session_maker)
    await admin_client(client, session_maker)
    run = Loop(asyncio.get_running_loop())
    recipient = fresh_email()
    path = f"/events/{event.slug}/register"
    token = await csrf_token(client, path)
    form = {"_csrf_token": token, **registration_form(email=recipient, language="en")}
    assert (await client.post(path, data=form, follow_redirects=False)).status_code in (302, 303)
    await worker.drain()
    usual_headers = header_names(last_message_to(smtp_server, recipient))
    base = f"/manage/events/{event.id}/messages"
    compose = form_fields((await client.get(f"{base}/new")).text, f"{base}/preview")
    compose["status"] = ["confirmed"]
    outcomes: dict[str, int] = {"refused": 0, "sent": 0}

    @FUZZ
    @given(subject=hostile(PIECES, 200), body=hostile(PIECES, 20_000))
    def send(subject: str, body: str) -> None:
        typed = {"subject_en": subject, "body_en": body}
        preview = run(client.post(f"{base}/preview", data={**compose, **typed}))
        assert preview.status_code in (200, 422), (preview.status_code, preview.text[:2000])
        if preview.status_code == 422:
            outcomes["refused"] += 1
            refused_and_kept(preview.text, typed)
            return
        for marker in INJECTION_MARKERS:
            assert marker not in preview.text
        before = len(smtp_server.messages)
        sent = run(
            client.post(
                f"{base}/send", data=form_fields(preview.text, f"{base}/send"), follow_redirects=False
            )
        )
        assert sent.status_code in (302, 303), (sent.status_code, sent.text[:2000])
        outcomes["sent"] += 1
        run(worker.drain())
        assert len(smtp_server.messages) == before + 1
        message = last_message_to(smtp_server, recipient)
        assert header_names(message) == usual_headers
        if "{" not in subject:  # placeholders aside, the subject is what was typed (on one line)
            assert message["Subject"] == " ".join(subject.split())
        plain = text_part(message, "plain")
        html_body = text_part(message, "html")
        for marker in INJECTION_MARKERS:
            assert marker not in html_body
        if "{" not in body:
            cleaned = body.replace("\r\n", "\n").replace("\r", "\n").strip()
            for line in (line for line in cleaned.split("\n") if line.strip()):
                assert line.strip() in plain, line

    await run_in_thread(send)
    assert outcomes["refused"], outcomes
    assert outcomes["sent"], outcomes


# --- organiser accounts and API tokens --------------------------------------------------------------------


async def test_account_and_token_forms_keep_hostile_text_as_text(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await admin_client(client, session_maker)
    run = Loop(asyncio.get_running_loop())
    user_form = form_fields((await client.get("/manage/users/new")).text, "/manage/users/new")
    token_form = form_fields((await client.get("/manage/tokens")).text, "/manage/tokens")
    outcomes: dict[str, int] = {"refused": 0, "stored": 0}

    @FUZZ_SLOW
    @given(full_name=hostile(PIECES, 200), token_name=hostile(PIECES, 120))
    def save(full_name: str, token_name: str) -> None:
        email = fresh_email()
        typed = {"email": email, "full_name": full_name, "password": "correct horse battery staple"}
        response = run(client.post("/manage/users/new", data={**user_form, **typed}, follow_redirects=False))
        assert response.status_code in (302, 303, 422), (response.status_code, response.text[:2000])
        if response.status_code == 422:
            outcomes["refused"] += 1
            refused_and_kept(response.text, {"full_name": full_name})
        else:
            outcomes["stored"] += 1
            user = run(stored_row(session_maker, User, User.email == email))
            assert " ".join(user.full_name.split()) == " ".join(full_name.split())
            if user.full_name:
                shown_as_text(run(client.get("/manage/users")).text, user.full_name)

        token = run(client.post("/manage/tokens", data={**token_form, "name": token_name}))
        assert token.status_code in (200, 422), (token.status_code, token.text[:2000])
        if token.status_code == 422:
            outcomes["refused"] += 1
            refused_and_kept(token.text, {"name": token_name})
            return
        outcomes["stored"] += 1
        stored = run(stored_row(session_maker, ApiToken, sa.true(), newest=True))
        shown_as_text(token.text, stored.name)
        shown_as_text(run(client.get("/manage/tokens")).text, stored.name)
        audit = run(client.get("/manage/audit"))
        assert audit.status_code == 200
        for marker in INJECTION_MARKERS:
            assert marker not in audit.text

    await run_in_thread(save)
    assert outcomes["refused"], outcomes
    assert outcomes["stored"], outcomes


async def stored_row(
    session_maker: async_sessionmaker[AsyncSession], model: Any, where: Any, newest: bool = False
) -> Any:
    async with session_maker() as session:
        statement = sa.select(model).where(where)
        if newest:
            statement = statement.order_by(model.created_at.desc()).limit(1)
        found = await session.scalar(statement)
        assert found is not None
        return found


# --- search boxes ------------------------------------------------------------------------------------------


async def test_search_boxes_show_what_was_searched_as_text(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    event = await add_event(session_maker)
    await admin_client(client, session_maker)
    run = Loop(asyncio.get_running_loop())
    searches = [
        (f"/manage/events/{event.id}/attendees", "q"),
        ("/manage/audit", "actor"),
        (f"/api/checkin/events/{event.id}/search", "q"),
    ]

    @FUZZ
    @given(query=hostile(PIECES, 320), where=st.sampled_from(searches))
    def search(query: str, where: tuple[str, str]) -> None:
        path, name = where
        response = run(client.get(path, params={name: query}, headers={"X-CSRFToken": csrf}))
        assert response.status_code in (200, 422), (response.status_code, response.text[:2000])
        if response.headers["content-type"].startswith("text/html"):
            for marker in INJECTION_MARKERS:
                assert marker not in response.text
            typed = " ".join(query.split())
            if response.status_code == 200 and query.isprintable() and 0 < len(typed) <= 100:
                assert str(escape(typed)) in response.text or str(escape(query)) in response.text

    csrf = await csrf_token(client, "/manage")
    await run_in_thread(search)
