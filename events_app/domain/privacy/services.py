"""Personal data: what we hold about one registrant (export), forgetting it (erasure), and retention.

Erasure on request and the retention job use one anonymiser (:func:`anonymise`): the registration row
stays with its event, status, country, sector, language and times, so counts and statistics by country
stay right; everything that names or reaches the person is blanked, in the registration and wherever it
was copied (outbox, status history, audit entries, online attendance, scan answers), and their links
(ticket, join, certificate) stop working. The personal link then shows "this registration's data was
erased".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.db.models import (
    AttendanceImport,
    AuditEntry,
    Certificate,
    CheckIn,
    Event,
    JoinClick,
    OnlineAttendance,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationChange,
    ScanAttempt,
)
from events_app.domain.accounts.permissions import Principal
from events_app.domain.audit.services import record
from events_app.domain.privacy.notices import notice_version
from events_app.domain.registrations.services import RegistrationService
from events_app.lib.outbox import Composer, PeriodicJob
from events_app.lib.security import hash_token, new_random_token
from events_app.settings import Settings

#: What an erased name reads as in organiser lists (a neutral mark, not a word to translate).
ERASED_NAME = "—"
#: Keys of audit details and scan answers that hold a person's data.
PERSONAL_KEYS = frozenset(
    {"display_name", "email", "full_name", "name", "note", "recipient", "institution", "position", "query"}
)
ERASED_VALUE = "[erased]"
#: Shorter names or emails are not looked for in free text (they would match unrelated words).
MIN_NEEDLE = 5
UNSENT = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.FAILED)
#: Registrations anonymised per transaction by the retention job.
RETENTION_BATCH = 200


class Reason:
    REQUEST = "participant_request"
    RETENTION = "retention"


# --- export -------------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def export_data(
    session: AsyncSession, registration: Registration, composer: Composer, base_url: str, now: datetime
) -> dict[str, Any]:
    """Everything we hold about the person behind ``registration``, as JSON-ready data."""
    event = registration.event
    rid = registration.id
    notice = notice_version(registration.privacy_notice_version)
    return {
        "exported_at": now.isoformat(),
        "registration": {
            "id": str(rid),
            "event": {
                "slug": event.slug,
                "title": event.text("title", registration.language),
                "starts_at": _iso(event.starts_at),
                "ends_at": _iso(event.ends_at),
            },
            "full_name": registration.full_name,
            "email": registration.email,
            "country": registration.country,
            "institution": registration.institution,
            "position": registration.position,
            "sector": registration.sector.value,
            "language": registration.language,
            "status": registration.status.value,
            "registered_at": _iso(registration.created_at),
            "updated_at": _iso(registration.updated_at),
            "waitlisted_at": _iso(registration.waitlisted_at),
            "cancelled_at": _iso(registration.cancelled_at),
        },
        "privacy": {
            "notice_version": registration.privacy_notice_version,
            "notice_url": f"{base_url}/privacy/{notice.version}" if notice else None,
            "accepted_at": _iso(registration.consent_given_at),
        },
        "status_history": [
            {
                "at": _iso(change.created_at),
                "from": change.from_status.value if change.from_status else None,
                "to": change.to_status.value,
                "note": change.note,
            }
            for change in await _rows(session, RegistrationChange, RegistrationChange.registration_id == rid)
        ],
        "check_ins": [
            {"scanned_at": _iso(row.scanned_at), "device": row.device, "undone_at": _iso(row.undone_at)}
            for row in await _rows(session, CheckIn, CheckIn.registration_id == rid)
        ],
        "join_clicks": [
            {"at": _iso(row.created_at)}
            for row in await _rows(session, JoinClick, JoinClick.registration_id == rid)
        ],
        "online_attendance": [
            {
                "display_name": row.display_name,
                "email": row.email,
                "minutes": round(row.minutes, 2),
                "segments": row.segments,
            }
            for row in await _rows(session, OnlineAttendance, OnlineAttendance.registration_id == rid)
        ],
        "certificates": [
            {"issued_at": _iso(row.issued_at), "basis": row.basis, "revoked_at": _iso(row.revoked_at)}
            for row in await _rows(session, Certificate, Certificate.registration_id == rid)
        ],
        "emails": [
            {
                "kind": row.kind,
                "subject": await _subject(session, composer, row),
                "status": row.status.value,
                "queued_at": _iso(row.created_at),
                "sent_at": _iso(row.sent_at),
                "attempts": row.attempts,
            }
            for row in await _rows(session, OutboxMessage, OutboxMessage.registration_id == rid)
        ],
    }


async def _rows(session: AsyncSession, model: Any, condition: Any) -> Sequence[Any]:
    statement = sa.select(model).where(condition).order_by(model.created_at, model.id)
    return (await session.execute(statement)).scalars().all()


async def _subject(session: AsyncSession, composer: Composer, message: OutboxMessage) -> str | None:
    """The subject as the mail was (or would be) built; None when it cannot be built any more."""
    try:
        built: EmailMessage = await composer(session, message)
    except Exception:  # a kind that no longer applies (e.g. a mass message after cancelling)
        return None
    subject = built["Subject"]
    return str(subject) if subject is not None else None


# --- the anonymiser -----------------------------------------------------------------------------------


def _scrub(value: Any, needles: Sequence[str], about_person: bool) -> Any:
    """``value`` with any string naming the person replaced; when the whole record is about the person
    (``about_person``), personal keys (name, email, note...) are blanked whatever they hold."""
    if isinstance(value, dict):
        return {
            key: ERASED_VALUE
            if about_person and key in PERSONAL_KEYS and item
            else _scrub(item, needles, about_person)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub(item, needles, about_person) for item in value]
    if isinstance(value, str) and any(needle in value.casefold() for needle in needles):
        return ERASED_VALUE
    return value


def _scrub_text(value: str | None, needles: Sequence[str]) -> str | None:
    if value is None:
        return None
    return ERASED_VALUE if any(needle in value.casefold() for needle in needles) else value


def _replace(row: Any, attribute: str, value: Any) -> None:
    """Assign only when it changes (a JSON column rewritten for nothing still costs an UPDATE)."""
    if getattr(row, attribute) != value:
        setattr(row, attribute, value)


async def anonymise(session: AsyncSession, registration: Registration, now: datetime) -> bool:
    """Blank the person's data everywhere, in the caller's transaction; False if it was already done."""
    if registration.anonymised_at is not None:
        return False
    rid = registration.id
    # What would name the person in free text (a report warning, an audit detail, an SMTP error).
    needles = [
        needle.casefold()
        for needle in {registration.email, registration.email_normalized, registration.full_name}
        if len(needle.strip()) >= MIN_NEEDLE
    ]
    old_identity = registration.email_normalized
    registration.full_name = ERASED_NAME
    registration.email = ""
    registration.email_normalized = f"erased:{rid}"
    registration.institution = ""
    registration.position = ""
    # Links: the ticket and join link stop working; the manage link only says the data was erased.
    registration.ticket_version += 1
    registration.ticket_hash = hash_token(new_random_token())
    registration.join_token_hash = None
    registration.anonymised_at = now

    for message in await _rows(session, OutboxMessage, OutboxMessage.registration_id == rid):
        message.recipient = ""
        message.payload = {}
        message.last_error = _scrub_text(message.last_error, needles)
        if message.status in UNSENT:
            message.status = OutboxStatus.SKIPPED
            message.locked_until = None
    await session.execute(
        sa.update(RegistrationChange)
        .where(RegistrationChange.registration_id == rid)
        .values(note="")
        .execution_options(synchronize_session=False)
    )
    # Online attendance: the matched row, and rows of the event's reports that carry their email or name.
    for row in await _rows(session, OnlineAttendance, OnlineAttendance.event_id == registration.event_id):
        if (
            row.registration_id == rid
            or row.identity == old_identity
            or _scrub_text(row.display_name, needles) != row.display_name
            or _scrub_text(row.email, needles) != row.email
        ):
            row.identity, row.email, row.display_name = f"erased:{row.id}", None, ""
    for batch in await _rows(session, AttendanceImport, AttendanceImport.event_id == registration.event_id):
        _replace(batch, "summary", _scrub(batch.summary, needles, about_person=False))
    for scan in await _rows(session, ScanAttempt, ScanAttempt.registration_id == rid):
        _replace(scan, "answer", _scrub(scan.answer, needles, about_person=True))
    for certificate in await _rows(session, Certificate, Certificate.registration_id == rid):
        certificate.code_hash = hash_token(new_random_token())
        certificate.revoked_at = certificate.revoked_at or now
    # Audit entries about the person lose their personal keys; any other entry of the event (or naming
    # their email) loses the strings that name them.
    about = [AuditEntry.object_id == str(rid), sa.cast(AuditEntry.details, sa.Text).contains(str(rid))]
    mentions = [*about, AuditEntry.event_id == registration.event_id]
    if registration_email := next((needle for needle in needles if "@" in needle), None):
        mentions.append(sa.func.lower(sa.cast(AuditEntry.details, sa.Text)).contains(registration_email))
    for entry in await _rows(session, AuditEntry, sa.or_(*mentions)):
        about_person = entry.object_id == str(rid) or str(rid) in str(entry.details)
        _replace(entry, "details", _scrub(entry.details, needles, about_person))
    await session.flush()
    return True


# --- erasure on request -------------------------------------------------------------------------------


async def erase(
    service: RegistrationService, registration: Registration, now: datetime | None = None
) -> None:
    """The person's "erase my data": cancel if still active (the seat goes to the waiting list, through
    the usual verb), then anonymise, with an audit entry that names nobody. Commits."""
    moment = now or datetime.now(UTC)
    if registration.is_active:
        await service.cancel(registration, moment)
    session = service.session
    await session.refresh(registration)
    if await anonymise(session, registration, moment):
        record(
            session,
            None,
            "registration_erased",
            "registration",
            registration.id,
            registration.event_id,
            reason=Reason.REQUEST,
        )
    await session.commit()


async def is_erased_link(service: RegistrationService, token: str) -> bool:
    """Whether ``token`` was the personal link of a registration whose data was erased."""
    return await service.erased_by_manage_token(token)


# --- retention ----------------------------------------------------------------------------------------


def purge_date(event: Event, retention_days: int) -> datetime:
    """When the personal data of the event's registrations is anonymised."""
    return event.ends_at + timedelta(days=retention_days)


