"""Who came: personal join links, imported Zoom/Teams reports, door check-ins, and certificates.

A person *attended online* when their minutes in the meeting (the union of every connection, over every
imported report of the event) reach ``attendance_threshold_percent`` of the event's scheduled duration.
A person *qualifies for a certificate* once the event has ended, with a live door check-in or with
online attendance. Each registration has at most one ``OnlineAttendance`` row: a later report, or a row
matched by hand, is merged into it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from babel.numbers import format_decimal
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from uuid_utils.compat import uuid7

from events_app.db.models import (
    ACTIVE_REGISTRATION_STATUSES,
    AttendanceImport,
    Certificate,
    CheckIn,
    Event,
    EventStatus,
    JoinClick,
    OnlineAttendance,
    OutboxMessage,
    Registration,
    RegistrationStatus,
    Sector,
)
from events_app.domain.accounts.permissions import Principal
from events_app.domain.attendance.certificates import CertificateTexts, render_certificate
from events_app.domain.attendance.schemas import ReportUpload
from events_app.domain.audit.services import record
from events_app.domain.registrations.services import MailKind, TokenSettings, queue_registration_mail
from events_app.lib.attendance_reports import AttendanceReport, PersonAttendance, parse_report
from events_app.lib.i18n import babel_locale, force_locale, format_date_in_zone, gettext, ngettext
from events_app.lib.mail import Attachment
from events_app.lib.security import TokenPurpose, derive_token, hash_token, looks_like_token
from events_app.settings import Settings

#: Float minutes compared with a threshold: forgive the last bits of rounding.
EPSILON = 1e-9
EXPORT_CHUNK_ROWS = 1000
MATCH_CHOICES_LIMIT = 100

MATCHED_BY_EMAIL = "email"
MATCHED_BY_HAND = "manual"
MATCHED_BY_STAFF = "staff"
UNMATCHED = "none"

Interval = tuple[datetime, datetime]


class Basis(StrEnum):
    """Why a certificate was issued."""

    IN_PERSON = "in_person"
    ONLINE = "online"
    BOTH = "in_person_online"


# --- the event's clock ----------------------------------------------------------------------------


def scheduled_minutes(event: Event) -> float:
    return (event.ends_at - event.starts_at).total_seconds() / 60


def required_minutes(event: Event) -> float:
    """Minutes an online participant needs to count as attended."""
    return event.attendance_threshold_percent * scheduled_minutes(event) / 100


def attended_online(event: Event, minutes: float | None) -> bool:
    return minutes is not None and minutes >= required_minutes(event) - EPSILON


def local_start_date(event: Event) -> date:
    return event.starts_at.astimezone(ZoneInfo(event.timezone)).date()


def has_ended(event: Event, now: datetime) -> bool:
    return event.ends_at <= now


# --- scope ----------------------------------------------------------------------------------------


async def managed_event(session: AsyncSession, principal: Principal, event_id: UUID) -> Event | None:
    """The event when the principal manages it (imports, thresholds, certificates), else None."""
    if not principal.manages(event_id):
        return None
    return await session.get(Event, event_id, populate_existing=True)


async def visible_event(session: AsyncSession, principal: Principal, event_id: UUID) -> Event | None:
    """The event when the principal may see its attendance (focal points: their countries' rows)."""
    if not principal.sees_event(event_id):
        return None
    return await session.get(Event, event_id, populate_existing=True)


# --- personal join links --------------------------------------------------------------------------


async def follow_join_link(session: AsyncSession, token: str) -> str | None:
    """The meeting URL for a confirmed registrant's join token, recording the click; else None."""
    if not looks_like_token(token):
        return None
    statement = sa.select(Registration).where(Registration.join_token_hash == hash_token(token))
    registration = (await session.execute(statement)).unique().scalar_one_or_none()
    if registration is None or registration.status is not RegistrationStatus.CONFIRMED:
        return None
    event = registration.event
    if not event.kind.is_online or not event.join_url or event.status is EventStatus.CANCELLED:
        return None
    session.add(JoinClick(id=uuid7(), registration_id=registration.id, event_id=event.id))
    await session.commit()
    return event.join_url


# --- intervals ------------------------------------------------------------------------------------


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of ``intervals`` as sorted, disjoint intervals (touching ones are joined)."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def minutes_of(intervals: Sequence[Interval]) -> float:
    return sum((end - start).total_seconds() for start, end in intervals) / 60


def _from_json(segments: Sequence[Sequence[str]]) -> list[Interval]:
    return [(datetime.fromisoformat(start), datetime.fromisoformat(end)) for start, end in segments]


def _to_json(intervals: Sequence[Interval]) -> list[list[str]]:
    return [[start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()] for start, end in intervals]


def _add_segments(row: OnlineAttendance, person: PersonAttendance) -> None:
    merged = merge_intervals(
        [*_from_json(row.segments or []), *((seg.join, seg.leave) for seg in person.segments)]
    )
    row.segments = _to_json(merged)
    row.minutes = minutes_of(merged)


# --- importing a report ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    import_id: UUID | None
    duplicate: bool
    people: int = 0
    matched: int = 0
    unmatched: int = 0
    staff: int = 0


@dataclass
class _Ledger:
    """The event's attendance rows, indexed while one report is merged into them."""

    by_identity: dict[str, OnlineAttendance]
    by_registration: dict[UUID, OnlineAttendance]

    def add(self, row: OnlineAttendance) -> None:
        self.by_identity[row.identity] = row
        if row.registration_id is not None:
            self.by_registration[row.registration_id] = row


def content_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


async def import_report(
    session: AsyncSession, principal: Principal, event: Event, upload: ReportUpload
) -> ImportResult:
    """Parse ``upload`` and merge it into the event's attendance; commits. Raises ``ReportError``.

    The same bytes imported again change nothing (``duplicate``). Two imports of one event are
    serialised on the event row, so merges never overwrite each other.
    """
    digest, event_id = content_sha256(upload.raw), event.id
    if await _import_id(session, event_id, digest) is not None:
        return ImportResult(import_id=None, duplicate=True)
    report = parse_report(upload.raw, upload.zone, event_date=local_start_date(event), fmt=upload.fmt)
    try:
        return await _store(session, principal, event, upload, digest, report)
    except IntegrityError:
        await session.rollback()  # the same file raced itself: the other upload stored it
        if await _import_id(session, event_id, digest) is not None:
            return ImportResult(import_id=None, duplicate=True)
        raise


async def _import_id(session: AsyncSession, event_id: UUID, digest: str) -> UUID | None:
    statement = sa.select(AttendanceImport.id).where(
        AttendanceImport.event_id == event_id, AttendanceImport.content_sha256 == digest
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def _store(
    session: AsyncSession,
    principal: Principal,
    event: Event,
    upload: ReportUpload,
    digest: str,
    report: AttendanceReport,
) -> ImportResult:
    await session.execute(sa.select(Event.id).where(Event.id == event.id).with_for_update())
    batch = AttendanceImport(
        id=uuid7(),
        event_id=event.id,
        source=report.format.value,
        filename=upload.filename[:255],
        content_sha256=digest,
        timezone=upload.zone,
        uploaded_by_id=principal.user_id,
        summary={},
    )
    session.add(batch)
    await session.flush()
    ledger = await _ledger(session, event.id)
    registrations = await _registrations_by_email(session, event.id, _emails(report.people))
    matched = unmatched = 0
    for number, person in enumerate(report.people, 1):
        row = _merge_person(session, ledger, registrations, event.id, batch.id, number, person)
        matched, unmatched = (matched + 1, unmatched) if row.registration_id else (matched, unmatched + 1)
    for number, person in enumerate(report.staff, 1):
        _merge_staff(session, ledger, event.id, batch.id, number, person)
    result = ImportResult(batch.id, False, len(report.people), matched, unmatched, len(report.staff))
    batch.summary = _summary(report, result)
    record(
        session,
        principal,
        "attendance_imported",
        "attendance_import",
        batch.id,
        event_id=event.id,
        filename=batch.filename,
        sha256=digest,
        **batch.summary,
    )
    await session.commit()
    return result


def _summary(report: AttendanceReport, result: ImportResult) -> dict[str, Any]:
    return {
        "format": report.format.value,
        "people": result.people,
        "matched": result.matched,
        "unmatched": result.unmatched,
        "staff": result.staff,
        "warnings": list(report.warnings),
    }


def _emails(people: Iterable[PersonAttendance]) -> set[str]:
    return {identity_of(person.email) for person in people if person.email}


def identity_of(email: str) -> str:
    return email.strip().lower()


async def _ledger(session: AsyncSession, event_id: UUID) -> _Ledger:
    statement = sa.select(OnlineAttendance).where(OnlineAttendance.event_id == event_id)
    ledger = _Ledger({}, {})
    for row in (await session.execute(statement)).scalars():
        ledger.add(row)
    return ledger


def _preference(registration: Registration) -> tuple[bool, bool, datetime]:
    """Confirmed first, then other active registrations, then the newest."""
    return (
        registration.status is RegistrationStatus.CONFIRMED,
        registration.status in ACTIVE_REGISTRATION_STATUSES,
        registration.created_at,
    )


async def _registrations_by_email(
    session: AsyncSession, event_id: UUID, emails: set[str]
) -> dict[str, Registration]:
    if not emails:
        return {}
    statement = sa.select(Registration).where(
        Registration.event_id == event_id, Registration.email_normalized.in_(sorted(emails))
    )
    found: dict[str, Registration] = {}
    for registration in (await session.execute(statement)).unique().scalars():
        key = registration.email_normalized
        if key not in found or _preference(registration) > _preference(found[key]):
            found[key] = registration
    return found


def _merge_person(
    session: AsyncSession,
    ledger: _Ledger,
    registrations: dict[str, Registration],
    event_id: UUID,
    import_id: UUID,
    number: int,
    person: PersonAttendance,
) -> OnlineAttendance:
    """Add one person of a report to their row (found by email, then by registration), or a new row."""
    identity = identity_of(person.email) if person.email else f"row:{import_id}:{number}"
    registration = registrations.get(identity)
    row = ledger.by_identity.get(identity)
    if row is None and registration is not None:
        row = ledger.by_registration.get(registration.id)
    if row is None:
        row = _new_row(event_id, import_id, identity, person)
        session.add(row)
    if row.registration_id is None and registration is not None:
        row.registration_id, row.matched_by = registration.id, MATCHED_BY_EMAIL
    _add_segments(row, person)
    row.import_id = import_id
    ledger.add(row)
    return row


def _merge_staff(
    session: AsyncSession,
    ledger: _Ledger,
    event_id: UUID,
    import_id: UUID,
    number: int,
    person: PersonAttendance,
) -> None:
    """Hosts and panelists are kept apart (``matched_by="staff"``): they are not registrants."""
    identity = f"staff:{identity_of(person.email)}" if person.email else f"staff-row:{import_id}:{number}"
    row = ledger.by_identity.get(identity)
    if row is None:
        row = _new_row(event_id, import_id, identity, person, matched_by=MATCHED_BY_STAFF)
        session.add(row)
    _add_segments(row, person)
    ledger.add(row)


def _new_row(
    event_id: UUID, import_id: UUID, identity: str, person: PersonAttendance, matched_by: str = UNMATCHED
) -> OnlineAttendance:
    return OnlineAttendance(
        id=uuid7(),
        event_id=event_id,
        identity=identity[:320],
        email=person.email.strip()[:320] if person.email else None,
        display_name=person.display_name[:300],
        registration_id=None,
        segments=[],
        minutes=0.0,
        matched_by=matched_by,
        import_id=import_id,
    )


# --- matching by hand and the threshold -----------------------------------------------------------


class MatchOutcome(StrEnum):
    MATCHED = "matched"
    NO_ROW = "no_row"
    NO_REGISTRATION = "no_registration"


async def match_by_hand(
    session: AsyncSession, principal: Principal, event: Event, attendance_id: UUID, registration_id: UUID
) -> MatchOutcome:
    """Give an unmatched row to a registrant of the event (merged into their row if they have one)."""
    row = await session.get(OnlineAttendance, attendance_id, populate_existing=True)
    if row is None or row.event_id != event.id or row.registration_id is not None:
        return MatchOutcome.NO_ROW
    if row.matched_by == MATCHED_BY_STAFF:
        return MatchOutcome.NO_ROW
    registration = await session.get(Registration, registration_id)
    if registration is None or registration.event_id != event.id:
        return MatchOutcome.NO_REGISTRATION
    record(
        session,
        principal,
        "attendance_matched",
        "online_attendance",
        row.id,
        event_id=event.id,
        registration_id=str(registration.id),
        display_name=row.display_name,
        minutes=round(row.minutes, 2),
    )
    existing = await _row_of_registration(session, registration.id)
    if existing is None:
        row.registration_id, row.matched_by = registration.id, MATCHED_BY_HAND
    else:
        merged = merge_intervals([*_from_json(existing.segments), *_from_json(row.segments)])
        existing.segments, existing.minutes = _to_json(merged), minutes_of(merged)
        await session.delete(row)
    await session.commit()
    return MatchOutcome.MATCHED


async def _row_of_registration(session: AsyncSession, registration_id: UUID) -> OnlineAttendance | None:
    statement = sa.select(OnlineAttendance).where(OnlineAttendance.registration_id == registration_id)
    return (await session.execute(statement.limit(1))).scalars().first()


async def set_threshold(session: AsyncSession, principal: Principal, event: Event, percent: int) -> None:
    record(
        session,
        principal,
        "attendance_threshold_changed",
        "event",
        event.id,
        event_id=event.id,
        before=event.attendance_threshold_percent,
        after=percent,
    )
    event.attendance_threshold_percent = percent
    await session.commit()


# --- what the import page lists -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttendanceLine:
    id: UUID
    display_name: str
    email: str | None
    minutes: float
    attended: bool
    matched_by: str
    registration_id: UUID | None
    registrant_name: str | None
    registrant_email: str | None


async def attendance_lines(session: AsyncSession, event: Event) -> list[AttendanceLine]:
    statement = (
        sa.select(OnlineAttendance, Registration.full_name, Registration.email)
        .outerjoin(Registration, Registration.id == OnlineAttendance.registration_id)
        .where(OnlineAttendance.event_id == event.id)
        .order_by(OnlineAttendance.display_name, OnlineAttendance.id)
    )
    return [
        AttendanceLine(
            id=row.id,
            display_name=row.display_name,
            email=row.email,
            minutes=row.minutes,
            attended=attended_online(event, row.minutes),
            matched_by=row.matched_by,
            registration_id=row.registration_id,
            registrant_name=name,
            registrant_email=email,
        )
        for row, name, email in (await session.execute(statement)).unique()
    ]


async def imports_of(session: AsyncSession, event_id: UUID) -> Sequence[AttendanceImport]:
    statement = (
        sa.select(AttendanceImport)
        .where(AttendanceImport.event_id == event_id)
        .order_by(AttendanceImport.created_at, AttendanceImport.id)
    )
    return (await session.execute(statement)).scalars().all()


async def match_choices(session: AsyncSession, event_id: UUID, search: str) -> list[tuple[UUID, str, str]]:
    """Registrants to match a row to: (id, name, email), narrowed by a name or email search."""
    statement = sa.select(Registration.id, Registration.full_name, Registration.email).where(
        Registration.event_id == event_id
    )
    if search:
        statement = statement.where(
            sa.or_(
                Registration.full_name.icontains(search, autoescape=True),
                Registration.email.icontains(search, autoescape=True),
            )
        )
    statement = statement.order_by(Registration.full_name, Registration.id).limit(MATCH_CHOICES_LIMIT)
    return [(row.id, row.full_name, row.email) for row in await session.execute(statement)]


# --- the overview ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttendanceCounts:
    key: str
    registered: int
    confirmed: int
    checked_in: int
    joined_online: int
    attended_online: int
    no_shows: int


@dataclass(frozen=True, slots=True)
class Overview:
    totals: AttendanceCounts
    by_country: list[AttendanceCounts]
    by_sector: list[AttendanceCounts]
    required_minutes: float


def _live_checkin() -> ColumnElement[bool]:
    return sa.exists().where(CheckIn.registration_id == Registration.id, CheckIn.undone_at.is_(None))


def _attended_online(event: Event) -> ColumnElement[bool]:
    return sa.exists().where(
        OnlineAttendance.registration_id == Registration.id,
        OnlineAttendance.minutes >= required_minutes(event) - EPSILON,
    )


def _joined_online() -> ColumnElement[bool]:
    return sa.or_(
        sa.exists().where(JoinClick.registration_id == Registration.id),
        sa.exists().where(OnlineAttendance.registration_id == Registration.id, OnlineAttendance.minutes > 0),
    )


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _count_columns(event: Event) -> list[ColumnElement[int]]:
    confirmed = Registration.status == RegistrationStatus.CONFIRMED
    checked_in, attended = _live_checkin(), _attended_online(event)
    return [
        sa.func.count(Registration.id),
        _count_if(confirmed),
        _count_if(checked_in),
        _count_if(_joined_online()),
        _count_if(attended),
        _count_if(sa.and_(confirmed, sa.not_(checked_in), sa.not_(attended))),
    ]


async def _grouped(
    session: AsyncSession, principal: Principal, event: Event, column: Any | None
) -> list[AttendanceCounts]:
    key = column if column is not None else sa.literal("")
    statement = sa.select(key, *_count_columns(event)).where(
        Registration.event_id == event.id, principal.registrations_filter()
    )
    if column is not None:
        statement = statement.group_by(column).order_by(column)
    rows = await session.execute(statement)
    return [AttendanceCounts(str(getattr(k, "value", k)), *(int(n) for n in rest)) for k, *rest in rows]


async def overview(session: AsyncSession, principal: Principal, event: Event) -> Overview:
    [totals] = await _grouped(session, principal, event, None)
    return Overview(
        totals=totals,
        by_country=await _grouped(session, principal, event, Registration.country),
        by_sector=await _grouped(session, principal, event, Registration.sector),
        required_minutes=required_minutes(event),
    )


# --- the export -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportRow:
    id: UUID
    full_name: str
    email: str
    country: str
    sector: Sector
    status: RegistrationStatus
    checked_in_at: datetime | None
    minutes: float | None


def _export_statement(principal: Principal, event_id: UUID) -> sa.Select[Any]:
    checked_in_at = (
        sa.select(CheckIn.scanned_at)
        .where(CheckIn.registration_id == Registration.id, CheckIn.undone_at.is_(None))
        .limit(1)
        .scalar_subquery()
    )
    minutes = (
        sa.select(sa.func.max(OnlineAttendance.minutes))
        .where(OnlineAttendance.registration_id == Registration.id)
        .scalar_subquery()
    )
    return sa.select(
        Registration.id,
        Registration.full_name,
        Registration.email,
        Registration.country,
        Registration.sector,
        Registration.status,
        checked_in_at,
        minutes,
    ).where(Registration.event_id == event_id, principal.registrations_filter())


async def count_export(session: AsyncSession, principal: Principal, event_id: UUID) -> int:
    statement = (
        sa.select(sa.func.count())
        .select_from(Registration)
        .where(Registration.event_id == event_id, principal.registrations_filter())
    )
    return int((await session.execute(statement)).scalar_one())


async def iter_export(
    engine: AsyncEngine, principal: Principal, event_id: UUID, size: int = EXPORT_CHUNK_ROWS
) -> AsyncIterator[list[ExportRow]]:
    """Every registrant in scope, ``size`` per query, each query in its own short transaction."""
    after: UUID | None = None
    while True:
        statement = _export_statement(principal, event_id)
        if after is not None:
            statement = statement.where(Registration.id > after)
        async with AsyncSession(engine) as session:
            result = await session.execute(statement.order_by(Registration.id).limit(size))
            rows = [ExportRow(*row) for row in result]
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1].id


def record_export(session: AsyncSession, principal: Principal, event: Event, rows: int) -> None:
    record(
        session,
        principal,
        "attendance_exported",
        "event",
        event.id,
        event_id=event.id,
        format="csv",
        rows=rows,
    )


# --- certificates ---------------------------------------------------------------------------------


async def qualification(session: AsyncSession, registration: Registration, now: datetime) -> Basis | None:
    """Why the person gets a certificate, or None (the event has not ended, or they did not attend)."""
    event = registration.event
    if not has_ended(event, now):
        return None
    statement = sa.select(_live_checkin(), _attended_online(event)).where(Registration.id == registration.id)
    door, online = (await session.execute(statement)).one()
    return _basis(bool(door), bool(online))


def _basis(door: bool, online: bool) -> Basis | None:
    if door and online:
        return Basis.BOTH
    if door:
        return Basis.IN_PERSON
    return Basis.ONLINE if online else None


async def certificate_of(session: AsyncSession, registration_id: UUID) -> Certificate | None:
    statement = sa.select(Certificate).where(Certificate.registration_id == registration_id)
    return (await session.execute(statement)).scalar_one_or_none()


def certificate_code(secret_key: str, certificate: Certificate) -> str:
    return derive_token(
        secret_key, TokenPurpose.CERTIFICATE, certificate.registration_id, certificate.code_version
    )


def verify_url(settings: Settings, certificate: Certificate) -> str:
    return f"{settings.base_url}/certificates/{certificate_code(settings.secret_key, certificate)}"


def _new_certificate(secret_key: str, registration: Registration, basis: Basis, now: datetime) -> Certificate:
    certificate = Certificate(
        id=uuid7(), registration_id=registration.id, code_version=1, basis=basis.value, issued_at=now
    )
    certificate.code_hash = hash_token(certificate_code(secret_key, certificate))
    return certificate


async def issue(
    session: AsyncSession, secret_key: str, registration: Registration, basis: Basis, now: datetime
) -> Certificate:
    """The person's certificate, created on first use; commits."""
    existing = await certificate_of(session, registration.id)
    if existing is not None:
        return existing
    certificate = _new_certificate(secret_key, registration, basis, now)
    session.add(certificate)
    try:
        await session.commit()
    except IntegrityError:  # a second download raced this one: use the row it wrote
        await session.rollback()
        raced = await certificate_of(session, registration.id)
        if raced is None:
            raise
        return raced
    return certificate


async def certificate_available(session: AsyncSession, registration: Registration, now: datetime) -> bool:
    """Whether "my registration" offers the download: the person qualifies and was not revoked."""
    if await qualification(session, registration, now) is None:
        return False
    certificate = await certificate_of(session, registration.id)
    return certificate is None or certificate.revoked_at is None


async def my_certificate_pdf(
    session: AsyncSession, settings: Settings, registration: Registration, now: datetime
) -> bytes | None:
    """The PDF for a person who qualifies (issuing the certificate the first time), else None."""
    basis = await qualification(session, registration, now)
    if basis is None:
        return None
    certificate = await issue(session, settings.secret_key, registration, basis, now)
    if certificate.revoked_at is not None:
        return None
    with force_locale(registration.language):
        texts = certificate_texts(settings, registration, certificate)
    return await asyncio.to_thread(render_certificate, texts)


def _hours_text(event: Event) -> str:
    hours = scheduled_minutes(event) / 60
    number = format_decimal(round(hours, 2), format="#,##0.##", locale=babel_locale())
    return ngettext("Duration: %(hours)s hour", "Duration: %(hours)s hours", 1 if hours == 1 else 2) % {
        "hours": number
    }


def basis_label(basis: str) -> str:
    if basis == Basis.IN_PERSON:
        return gettext("Attended in person")
    if basis == Basis.ONLINE:
        return gettext("Attended online")
    return gettext("Attended in person and online")


def event_date_text(event: Event) -> str:
    start = format_date_in_zone(event.starts_at, event.timezone, "long")
    end = format_date_in_zone(event.ends_at, event.timezone, "long")
    return start if start == end else f"{start} – {end}"


def certificate_texts(
    settings: Settings, registration: Registration, certificate: Certificate
) -> CertificateTexts:
    """What the certificate says, in the current language (wrap in ``force_locale``)."""
    event = registration.event
    language = registration.language
    return CertificateTexts(
        language=language,
        programme=settings.programme_name,
        heading=gettext("Certificate of attendance"),
        intro=gettext("This is to certify that"),
        name=registration.full_name,
        attended=gettext("attended"),
        title=event.text("title", language),
        date_line=gettext("Date: %(date)s") % {"date": event_date_text(event)},
        duration_line=_hours_text(event),
        basis_line=basis_label(certificate.basis),
        verify_line=gettext("Check that this certificate is genuine at this address or with the QR code:"),
        verify_url=verify_url(settings, certificate),
    )


@dataclass(frozen=True, slots=True)
class VerifiedCertificate:
    name: str
    title: str
    date_text: str


async def verify(session: AsyncSession, code: str, language: str) -> VerifiedCertificate | None:
    """The public facts of a valid certificate; None for an unknown, forged or revoked code."""
    if not looks_like_token(code):
        return None
    statement = (
        sa.select(Certificate, Registration)
        .join(Registration, Registration.id == Certificate.registration_id)
        .where(Certificate.code_hash == hash_token(code), Certificate.revoked_at.is_(None))
    )
    found = (await session.execute(statement)).unique().one_or_none()
    if found is None:
        return None
    _, registration = found
    event = registration.event
    return VerifiedCertificate(
        name=registration.full_name, title=event.text("title", language), date_text=event_date_text(event)
    )


MailHook = Callable[[AsyncSession, OutboxMessage, Registration], Awaitable[dict[str, Any]]]


def certificate_mail_hook(settings: Settings) -> MailHook:
    """Composer hook for ``MailKind.CERTIFICATE``: the PDF as an attachment and its verification link."""

    async def hook(
        session: AsyncSession, message: OutboxMessage, registration: Registration
    ) -> dict[str, Any]:
        certificate = await certificate_of(session, registration.id)
        if certificate is None or certificate.revoked_at is not None:
            raise LookupError(f"registration {registration.id} has no valid certificate")
        texts = certificate_texts(settings, registration, certificate)
        pdf = await asyncio.to_thread(render_certificate, texts)
        return {
            "verify_url": texts.verify_url,
            "attachments": [Attachment("certificate.pdf", pdf, "application", "pdf")],
        }

    return hook


# --- certificates, for organisers -----------------------------------------------------------------


def _qualifies(event: Event) -> ColumnElement[bool]:
    return sa.or_(_live_checkin(), _attended_online(event))


def _mailed() -> ColumnElement[bool]:
    return sa.exists().where(
        OutboxMessage.registration_id == Registration.id, OutboxMessage.kind == MailKind.CERTIFICATE.value
    )


async def send_certificates(
    session: AsyncSession, principal: Principal, event: Event, tokens: TokenSettings, now: datetime
) -> int | None:
    """Queue one certificate email to everyone who qualifies and has none yet; None before the end."""
    if not has_ended(event, now):
        return None
    await session.execute(sa.select(Event.id).where(Event.id == event.id).with_for_update())
    revoked = sa.exists().where(
        Certificate.registration_id == Registration.id, Certificate.revoked_at.is_not(None)
    )
    statement = sa.select(Registration, _live_checkin(), _attended_online(event)).where(
        Registration.event_id == event.id, _qualifies(event), sa.not_(_mailed()), sa.not_(revoked)
    )
    recipients = (await session.execute(statement.order_by(Registration.id))).unique().all()
    certificates = await _certificates_by_registration(session, [row[0].id for row in recipients])
    for registration, door, online in recipients:
        if registration.id not in certificates:
            basis = _basis(bool(door), bool(online)) or Basis.ONLINE
            session.add(_new_certificate(tokens.secret_key, registration, basis, now))
        queue_registration_mail(
            session, tokens, registration, MailKind.CERTIFICATE, dedupe_key=f"certificate:{registration.id}"
        )
    record(
        session, principal, "certificates_sent", "event", event.id, event_id=event.id, queued=len(recipients)
    )
    await session.commit()
    return len(recipients)


async def _certificates_by_registration(
    session: AsyncSession, registration_ids: Sequence[UUID]
) -> dict[UUID, Certificate]:
    if not registration_ids:
        return {}
    statement = sa.select(Certificate).where(Certificate.registration_id.in_(registration_ids))
    return {row.registration_id: row for row in (await session.execute(statement)).scalars()}


@dataclass(frozen=True, slots=True)
class CertificateLine:
    id: UUID
    full_name: str
    email: str
    basis: str
    issued_at: datetime
    revoked_at: datetime | None
    mailed: bool


async def certificate_lines(session: AsyncSession, event_id: UUID) -> list[CertificateLine]:
    statement = (
        sa.select(
            Certificate.id,
            Registration.full_name,
            Registration.email,
            Certificate.basis,
            Certificate.issued_at,
            Certificate.revoked_at,
            _mailed(),
        )
        .join(Registration, Registration.id == Certificate.registration_id)
        .where(Registration.event_id == event_id)
        .order_by(Registration.full_name, Certificate.id)
    )
    return [CertificateLine(*row) for row in await session.execute(statement)]


async def qualifying_count(session: AsyncSession, event: Event) -> int:
    statement = sa.select(sa.func.count(Registration.id)).where(
        Registration.event_id == event.id, _qualifies(event)
    )
    return int((await session.execute(statement)).scalar_one())


async def revoke(
    session: AsyncSession, principal: Principal, certificate_id: UUID, now: datetime
) -> UUID | None:
    """Revoke a certificate of an event the principal manages; the event's id, or None (answer 404)."""
    statement = (
        sa.select(Certificate, Registration.event_id)
        .join(Registration, Registration.id == Certificate.registration_id)
        .where(Certificate.id == certificate_id)
    )
    found = (await session.execute(statement)).one_or_none()
    if found is None or not principal.manages(found[1]):
        return None
    certificate, event_id = found
    event_id = UUID(str(event_id))
    if certificate.revoked_at is None:
        certificate.revoked_at = now
        record(
            session,
            principal,
            "certificate_revoked",
            "certificate",
            certificate.id,
            event_id=event_id,
            registration_id=str(certificate.registration_id),
        )
        await session.commit()
    return event_id
