"""Door check-in: deciding on a scanned ticket, recording it, undoing it, and what scanners download.

A ticket is found by the hash of its code only (the database never holds the code). Every scan is a
:class:`ScanAttempt` keyed by the scanner's nonce, so a scan sent twice (a retry, an offline queue
synced again) is answered the same way and checks in once. At most one live :class:`CheckIn` per
registration is a partial unique index: of many devices scanning one ticket at the same moment,
exactly one wins and the others are told when and where it was checked in.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, cast
from uuid import UUID

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from uuid_utils.compat import uuid7

from events_app.db.models import (
    CheckIn,
    Event,
    EventAssignment,
    RateLimitBucket,
    Registration,
    RegistrationStatus,
    Role,
    ScanAttempt,
)
from events_app.domain.accounts.permissions import Principal, checks_in_at
from events_app.domain.accounts.services import CALLERS, Caller, note_api_token_use
from events_app.domain.audit.services import record
from events_app.domain.checkin.schemas import (
    SEARCH_LIMIT,
    ManifestEntry,
    ManifestOut,
    Scan,
    ScanAnswer,
    ScanResult,
    SearchHit,
    StatsOut,
    UndoOut,
)
from events_app.domain.checkin.views import result_message, undo_message
from events_app.domain.registrations.services import MailKind, TokenSettings, queue_registration_mail
from events_app.lib.security import TokenPurpose, derive_token, hash_token, looks_like_token

RATE_PER_DEVICE = 600
RATE_PER_IP = 3000
RATE_WINDOW = timedelta(minutes=1)
#: A scan that lost a race (the live check-in's unique index, or its nonce) is decided again.
MAX_TRIES = 3

_REFUSALS = {
    RegistrationStatus.CANCELLED: ScanResult.CANCELLED,
    RegistrationStatus.REJECTED: ScanResult.CANCELLED,
    RegistrationStatus.PENDING_APPROVAL: ScanResult.NOT_APPROVED,
    RegistrationStatus.WAITLISTED: ScanResult.WAITLISTED,
}


#: One check-in transaction at a time per process on SQLite (see :func:`write_turn`), per event loop.
_SQLITE_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def write_turn(session: AsyncSession) -> AsyncIterator[None]:
    """On SQLite, queue this process's check-in transactions in memory.

    Every SQLite transaction here takes the database's one write lock when it begins; twenty scanners
    at once would otherwise wait in SQLite's busy handler, which sleeps in growing steps (tail latency
    of seconds). Waiting on an asyncio lock hands the turn over at once. PostgreSQL needs no queue.
    """
    if session.bind.dialect.name != "sqlite":
        yield
        return
    loop = asyncio.get_running_loop()
    turn = _SQLITE_TURNS.get(loop)
    if turn is None:
        turn = _SQLITE_TURNS[loop] = asyncio.Lock()
    async with turn:
        yield


@dataclass(frozen=True, slots=True)
class Person:
    id: UUID
    event_id: UUID
    full_name: str
    institution: str
    country: str
    status: RegistrationStatus


@dataclass(frozen=True, slots=True)
class LiveCheckIn:
    scanned_at: datetime
    device: str


@dataclass(frozen=True, slots=True)
class Verdict:
    result: ScanResult
    person: Person | None = None
    existing: LiveCheckIn | None = None


_PERSON_COLUMNS = (
    Registration.id,
    Registration.event_id,
    Registration.full_name,
    Registration.institution,
    Registration.country,
    Registration.status,
)


# --- scope ------------------------------------------------------------------------------------------


def _checkin_filter(principal: Principal) -> ColumnElement[bool]:
    if principal.is_admin:
        return sa.true()
    if principal.role in (Role.CHECKIN_STAFF, Role.EVENT_MANAGER) and principal.event_ids:
        return Event.id.in_(principal.event_ids)
    return sa.false()


async def event_for_checkin(session: AsyncSession, principal: Principal, event_id: UUID) -> Event | None:
    """The event, when the principal checks people in there (else None: the caller answers 404)."""
    if not principal.checks_in(event_id):
        return None
    return await session.get(Event, event_id)


async def checkin_events(session: AsyncSession, principal: Principal) -> Sequence[Event]:
    statement = sa.select(Event).where(_checkin_filter(principal)).order_by(Event.starts_at.desc()).limit(200)
    return (await session.execute(statement)).scalars().all()


# --- deciding ---------------------------------------------------------------------------------------


async def _find_person(
    session: AsyncSession, code: str | None, registration_id: UUID | None
) -> tuple[Person, LiveCheckIn | None] | None:
    """The registration behind a code (or id), with its live check-in: one query."""
    if code is not None and not looks_like_token(code):
        return None
    statement = sa.select(*_PERSON_COLUMNS, CheckIn.scanned_at, CheckIn.device).outerjoin(CheckIn, _LIVE)
    row = (await session.execute(statement.where(_which(code, registration_id)))).one_or_none()
    if row is None:
        return None
    existing = LiveCheckIn(row.scanned_at, row.device) if row.scanned_at is not None else None
    return Person(*row[: len(_PERSON_COLUMNS)]), existing


async def lookup(
    session: AsyncSession, event_id: UUID, *, code: str | None = None, registration_id: UUID | None = None
) -> Verdict:
    """What a scan of ``code`` (or a hand-picked registration) at ``event_id`` means now; reads only."""
    found = await _find_person(session, code, registration_id)
    if found is None:
        return Verdict(ScanResult.INVALID)
    return _verdict(event_id, code is not None, *found)


def _verdict(event_id: UUID, by_code: bool, person: Person, existing: LiveCheckIn | None) -> Verdict:
    if person.event_id != event_id:
        # A registration of another event chosen by hand is not revealed; a ticket says where it belongs.
        return Verdict(ScanResult.OTHER_EVENT if by_code else ScanResult.INVALID, person)
    refusal = _REFUSALS.get(person.status)
    if refusal is not None:
        return Verdict(refusal, person)
    return Verdict(ScanResult.ALREADY_CHECKED_IN if existing else ScanResult.OK, person, existing)


def answer_for(verdict: Verdict, scan: Scan, zone: str) -> ScanAnswer:
    """The scanner's answer; a ticket of another event shows nothing about its holder."""
    existing = verdict.existing
    answer = ScanAnswer(
        result=verdict.result.value,
        message=result_message(
            verdict.result, verdict.person.status if verdict.person else None, existing, zone
        ),
    )
    person = verdict.person
    if person is not None and verdict.result not in (ScanResult.OTHER_EVENT, ScanResult.INVALID):
        answer.name = person.full_name
        answer.institution = person.institution
        answer.country = person.country
        answer.registration_id = str(person.id)
    if verdict.result is ScanResult.OK:
        answer.checked_in_at, answer.device = scan.scanned_at.isoformat(), scan.device
    elif existing is not None:
        answer.checked_in_at, answer.device = existing.scanned_at.isoformat(), existing.device
    return answer