async def anonymise_expired(session: AsyncSession, retention_days: int, now: datetime | None = None) -> int:
    """Anonymise every registration whose event ended ``retention_days`` ago or more; commits per batch.

    Idempotent (anonymised rows are skipped) and safe with several workers (rows are claimed with
    ``SKIP LOCKED`` on PostgreSQL; SQLite has one writer). Returns how many were anonymised.
    """
    moment = now or datetime.now(UTC)
    cutoff = moment - timedelta(days=retention_days)
    total = 0
    while True:
        statement = (
            sa.select(Registration)
            .join(Event, Event.id == Registration.event_id)
            .where(Registration.anonymised_at.is_(None), Event.ends_at <= cutoff)
            .order_by(Registration.id)
            .limit(RETENTION_BATCH)
            .with_for_update(skip_locked=True, of=Registration)
        )
        batch = (await session.execute(statement)).unique().scalars().all()
        per_event: dict[UUID, int] = {}
        for registration in batch:
            if await anonymise(session, registration, moment):
                per_event[registration.event_id] = per_event.get(registration.event_id, 0) + 1
        for event_id, count in per_event.items():
            record(
                session,
                None,
                "registrations_anonymised",
                "event",
                event_id,
                event_id,
                reason=Reason.RETENTION,
                count=count,
            )
        await session.commit()
        total += len(batch)
        if len(batch) < RETENTION_BATCH:
            return total


