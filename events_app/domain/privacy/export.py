"""What we hold about one registrant, as the JSON they download from their personal page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.db.models import (
    Certificate,
    CheckIn,
    JoinClick,
    OnlineAttendance,
    OutboxMessage,
    Registration,
    RegistrationChange,
)
from events_app.domain.audit.services import record
from events_app.domain.privacy.notices import notice_version
from events_app.lib.outbox import Composer


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


async def record_export(session: AsyncSession, registration: Registration) -> None:
    """The audit entry of a participant's "download my data"; commits."""
    record(
        session,
        None,
        "registration_data_exported",
        "registration",
        registration.id,
        registration.event_id,
        by="participant",
    )
    await session.commit()
