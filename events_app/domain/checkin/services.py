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
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from uuid_utils.compat import uuid7

from events_app.db.models import CheckIn, Event, Registration, RegistrationStatus, Role, ScanAttempt
from events_app.domain.accounts.permissions import Principal
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
from events_app.lib.ratelimit import hit
from events_app.lib.security import TokenPurpose, derive_token, hash_token, looks_like_token

RATE_PER_DEVICE = 600
RATE_PER_IP = 3000
RATE_WINDOW = timedelta(minutes=1)
#: A scan that lost a race (unique index or nonce) is decided again, seeing the winner.
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


class NonceReused(Exception):
    """The nonce was already used for a scan at another event."""


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


async def allow_scan(session: AsyncSession, principal: Principal, device: str, ip: str) -> bool:
    """Count one scan per device and per address; commits at once so the counters lock nothing long."""
    device_key = hashlib.sha256(device.encode()).hexdigest()[:24]
    allowed = await hit(
        session, f"checkin:device:{principal.user_id}:{device_key}", RATE_PER_DEVICE, RATE_WINDOW
    )
    allowed &= await hit(session, f"checkin:ip:{ip}", RATE_PER_IP, RATE_WINDOW)
    await session.commit()
    return allowed


# --- deciding ---------------------------------------------------------------------------------------


async def _find_person(
    session: AsyncSession, code: str | None, registration_id: UUID | None
) -> tuple[Person, LiveCheckIn | None] | None:
    """The registration behind a code (or id), with its live check-in: one query."""
    if code is not None:
        if not looks_like_token(code):
            return None
        condition = Registration.ticket_hash == hash_token(code)
    else:
        condition = Registration.id == registration_id
    live = sa.and_(CheckIn.registration_id == Registration.id, CheckIn.undone_at.is_(None))
    statement = sa.select(*_PERSON_COLUMNS, CheckIn.scanned_at, CheckIn.device).outerjoin(CheckIn, live)
    row = (await session.execute(statement.where(condition))).one_or_none()
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
    person, existing = found
    if person.event_id != event_id:
        # A registration of another event chosen by hand is not revealed; a ticket says where it belongs.
        return Verdict(ScanResult.OTHER_EVENT if code is not None else ScanResult.INVALID, person)
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


async def _replay(session: AsyncSession, scan: Scan) -> ScanAnswer | None:
    row = (
        await session.execute(
            sa.select(ScanAttempt.event_id, ScanAttempt.answer).where(ScanAttempt.nonce == scan.nonce)
        )
    ).one_or_none()
    if row is None:
        return None
    if row.event_id != scan.event_id:
        raise NonceReused(scan.nonce)
    return msgspec.convert(row.answer, ScanAnswer)


async def _check_in_once(session: AsyncSession, principal: Principal, event: Event, scan: Scan) -> ScanAnswer:
    replayed = await _replay(session, scan)
    if replayed is not None:
        return replayed
    verdict = await lookup(session, event.id, code=scan.code, registration_id=scan.registration_id)
    answer = answer_for(verdict, scan, event.timezone)
    person = verdict.person
    # A savepoint: losing a race rolls back only these rows, and the next try reads the winner's.
    async with session.begin_nested():
        if verdict.result is ScanResult.OK and person is not None:
            session.add(
                CheckIn(
                    id=uuid7(),
                    event_id=event.id,
                    registration_id=person.id,
                    device=scan.device,
                    staff_user_id=principal.user_id,
                    scanned_at=scan.scanned_at,
                    nonce=scan.nonce,
                )
            )
        session.add(
            ScanAttempt(
                id=uuid7(),
                event_id=event.id,
                registration_id=person.id if person is not None else None,
                nonce=scan.nonce,
                device=scan.device,
                staff_user_id=principal.user_id,
                result=verdict.result.value,
                scanned_at=scan.scanned_at,
                answer=msgspec.to_builtins(answer),
            )
        )
    return answer


async def check_in(session: AsyncSession, principal: Principal, event: Event, scan: Scan) -> ScanAnswer:
    """Decide on a scan and record it; commits. The same nonce again gets the first answer back.

    Raises :class:`NonceReused` when the nonce belongs to a scan at another event.
    """
    tries = 0
    while True:
        try:
            answer = await _check_in_once(session, principal, event, scan)
        except IntegrityError:
            # Another device checked this person in (or this nonce was recorded) in the meantime.
            tries += 1
            if tries >= MAX_TRIES:
                raise
            continue
        await session.commit()
        return answer


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