def retention_job(settings: Settings) -> PeriodicJob:
    """The periodic job the outbox workers run (see ``make_worker``). It writes no outbox rows."""

    async def job(session: AsyncSession) -> int:
        await anonymise_expired(session, settings.retention_days)
        return 0

    return job


# --- what organisers see ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PurgeLine:
    event: Event
    registrations: int
    purge_at: datetime


async def upcoming_purges(
    session: AsyncSession, principal: Principal, retention_days: int, event_id: UUID | None = None
) -> list[PurgeLine]:
    """Per event the principal sees: how many registrations (of their scope) still hold personal data,
    and when the retention job anonymises them; soonest first."""
    statement = (
        sa.select(Registration.event_id, sa.func.count(Registration.id))
        .where(Registration.anonymised_at.is_(None), principal.registrations_filter())
        .group_by(Registration.event_id)
    )
    if event_id is not None:
        statement = statement.where(Registration.event_id == event_id)
    counts = {UUID(str(eid)): int(count) for eid, count in await session.execute(statement)}
    if not counts:
        return []
    events = (
        (await session.execute(sa.select(Event).where(Event.id.in_(counts), principal.events_filter())))
        .scalars()
        .all()
    )
    lines = [PurgeLine(event, counts[event.id], purge_date(event, retention_days)) for event in events]
    return sorted(lines, key=lambda line: (line.purge_at, str(line.event.id)))
