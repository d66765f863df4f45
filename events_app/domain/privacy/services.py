"""Forgetting a registrant: the anonymiser and erasure on request (the export is in ``export.py``,
the retention job in ``retention.py``).

Erasure on request and the retention job use one anonymiser (:func:`anonymise`): the registration row
stays with its event, status, country, sector, language and times, so counts and statistics by country
stay right; everything that names or reaches the person is blanked, in the registration and wherever it
was copied (outbox, status history, audit entries, online attendance, scan answers), and their links
(ticket, join, certificate) stop working. The personal link then shows "this registration's data was
erased".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from events_app.db.models import (
    AttendanceImport,
    AuditEntry,
    Certificate,
    OnlineAttendance,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationChange,
    RegistrationStatus,
    ScanAttempt,
)
from events_app.domain.audit.services import record
from events_app.domain.registrations.services import MailKind, RegistrationService, queue_registration_mail
from events_app.lib.security import hash_token, new_random_token

#: What an erased name reads as in organiser lists (a neutral mark, not a word to translate).
ERASED_NAME = "—"
#: Keys of audit details and scan answers that hold a person's data.
PERSONAL_KEYS = frozenset(
    {
        "display_name",
        "email",
        "full_name",
        "name",
        "note",
        "recipient",
        "institution",
        "position",
        "query",
    }
)
#: Keys of audit details holding what an organiser typed in a search box: a part of a name or email
#: cannot be told from other text, so every search text of the event's entries is blanked.
SEARCH_KEYS = frozenset({"q", "query", "search"})
ERASED_VALUE = "[erased]"
#: Shorter names or emails are not looked for in free text (they would match unrelated words).
MIN_NEEDLE = 5
#: Shorter names are matched only as a whole value (a name field holding exactly that name).
MIN_WHOLE_VALUE = 2
UNSENT = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.FAILED)
#: The dedupe key of an erasure's own cancellation mail (followed by the registration id).
ERASURE_MAIL_KEY = "erasure:"
#: How far back (by due time) the retention job looks for delivered erasure cancellations to blank; a
#: cancellation that waited longer than this before it went out (no worker for a month) keeps its address.
ERASURE_MAIL_WINDOW = timedelta(days=30)


class Reason:
    REQUEST = "participant_request"
    RETENTION = "retention"


# --- the anonymiser -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """What names one registrant, read before their row is blanked."""

    id: UUID
    event_id: UUID
    email: str
    email_normalized: str
    full_name: str

    @classmethod
    def of(cls, registration: Registration) -> Person:
        return cls(
            registration.id,
            registration.event_id,
            registration.email,
            registration.email_normalized,
            registration.full_name,
        )

    def emails(self) -> set[str]:
        """The person's email as stored, and as SQLite writes it inside JSON (non-ASCII escaped)."""
        forms = {form.strip().casefold() for form in (self.email, self.email_normalized) if "@" in form}
        return forms | {json.dumps(form)[1:-1] for form in forms}


class Needles:
    """Finds any of many strings (the names and emails of a batch) in a text in one pass.

    Strings of at least ``MIN_NEEDLE`` characters are looked for anywhere in a text, through an index
    of their first characters (a look-up per position, whatever the number of people); shorter ones
    (a name like "Li Wu" is fine, "Ana" is not) only match a whole value, such as a name field.
    """

    def __init__(self, strings: set[str]) -> None:
        self._by_prefix: dict[str, list[str]] = {}
        self._whole: set[str] = set()
        for raw in strings:
            needle = raw.strip().casefold()
            if len(needle) >= MIN_NEEDLE:
                self._by_prefix.setdefault(needle[:MIN_NEEDLE], []).append(needle)
            if len(needle) >= MIN_WHOLE_VALUE:
                self._whole.add(needle)

    @classmethod
    def of(cls, people: Sequence[Person]) -> Needles:
        strings: set[str] = set()
        for person in people:
            strings |= person.emails() | {person.full_name}
        return cls(strings)

    def __bool__(self) -> bool:
        return bool(self._by_prefix or self._whole)

    def found_in(self, value: str | None) -> bool:
        if not value:
            return False
        text = value.casefold()
        if text.strip() in self._whole:
            return True
        index = self._by_prefix
        for position in range(len(text) - MIN_NEEDLE + 1):
            candidates = index.get(text[position : position + MIN_NEEDLE])
            if candidates and any(text.startswith(needle, position) for needle in candidates):
                return True
        return False