# --- one scan, one transaction ----------------------------------------------------------------------


class Refusal(StrEnum):
    """Why a scan was not decided on."""

    #: No such API token or session (401).
    NOT_LOGGED_IN = "not_logged_in"
    #: No such event, or the caller does not check people in there (404).
    NOT_HERE = "not_here"
    #: The nonce was already used for a scan at another event (422).
    NONCE_REUSED = "nonce_reused"


@dataclass(frozen=True, slots=True)
class RateLimited:
    retry_after: int


_LIVE = sa.and_(CheckIn.registration_id == Registration.id, CheckIn.undone_at.is_(None))
_BY_CODE = Registration.ticket_hash == sa.bindparam("ticket_hash", type_=sa.String())
_BY_ID = Registration.id == sa.bindparam("registration_id", type_=Registration.id.type)


def _which(code: str | None, registration_id: UUID | None) -> ColumnElement[bool]:
    """The registration a scan names: by the hash of its ticket code, or by id (a hand check-in)."""
    if code is not None:
        return Registration.ticket_hash == hash_token(code) if looks_like_token(code) else sa.false()
    return Registration.id == registration_id


def _scan_read(caller: sa.Select[Any], which: ColumnElement[bool]) -> sa.Select[Any]:
    """Everything a scan is decided on, in one statement of at most one row (none: nobody is logged in).

    To the caller (an API token's or a session's user, see accounts' ``CALLERS``) are joined the event
    (its time zone, and whether the caller is assigned to it), an earlier scan with the same nonce, and
    the registration the scan names (``which``) with its live check-in. Every join is on a unique key.
    """
    found = caller.subquery("caller")
    event_id = sa.bindparam("event_id", type_=Event.id.type)
    assigned = sa.exists().where(
        EventAssignment.user_id == found.c.user_id, EventAssignment.event_id == event_id
    )
    joined = (
        found.outerjoin(Event, Event.id == event_id)
        .outerjoin(ScanAttempt, ScanAttempt.nonce == sa.bindparam("nonce", type_=sa.String()))
        .outerjoin(Registration, which)
        .outerjoin(CheckIn, _LIVE)
    )
    return sa.select(
        *_PERSON_COLUMNS,
        CheckIn.scanned_at.label("live_scanned_at"),
        CheckIn.device.label("live_device"),
        found.c.user_id,
        found.c.role,
        found.c.token_id,
        found.c.last_used_at,
        assigned.label("assigned"),
        Event.timezone.label("zone"),
        ScanAttempt.event_id.label("replay_event_id"),
        ScanAttempt.answer.label("replay_answer"),
    ).select_from(joined)


