"""What the attendance pages and the CSV export are given: labels, numbers as shown, rows."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from events_app.db.models import AttendanceImport, Event, RegistrationStatus, Sector
from events_app.domain.accounts.permissions import Principal
from events_app.domain.attendance import services
from events_app.domain.attendance.schemas import FORMAT_CHOICES
from events_app.domain.attendance.services import AttendanceCounts, AttendanceLine, ExportRow, Overview
from events_app.domain.registrations.schemas import SECTOR_LABELS
from events_app.domain.registrations.views import status_label
from events_app.lib.countries import country_name
from events_app.lib.i18n import N_, current_language, format_datetime_in_zone, gettext, ngettext

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
UTF8_BOM = "\ufeff"
#: A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_HEADERS = (
    N_("Full name"),
    N_("Email"),
    N_("Country"),
    N_("Sector"),
    N_("Status"),
    N_("Checked in at"),
    N_("Minutes online"),
    N_("Attended online"),
    N_("Attended"),
)
SOURCE_LABELS = {"zoom": N_("Zoom"), "teams": N_("Microsoft Teams")}
NOTICES = {
    "imported": N_("The report was imported."),
    "duplicate": N_("This file was already imported: nothing changed."),
    "matched": N_("The row was matched to the registrant."),
    "threshold": N_("The attendance threshold was saved."),
    "revoked": N_("The certificate was revoked."),
}


def minutes_text(minutes: float | None) -> str:
    return "" if minutes is None else f"{minutes:.2f}"


def event_header(event: Event) -> dict[str, Any]:
    return {"id": str(event.id), "title": event.text("title", current_language())}


def notice_text(code: str | None) -> str | None:
    return gettext(NOTICES[code]) if code in NOTICES else None


# --- the import page ------------------------------------------------------------------------------


@dataclass
class ImportPageState:
    """What the import page re-shows: typed values and the errors of the form that was sent."""

    values: dict[str, str]
    error_for: dict[str, str] = field(default_factory=dict)
    match_errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None
    match_q: str = ""
    threshold_value: str | None = None


def _line(line: AttendanceLine) -> dict[str, Any]:
    return {
        "id": str(line.id),
        "display_name": line.display_name,
        "email": line.email or "",
        "minutes": minutes_text(line.minutes),
        "attended": line.attended,
        "registrant_name": line.registrant_name or "",
        "registrant_email": line.registrant_email or "",
        "matched_by": line.matched_by,
    }


def _import_row(batch: AttendanceImport, zone: str) -> dict[str, Any]:
    summary = batch.summary or {}
    return {
        "filename": batch.filename,
        "source": gettext(SOURCE_LABELS.get(batch.source, batch.source)),
        "imported_at": format_datetime_in_zone(batch.created_at, zone, "medium"),
        "timezone": batch.timezone,
        "people": summary.get("people", 0),
        "matched": summary.get("matched", 0),
        "unmatched": summary.get("unmatched", 0),
        "warnings": summary.get("warnings", []),
    }


async def import_context(
    session: AsyncSession, principal: Principal, event: Event, state: ImportPageState
) -> dict[str, Any]:
    lines = await services.attendance_lines(session, event)
    matched = [_line(line) for line in lines if line.registration_id is not None]
    unmatched = [
        _line(line)
        for line in lines
        if line.registration_id is None and line.matched_by != services.MATCHED_BY_STAFF
    ]
    staff = [_line(line) for line in lines if line.matched_by == services.MATCHED_BY_STAFF]
    choices = await services.match_choices(session, event.id, state.match_q)
    base = f"/manage/events/{event.id}/attendance"
    return {
        "principal": principal,
        "event": event_header(event),
        "values": state.values,
        "error_for": state.error_for,
        "match_errors": state.match_errors,
        "notice": state.notice,
        "formats": [(code, gettext(label)) for code, label in FORMAT_CHOICES],
        "imports": [
            _import_row(batch, event.timezone) for batch in await services.imports_of(session, event.id)
        ],
        "matched": matched,
        "attended_count": sum(1 for line in matched if line["attended"]),
        "unmatched": unmatched,
        "staff": staff,
        "choices": [(str(id_), f"{name} <{email}>") for id_, name, email in choices],
        "match_q": state.match_q,
        "threshold": _threshold(event, state.threshold_value),
        "import_url": f"{base}/import",
        "threshold_url": f"{base}/threshold",
        "overview_url": base,
        "certificates_url": f"/manage/events/{event.id}/certificates",
    }


def _threshold(event: Event, typed: str | None) -> dict[str, Any]:
    return {
        "value": typed if typed is not None else str(event.attendance_threshold_percent),
        "percent": event.attendance_threshold_percent,
        "required": minutes_text(services.required_minutes(event)),
        "scheduled": minutes_text(services.scheduled_minutes(event)),
    }


# --- the overview ---------------------------------------------------------------------------------


def _counts(counts: AttendanceCounts, label: str) -> dict[str, Any]:
    return {
        "label": label,
        "registered": counts.registered,
        "confirmed": counts.confirmed,
        "checked_in": counts.checked_in,
        "joined_online": counts.joined_online,
        "attended_online": counts.attended_online,
        "no_shows": counts.no_shows,
    }


def overview_context(principal: Principal, event: Event, overview: Overview) -> dict[str, Any]:
    language = current_language()
    base = f"/manage/events/{event.id}/attendance"
    return {
        "principal": principal,
        "event": event_header(event),
        "manages": principal.manages(event.id),
        "totals": _counts(overview.totals, gettext("All")),
        "by_country": [_counts(row, country_name(row.key, language)) for row in overview.by_country],
        "by_sector": [_counts(row, gettext(SECTOR_LABELS[Sector(row.key)])) for row in overview.by_sector],
        "threshold": _threshold(event, None),
        "csv_url": f"/manage/events/{event.id}/attendance.csv",
        "import_url": f"{base}/import",
        "certificates_url": f"/manage/events/{event.id}/certificates",
    }


# --- certificates ---------------------------------------------------------------------------------


async def certificates_context(
    session: AsyncSession, principal: Principal, event: Event, ended: bool, notice: str | None
) -> dict[str, Any]:
    lines = await services.certificate_lines(session, event.id)
    return {
        "principal": principal,
        "event": event_header(event),
        "ended": ended,
        "notice": notice,
        "error": None,
        "qualifying": await services.qualifying_count(session, event) if ended else 0,
        "certificates": [
            {
                "id": str(line.id),
                "full_name": line.full_name,
                "email": line.email,
                "basis": services.basis_label(line.basis),
                "issued_at": format_datetime_in_zone(line.issued_at, event.timezone, "medium"),
                "revoked": line.revoked_at is not None,
                "mailed": line.mailed,
            }
            for line in lines
        ],
        "send_url": f"/manage/events/{event.id}/certificates/send",
        "overview_url": f"/manage/events/{event.id}/attendance",
    }


def sent_notice(queued: int) -> str:
    return ngettext(
        "%(num)d certificate email was queued.", "%(num)d certificate emails were queued.", queued
    ) % {"num": queued}


# --- the CSV export -------------------------------------------------------------------------------


def neutralise(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_TRIGGERS) else value


@dataclass(frozen=True, slots=True)
class ExportLabels:
    """Every label of the export in the request's language (the stream runs after the request)."""

    language: str
    zone: str
    required: float
    headers: tuple[str, ...]
    statuses: dict[RegistrationStatus, str]
    sectors: dict[Sector, str]
    yes: str
    no: str

    @classmethod
    def for_event(cls, event: Event) -> ExportLabels:
        return cls(
            language=current_language(),
            zone=event.timezone,
            required=services.required_minutes(event),
            headers=tuple(gettext(header) for header in EXPORT_HEADERS),
            statuses={status: status_label(status) for status in RegistrationStatus},
            sectors={sector: gettext(label) for sector, label in SECTOR_LABELS.items()},
            yes=gettext("yes"),
            no=gettext("no"),
        )

    def _time(self, instant: datetime | None) -> str:
        return (
            "" if instant is None else instant.astimezone(ZoneInfo(self.zone)).isoformat(timespec="seconds")
        )

    def cells(self, row: ExportRow) -> list[str]:
        online = row.minutes is not None and row.minutes >= self.required - services.EPSILON
        values = (
            row.full_name,
            row.email,
            country_name(row.country, self.language),
            self.sectors[row.sector],
            self.statuses[row.status],
            self._time(row.checked_in_at),
            minutes_text(row.minutes),
            self.yes if online else self.no,
            self.yes if online or row.checked_in_at is not None else self.no,
        )
        return [neutralise(value) for value in values]


def _csv_lines(rows: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8")


async def csv_stream(chunks: AsyncIterator[list[ExportRow]], labels: ExportLabels) -> AsyncIterator[bytes]:
    """UTF-8 with a BOM (so Excel reads the accents), a header line, then one piece per chunk."""
    yield UTF8_BOM.encode("utf-8") + _csv_lines([list(labels.headers)])
    async for rows in chunks:
        yield _csv_lines(labels.cells(row) for row in rows)


def export_filename(event: Event, now: datetime) -> str:
    return f"attendance-{event.slug}-{now:%Y%m%d-%H%M}.csv"