def _scrub(value: Any, needles: Needles, about_person: bool, searches: bool = False) -> Any:
    """``value`` with any string naming a person replaced; when the whole record is about the person
    (``about_person``), personal keys (name, email, note...) are blanked whatever they hold, and with
    ``searches`` so are search texts."""
    if isinstance(value, dict):
        return {
            key: ERASED_VALUE
            if item
            and ((about_person and key in PERSONAL_KEYS) or (searches and key in SEARCH_KEYS))
            and item != ERASED_VALUE
            else _scrub(item, needles, about_person, searches)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub(item, needles, about_person, searches) for item in value]
    if isinstance(value, str) and needles.found_in(value):
        return ERASED_VALUE
    return value


def _scrub_text(value: str | None, needles: Needles) -> str | None:
    return ERASED_VALUE if value is not None and needles.found_in(value) else value


def _mentions_email(people: Sequence[Person]) -> ColumnElement[bool] | None:
    """Audit details (as text, lower-cased) holding one of the people's emails in either JSON form."""
    details = sa.func.lower(sa.cast(AuditEntry.details, sa.Text))
    forms = sorted({form for person in people for form in person.emails()})
    if not forms:
        return None
    return sa.or_(*(details.contains(form, autoescape=True) for form in forms))


async def _update_each(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE of ``model`` by id (``rows`` hold ``row_id`` and the new values)."""
    if not rows:
        return
    table = cast(sa.Table, model.__table__)
    # Bound names differ from the column names (SQLAlchemy keeps those for the SET clause itself).
    values: dict[str, Any] = {key: sa.bindparam(f"new_{key}") for key in rows[0] if key != "row_id"}
    statement = table.update().where(table.c.id == sa.bindparam("row_id")).values(**values)
    parameters = [
        {("row_id" if key == "row_id" else f"new_{key}"): value for key, value in row.items()} for row in rows
    ]
    await session.execute(statement, parameters)


_MERGE_SEARCH_INDEX = sa.text("INSERT INTO registrations_search(registrations_search) VALUES ('optimize')")


async def merge_search_index(session: AsyncSession) -> None:
    """SQLite only: FTS5 deletes by writing a marker and keeps the old row's trigrams in older segments
    of the attendee search index until those merge; 'optimize' merges them now, so erased names and
    addresses are gone from the database file (about 0.3 s at 50,000 registrations). PostgreSQL's
    trigram index, like its tables, loses dead entries at VACUUM (autovacuum)."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            sa.text("INSERT INTO registrations_search(registrations_search) VALUES ('optimize')")
        )