# Built once (see accounts' CALLERS): by caller kind, and by ticket code (True) or by registration id.
_SCAN_READS = {
    (kind, by_code): _scan_read(caller, _BY_CODE if by_code else _BY_ID)
    for kind, caller in CALLERS.items()
    for by_code in (True, False)
}
_CHECKINS = cast(sa.Table, CheckIn.__table__)
_ATTEMPTS = cast(sa.Table, ScanAttempt.__table__)
_BUCKETS = cast(sa.Table, RateLimitBucket.__table__)
_INSERT_CHECKIN = sa.insert(_CHECKINS)
_INSERT_ATTEMPT = sa.insert(_ATTEMPTS)
_INSERT_BUCKET = sa.insert(_BUCKETS)
_NOW = sa.bindparam("now", type_=_BUCKETS.c.window_started_at.type)
_EXPIRED = _BUCKETS.c.window_started_at <= sa.bindparam(
    "window_start", type_=_BUCKETS.c.window_started_at.type
)
#: The scan's counters, locked in the order of their keys (PostgreSQL; SQLite has one writer at a time):
#: an UPDATE of both at once locks them in whatever order it finds them, and two scans of the same
#: device would deadlock on the device's and the address's counters.
_LOCK_COUNTERS = (
    sa.select(_BUCKETS.c.id)
    .where(_BUCKETS.c.key.in_(sa.bindparam("keys", expanding=True)))
    .order_by(_BUCKETS.c.key)
    .with_for_update()
)
#: One hit on each of the scan's counters (fixed windows, as ``events_app.lib.ratelimit``), one statement.
_COUNT_HITS = (
    sa.update(_BUCKETS)
    .where(_BUCKETS.c.id.in_(_LOCK_COUNTERS.scalar_subquery()))
    .values(
        hits=sa.case((_EXPIRED, 1), else_=_BUCKETS.c.hits + 1),
        window_started_at=sa.case((_EXPIRED, _NOW), else_=_BUCKETS.c.window_started_at),
        updated_at=_NOW,
    )
    .returning(_BUCKETS.c.key, _BUCKETS.c.hits, _BUCKETS.c.window_started_at)
)


async def _record(
    connection: AsyncConnection, user_id: UUID, scan: Scan, verdict: Verdict, answer: ScanAnswer
) -> None:
    """Insert the check-in (for ``ok``) and the scan attempt.

    Raises IntegrityError when a concurrent scan won (another device checked the person in, or this
    nonce was recorded): the caller rolls back and decides again, seeing the winner.
    """
    now = datetime.now(UTC)
    person = verdict.person
    registration_id = person.id if person is not None else None
    if verdict.result is ScanResult.OK:
        await connection.execute(
            _INSERT_CHECKIN,
            {
                "id": uuid7(),
                "event_id": scan.event_id,
                "registration_id": registration_id,
                "device": scan.device,
                "staff_user_id": user_id,
                "scanned_at": scan.scanned_at,
                "nonce": scan.nonce,
                "created_at": now,
                "updated_at": now,
            },
        )
    await connection.execute(
        _INSERT_ATTEMPT,
        {
            "id": uuid7(),
            "event_id": scan.event_id,
            "registration_id": registration_id,
            "nonce": scan.nonce,
            "device": scan.device,
            "staff_user_id": user_id,
            "result": verdict.result.value,
            "scanned_at": scan.scanned_at,
            "answer": msgspec.to_builtins(answer),
            "created_at": now,
            "updated_at": now,
        },
    )