async def anonymise_people(
    session: AsyncSession,
    event_id: UUID,
    people: Sequence[Person],
    now: datetime,
    keep_outbox: frozenset[UUID] = frozenset(),
) -> int:
    """Blank the data of ``people`` (registrations of ``event_id``) everywhere, set-based, in the
    caller's transaction; returns how many were still to anonymise (0 when all already were).

    Erasure on request (one person) and retention (a batch of one event) both come here. Each kind of
    row is touched by a statement or two for the whole batch; the event's online attendance, report
    summaries and audit entries are read once and searched for every name and email of the batch at once.
    ``keep_outbox``: an outbox row left as is (the cancellation an erasure still has to deliver).
    """
    registrations = cast(sa.Table, Registration.__table__)
    result = await session.execute(
        sa.select(registrations.c.id).where(
            registrations.c.id.in_([person.id for person in people]),
            registrations.c.event_id == event_id,
            registrations.c.anonymised_at.is_(None),
        )
    )
    pending = set(result.scalars())
    people = [person for person in people if person.id in pending]
    if not people:
        return 0
    rids = [person.id for person in people]
    needles = Needles.of(people)
    # The registrations: the link hashes change (ticket, join), the manage link only says "erased".
    await session.execute(
        registrations.update()
        .where(registrations.c.id == sa.bindparam("row_id"))
        .values(
            full_name=ERASED_NAME,
            email="",
            email_normalized=sa.bindparam("erased_identity"),
            institution="",
            position="",
            ticket_version=registrations.c.ticket_version + 1,
            ticket_hash=sa.bindparam("new_ticket_hash"),
            join_token_hash=None,
            anonymised_at=now,
            updated_at=now,
        ),
        [
            {
                "row_id": rid,
                "erased_identity": f"erased:{rid}",
                "new_ticket_hash": hash_token(new_random_token()),
            }
            for rid in rids
        ],
    )
    # Outbox: no address or payload left; what was not sent yet never will be.
    outbox = cast(sa.Table, OutboxMessage.__table__)
    ours = sa.and_(outbox.c.registration_id.in_(rids), outbox.c.id.not_in(keep_outbox))
    errors = await session.execute(
        sa.select(outbox.c.id, outbox.c.last_error).where(ours, outbox.c.last_error.is_not(None))
    )
    await _update_each(
        session,
        OutboxMessage,
        [
            {"row_id": row_id, "last_error": ERASED_VALUE}
            for row_id, error in errors
            if _scrub_text(error, needles) != error
        ],
    )
    await session.execute(outbox.update().where(ours).values(recipient="", payload={}))
    await session.execute(
        outbox.update()
        .where(ours, outbox.c.status.in_(UNSENT))
        .values(status=OutboxStatus.SKIPPED, locked_until=None)
    )
    changes = cast(sa.Table, RegistrationChange.__table__)
    await session.execute(
        changes.update().where(changes.c.registration_id.in_(rids), changes.c.note != "").values(note="")
    )
    # Online attendance of the event: the matched rows, and unmatched ones carrying their email or name.
    identities = {person.email_normalized for person in people}
    attendance = cast(sa.Table, OnlineAttendance.__table__)
    rows = await session.execute(
        sa.select(
            attendance.c.id,
            attendance.c.registration_id,
            attendance.c.identity,
            attendance.c.email,
            attendance.c.display_name,
        ).where(attendance.c.event_id == event_id, ~attendance.c.identity.startswith("erased:"))
    )
    await _update_each(
        session,
        OnlineAttendance,
        [
            {"row_id": row_id, "identity": f"erased:{row_id}", "email": None, "display_name": ""}
            for row_id, registration_id, identity, email, display_name in rows
            if registration_id in pending
            or identity in identities
            or needles.found_in(display_name)
            or needles.found_in(email)
        ],
    )
    await _scrub_json(session, AttendanceImport, "summary", AttendanceImport.event_id == event_id, needles)
    await _scrub_json(
        session, ScanAttempt, "answer", ScanAttempt.registration_id.in_(rids), needles, about_person=True
    )
    certificates = await session.execute(
        sa.select(Certificate.id, Certificate.revoked_at).where(Certificate.registration_id.in_(rids))
    )
    await _update_each(
        session,
        Certificate,
        [
            {"row_id": row_id, "code_hash": hash_token(new_random_token()), "revoked_at": revoked_at or now}
            for row_id, revoked_at in certificates
        ],
    )
    # Audit entries: those of the event, and those outside any event that are about one of the people
    # or hold their email. Entries about a person lose their personal keys; the others lose the
    # strings that name someone of the batch.
    rid_texts = {str(rid) for rid in rids}
    outside: list[ColumnElement[bool]] = [AuditEntry.object_id.in_(rid_texts)]
    if (by_email := _mentions_email(people)) is not None:
        outside.append(by_email)
    entries = await session.execute(
        sa.select(AuditEntry.id, AuditEntry.object_id, AuditEntry.details).where(
            sa.or_(
                AuditEntry.event_id == event_id,
                sa.and_(AuditEntry.event_id.is_(None), sa.or_(*outside)),
            )
        )
    )
    about_needles = Needles(rid_texts)
    updates = []
    for entry_id, object_id, details in entries:
        about_person = object_id in rid_texts or about_needles.found_in(json.dumps(details))
        scrubbed = _scrub(details, needles, about_person, searches=True)
        if scrubbed != details:
            updates.append({"row_id": entry_id, "details": scrubbed})
    await _update_each(session, AuditEntry, updates)
    return len(people)


async def _scrub_json(
    session: AsyncSession,
    model: Any,
    column: str,
    condition: ColumnElement[bool],
    needles: Needles,
    about_person: bool = False,
) -> None:
    rows = await session.execute(sa.select(model.id, getattr(model, column)).where(condition))
    updates = []
    for row_id, value in rows:
        scrubbed = _scrub(value, needles, about_person)
        if scrubbed != value:
            updates.append({"row_id": row_id, column: scrubbed})
    await _update_each(session, model, updates)


async def anonymise(
    session: AsyncSession,
    registration: Registration,
    now: datetime,
    keep_outbox: frozenset[UUID] = frozenset(),
) -> bool:
    """Blank one person's data everywhere, in the caller's transaction; False if it was already done."""
    if registration.anonymised_at is not None:
        return False
    done = await anonymise_people(session, registration.event_id, [Person.of(registration)], now, keep_outbox)
    await session.refresh(registration)
    return done > 0


# --- erasure on request -------------------------------------------------------------------------------


async def erase(
    service: RegistrationService, registration: Registration, now: datetime | None = None
) -> None:
    """The person's "erase my data", in one transaction with their registration row locked: cancel if
    still active (the seat goes to the waiting list, through the usual verb), then anonymise, with an
    audit entry that names nobody. Commits.

    The cancellation (with the calendar CANCEL) still has to reach the person: that one outbox row
    keeps their address and name in its payload until it is delivered; the worker builds it from them,
    and :func:`scrub_delivered_erasures` blanks it once it is sent (or has failed for good).
    """
    moment = now or datetime.now(UTC)
    session = service.session
    await session.execute(
        sa.select(Registration.id).where(Registration.id == registration.id).with_for_update()
    )
    await session.refresh(registration)
    keep: frozenset[UUID] = frozenset()
    if registration.is_active:
        person = Person.of(registration)
        # The participant's cancel, without its commit (RegistrationService.cancel commits).
        if await service._leave(registration, RegistrationStatus.CANCELLED, moment, actor="participant"):
            mail = queue_registration_mail(
                session,
                service.tokens,
                registration,
                MailKind.CANCELLED,
                dedupe_key=f"{ERASURE_MAIL_KEY}{registration.id}",
                erased_person={"email": person.email, "name": person.full_name},
            )
            await session.flush()
            keep = frozenset({mail.id})
    elif registration.anonymised_at is None:
        keep = await _keep_pending_cancellation(session, registration)
    if await anonymise(session, registration, moment, keep):
        record(
            session,
            None,
            "registration_erased",
            "registration",
            registration.id,
            registration.event_id,
            reason=Reason.REQUEST,
        )
        await merge_search_index(session)
    await session.commit()


async def _keep_pending_cancellation(session: AsyncSession, registration: Registration) -> frozenset[UUID]:
    """A cancellation of the person's own, not delivered yet when they ask for erasure, still goes out
    (built from its payload like the erasure's own); returns that row to keep."""
    outbox = cast(sa.Table, OutboxMessage.__table__)
    result = await session.execute(
        sa.select(outbox.c.id, outbox.c.payload)
        .where(
            outbox.c.registration_id == registration.id,
            outbox.c.kind == MailKind.CANCELLED.value,
            outbox.c.status.in_(UNSENT),
        )
        .order_by(outbox.c.created_at.desc())
        .limit(1)
    )
    row = result.first()
    if row is None:
        return frozenset()
    pending, payload = row
    person = {"email": registration.email, "name": registration.full_name}
    await session.execute(
        outbox.update()
        .where(outbox.c.id == pending)
        .values(
            dedupe_key=f"{ERASURE_MAIL_KEY}{registration.id}",
            payload={**payload, "erased_person": person},
        )
    )
    return frozenset({pending})


async def scrub_delivered_erasures(session: AsyncSession, now: datetime | None = None) -> int:
    """Blank the address and payload of erasure cancellations once delivered or given up on.

    Looks only at rows settled in the last ``ERASURE_MAIL_WINDOW`` (through the outbox's index on
    status and due time), so the periodic job stays cheap however large the outbox grows.
    """
    since = (now or datetime.now(UTC)) - ERASURE_MAIL_WINDOW
    outbox = cast(sa.Table, OutboxMessage.__table__)
    result = await session.execute(
        outbox.update()
        .where(
            outbox.c.status.in_((OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.SKIPPED)),
            outbox.c.next_attempt_at >= since,
            outbox.c.kind == MailKind.CANCELLED.value,
            outbox.c.dedupe_key.startswith(ERASURE_MAIL_KEY, autoescape=True),
            outbox.c.recipient != "",
        )
        .values(recipient="", payload={})
    )
    return int(cast(CursorResult[Any], result).rowcount)


async def is_erased_link(service: RegistrationService, token: str) -> bool:
    """Whether ``token`` was the personal link of a registration whose data was erased."""
    return await service.erased_by_manage_token(token)