def _limits(user_id: UUID, device: str, ip: str) -> dict[str, int]:
    """The scan's counters (by key) and their limits: one per device, one per address."""
    device_key = hashlib.sha256(device.encode()).hexdigest()[:24]
    return {f"checkin:device:{user_id}:{device_key}": RATE_PER_DEVICE, f"checkin:ip:{ip}": RATE_PER_IP}


def _over_limit(
    counted: dict[str, tuple[int, datetime]], limits: dict[str, int], now: datetime
) -> RateLimited | None:
    retry_after = 0
    for key, (hits, started) in counted.items():
        if hits > limits[key]:
            retry_after = max(retry_after, max(1, math.ceil((started + RATE_WINDOW - now).total_seconds())))
    return RateLimited(retry_after) if retry_after else None


async def _count_scan(connection: AsyncConnection, user_id: UUID, device: str, ip: str) -> RateLimited | None:
    """One hit per device and per address; :class:`RateLimited` when either is over its limit.

    An UPDATE of both counters; a counter not there yet (the first scan of a device that day) is
    inserted, and two first scans at once make one of them lose a race and try again.
    """
    limits = _limits(user_id, device, ip)
    now = datetime.now(UTC)
    counted = {
        key: (hits, _aware(started))
        for key, hits, started in await connection.execute(
            _COUNT_HITS, {"keys": list(limits), "now": now, "window_start": now - RATE_WINDOW}
        )
    }
    new = [key for key in limits if key not in counted]
    if new:
        await connection.execute(
            _INSERT_BUCKET,
            [
                {
                    "id": uuid7(),
                    "key": key,
                    "window_started_at": now,
                    "hits": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for key in new
            ],
        )
    return _over_limit(counted, limits, now)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_PG_PARAM_TYPES: dict[str, Any] = {
    **dict.fromkeys(
        ("bucket_1", "bucket_2", "checkin_id", "attempt_id", "event_id", "user_id", "registration_id"),
        CheckIn.id.type,
    ),
    **dict.fromkeys(("now", "window_start", "scanned_at"), CheckIn.scanned_at.type),
    **dict.fromkeys(("limit_1", "limit_2"), sa.Integer()),
    **dict.fromkeys(("checks_in", "records"), sa.Boolean()),
    **dict.fromkeys(("key_1", "key_2", "device", "nonce", "result"), sa.String()),
    "answer": ScanAttempt.answer.type,
}
#: PostgreSQL: the scan's records and its two counters in one statement (data-modifying CTEs), run on
#: its own (autocommit), so a scan costs two round trips: the read and this. The counters are upserted in
#: the order of their keys (no deadlock between two scans of one device) and hold their row locks only
#: while this one statement runs; over a limit, only the hits are kept (the inserts read ``allowed``).
#: A text statement: SQLAlchemy compiles a PostgreSQL ``INSERT … ON CONFLICT`` anew on every execution.
_PG_RECORD_AND_COUNT = (
    sa.text(
        """
WITH counted AS (
    INSERT INTO rate_limit_buckets AS bucket (id, key, window_started_at, hits, created_at, updated_at)
    VALUES (:bucket_1, :key_1, :now, 1, :now, :now), (:bucket_2, :key_2, :now, 1, :now, :now)
    ON CONFLICT (key) DO UPDATE SET
        hits = CASE WHEN bucket.window_started_at <= :window_start THEN 1 ELSE bucket.hits + 1 END,
        window_started_at = CASE
            WHEN bucket.window_started_at <= :window_start THEN :now ELSE bucket.window_started_at
        END,
        updated_at = :now
    RETURNING bucket.key, bucket.hits, bucket.window_started_at
), allowed AS (
    SELECT NOT EXISTS (
        SELECT FROM counted
        WHERE counted.hits > CASE WHEN counted.key = :key_1 THEN :limit_1 ELSE :limit_2 END
    ) AS ok
), checkin AS (
    INSERT INTO checkins (
        id, event_id, registration_id, device, staff_user_id, scanned_at, nonce, created_at, updated_at
    )
    SELECT :checkin_id, :event_id, :registration_id, :device, :user_id, :scanned_at, :nonce, :now, :now
    FROM allowed WHERE allowed.ok AND :checks_in
), attempt AS (
    INSERT INTO scan_attempts (
        id, event_id, registration_id, nonce, device, staff_user_id, result, scanned_at, answer,
        created_at, updated_at
    )
    SELECT :attempt_id, :event_id, :registration_id, :nonce, :device, :user_id, :result, :scanned_at,
        :answer, :now, :now
    FROM allowed WHERE allowed.ok AND :records
)
SELECT key, hits, window_started_at FROM counted
"""
    )
    .bindparams(*(sa.bindparam(name, type_=type_) for name, type_ in _PG_PARAM_TYPES.items()))
    .columns(
        _BUCKETS.c.key,
        _BUCKETS.c.hits,
        _BUCKETS.c.window_started_at,
    )
)
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


async def _record_and_count_pg(
    connection: AsyncConnection,
    user_id: UUID,
    scan: Scan,
    decided: tuple[Verdict, ScanAnswer] | None,
    ip: str,
) -> RateLimited | None:
    """PostgreSQL: record a decided scan (``decided``; None for a replay, which is only counted) and count
    its hits, in one statement. Raises IntegrityError when a concurrent scan won, keeping nothing."""
    limits = _limits(user_id, scan.device, ip)
    (key_1, limit_1), (key_2, limit_2) = sorted(limits.items())
    now = datetime.now(UTC)
    verdict, answer = decided if decided is not None else (Verdict(ScanResult.INVALID), None)
    person = verdict.person
    params = {
        "bucket_1": uuid7(),
        "bucket_2": uuid7(),
        "key_1": key_1,
        "key_2": key_2,
        "limit_1": limit_1,
        "limit_2": limit_2,
        "now": now,
        "window_start": now - RATE_WINDOW,
        "checks_in": decided is not None and verdict.result is ScanResult.OK,
        "records": decided is not None,
        "checkin_id": uuid7(),
        "attempt_id": uuid7(),
        "event_id": scan.event_id,
        "registration_id": person.id if person is not None else None,
        "device": scan.device,
        "user_id": user_id,
        "scanned_at": scan.scanned_at,
        "nonce": scan.nonce,
        "result": verdict.result.value,
        "answer": msgspec.to_builtins(answer) if answer is not None else None,
    }
    rows = await connection.execute(_PG_RECORD_AND_COUNT, params)
    counted = {key: (hits, _aware(started)) for key, hits, started in rows}
    return _over_limit(counted, limits, now)


async def _scan_once(
    session: AsyncSession, caller: Caller, scan: Scan, ip: str
) -> ScanAnswer | RateLimited | Refusal:
    # PostgreSQL: every statement on its own (no BEGIN, no COMMIT round trips); the writes are one
    # statement (see _PG_RECORD_AND_COUNT). A session already in a transaction keeps it.
    one_write = session.bind.dialect.name == "postgresql"
    if one_write and not session.in_transaction():
        connection = await session.connection(execution_options=_AUTOCOMMIT)
    else:
        connection = await session.connection()
    by_code = scan.code is not None
    params: dict[str, Any] = {**caller.params, "event_id": scan.event_id, "nonce": scan.nonce}
    if scan.code is not None:
        params["ticket_hash"] = hash_token(scan.code) if looks_like_token(scan.code) else ""
    else:
        params["registration_id"] = scan.registration_id
    row = (await connection.execute(_SCAN_READS[caller.kind, by_code], params)).one_or_none()
    if row is None:
        return Refusal.NOT_LOGGED_IN
    if row.zone is None or not checks_in_at(row.role, bool(row.assigned)):
        return Refusal.NOT_HERE
    if row.token_id is not None:
        await note_api_token_use(session, row.token_id, row.last_used_at)
    outcome: ScanAnswer | Refusal
    decided: tuple[Verdict, ScanAnswer] | None = None
    if row.replay_event_id is not None:  # the same scan again: the first answer
        same_event = row.replay_event_id == scan.event_id
        outcome = msgspec.convert(row.replay_answer, ScanAnswer) if same_event else Refusal.NONCE_REUSED
    else:
        verdict = Verdict(ScanResult.INVALID)
        if row.id is not None:
            live = row.live_scanned_at
            existing = LiveCheckIn(live, row.live_device) if live is not None else None
            person = Person(*row[: len(_PERSON_COLUMNS)])
            verdict = _verdict(scan.event_id, by_code, person, existing)
        outcome = answer_for(verdict, scan, row.zone)
        decided = (verdict, outcome)
    if one_write:
        limited = await _record_and_count_pg(connection, row.user_id, scan, decided, ip)
        await session.commit()  # nothing to send in autocommit; ends a transaction the session had
        return limited or outcome
    if decided is not None:
        await _record(connection, row.user_id, scan, *decided)
    # Counted last, so the counters' rows stay locked only until the commit that follows.
    limited = await _count_scan(connection, row.user_id, scan.device, ip)
    if limited is not None:
        # Over the limit: nothing of this scan is kept but the hits, counted again on their own.
        await session.rollback()
        await _count_scan(await session.connection(), row.user_id, scan.device, ip)
        await session.commit()
        return limited
    await session.commit()
    return outcome


async def scan_as(
    session: AsyncSession, caller: Caller, scan: Scan, ip: str
) -> ScanAnswer | RateLimited | Refusal:
    """Decide on a scan and record it, in one transaction; commits. The same nonce again gets the first
    answer. Every scan (whatever its result) is a :class:`ScanAttempt` and counts against the per-device
    and per-address limits; a refused caller (401, 404) counts nothing.
    """
    async with write_turn(session):
        tries = 0
        while True:
            try:
                outcome = await _scan_once(session, caller, scan, ip)
            except IntegrityError:
                await session.rollback()
                tries += 1
                if tries >= MAX_TRIES:
                    raise
                continue  # lost a race: decide again, seeing the winner
            except BaseException:
                await session.rollback()
                raise
            if outcome in (Refusal.NOT_LOGGED_IN, Refusal.NOT_HERE):
                await session.rollback()
            return outcome


async def caller_is_known(session: AsyncSession, caller: Caller) -> bool:
    """Whether ``caller`` is a logged-in user (a malformed scan answers 401 before 422)."""
    async with write_turn(session):
        found = (await session.execute(CALLERS[caller.kind], caller.params)).first() is not None
        await session.rollback()
    return found


async def undo(
    session: AsyncSession,
    principal: Principal,
    event: Event,
    registration_id: UUID | None,
    nonce: str | None,
) -> UndoOut | None:
    """Undo the live check-in of a registration (or of the scan ``nonce``); None when there is none."""
    now = datetime.now(UTC)
    which = (
        CheckIn.registration_id == registration_id if registration_id is not None else CheckIn.nonce == nonce
    )
    row = (
        await session.execute(
            sa.update(CheckIn)
            .where(CheckIn.event_id == event.id, CheckIn.undone_at.is_(None), which)
            .values(undone_at=now, undone_by_id=principal.user_id, updated_at=now)
            .returning(CheckIn.id, CheckIn.registration_id, CheckIn.device, CheckIn.scanned_at)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if row is None:
        await session.rollback()
        return None
    name = await session.scalar(
        sa.select(Registration.full_name).where(Registration.id == row.registration_id)
    )
    record(
        session,
        principal,
        "checkin_undone",
        "registration",
        row.registration_id,
        event.id,
        checkin_id=str(row.id),
        device=row.device,
        scanned_at=row.scanned_at.isoformat(),
    )
    await session.commit()
    return UndoOut(
        result="undone",
        registration_id=str(row.registration_id),
        name=name or "",
        message=undo_message(name or ""),
    )


# --- what scanners read -----------------------------------------------------------------------------


def _live_for(event_id: UUID) -> Any:
    return (
        sa.select(CheckIn.registration_id, CheckIn.scanned_at, CheckIn.device)
        .where(CheckIn.event_id == event_id, CheckIn.undone_at.is_(None))
        .subquery("live")
    )


async def manifest(session: AsyncSession, principal: Principal, event: Event) -> ManifestOut:
    """Every registration of the event for offline decisions; the download is audited. Commits."""
    live = _live_for(event.id)
    statement = (
        sa.select(
            Registration.ticket_hash,
            Registration.id,
            Registration.status,
            Registration.full_name,
            Registration.institution,
            Registration.country,
            live.c.scanned_at,
            live.c.device,
        )
        .outerjoin(live, live.c.registration_id == Registration.id)
        .where(Registration.event_id == event.id, Registration.anonymised_at.is_(None))
        .order_by(Registration.full_name, Registration.id)
    )
    entries = [
        ManifestEntry(
            ticket_hash=row.ticket_hash,
            registration_id=str(row.id),
            status=row.status.value,
            name=row.full_name,
            institution=row.institution,
            country=row.country,
            checked_in=row.scanned_at is not None,
            checked_in_at=row.scanned_at.isoformat() if row.scanned_at is not None else None,
            checked_in_device=row.device,
        )
        for row in await session.execute(statement)
    ]
    expected = sum(1 for entry in entries if entry.status == RegistrationStatus.CONFIRMED.value)
    record(
        session, principal, "checkin_manifest_downloaded", "event", event.id, event.id, tickets=len(entries)
    )
    await session.commit()
    return ManifestOut(
        event_id=str(event.id), generated_at=datetime.now(UTC).isoformat(), expected=expected, tickets=entries
    )


async def stats(session: AsyncSession, event_id: UUID) -> StatsOut:
    checked_in = await session.scalar(
        sa.select(sa.func.count())
        .select_from(CheckIn)
        .where(CheckIn.event_id == event_id, CheckIn.undone_at.is_(None))
    )
    expected = await session.scalar(
        sa.select(sa.func.count())
        .select_from(Registration)
        .where(Registration.event_id == event_id, Registration.status == RegistrationStatus.CONFIRMED)
    )
    return StatsOut(checked_in=int(checked_in or 0), expected=int(expected or 0))


async def search(session: AsyncSession, event_id: UUID, terms: str) -> list[SearchHit]:
    """Registrations of the event whose name or email contains ``terms`` (at most 20)."""
    if not terms:
        return []
    escaped = terms.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    live = _live_for(event_id)
    statement = (
        sa.select(*_PERSON_COLUMNS, live.c.scanned_at)
        .outerjoin(live, live.c.registration_id == Registration.id)
        .where(
            Registration.event_id == event_id,
            Registration.anonymised_at.is_(None),
            sa.or_(
                Registration.full_name.ilike(pattern, escape="\\"),
                Registration.email_normalized.ilike(pattern, escape="\\"),
            ),
        )
        .order_by(Registration.full_name, Registration.id)
        .limit(SEARCH_LIMIT)
    )
    return [
        SearchHit(
            registration_id=str(row.id),
            name=row.full_name,
            institution=row.institution,
            country=row.country,
            status=row.status.value,
            checked_in=row.scanned_at is not None,
        )
        for row in await session.execute(statement)
    ]


# --- re-issuing a ticket ----------------------------------------------------------------------------


async def decidable_registration(
    session: AsyncSession, principal: Principal, registration_id: UUID
) -> Registration | None:
    registration = await session.get(Registration, registration_id)
    if registration is None or not principal.can_decide(registration):
        return None
    return registration


async def reissue_ticket(
    session: AsyncSession, tokens: TokenSettings, principal: Principal, registration: Registration
) -> bool:
    """A new ticket code for a confirmed registration (the old one then matches nothing), mailed. Commits.

    False when the registration is not confirmed: only confirmed people have a ticket.
    """
    version = await session.scalar(
        sa.update(Registration)
        .where(Registration.id == registration.id, Registration.status == RegistrationStatus.CONFIRMED)
        .values(ticket_version=Registration.ticket_version + 1)
        .returning(Registration.ticket_version)
        .execution_options(synchronize_session=False)
    )
    if version is None:
        await session.rollback()
        return False
    code = derive_token(tokens.secret_key, TokenPurpose.TICKET, registration.id, version)
    await session.execute(
        sa.update(Registration)
        .where(Registration.id == registration.id)
        .values(ticket_hash=hash_token(code))
        .execution_options(synchronize_session=False)
    )
    await session.refresh(registration)
    queue_registration_mail(session, tokens, registration, MailKind.CONFIRMED, reason="reissued")
    record(
        session,
        principal,
        "ticket_reissued",
        "registration",
        registration.id,
        registration.event_id,
        ticket_version=version,
    )
    await session.commit()
    return True
