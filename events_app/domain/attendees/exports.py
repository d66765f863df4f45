"""How attendee rows read: localised labels for pages and exports, and the streamed CSV and XLSX files.

Both files are produced from chunks of rows (see ``services.iter_chunks``), so memory stays bounded
however long the list: CSV is sent chunk by chunk; XLSX rows go through openpyxl's write-only
workbook into a temporary file that is then streamed and deleted.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import anyio

from events_app.db.models import Event, RegistrationStatus, Sector
from events_app.domain.attendees.services import AttendeeRow
from events_app.domain.registrations.schemas import SECTOR_LABELS
from events_app.domain.registrations.views import status_label
from events_app.lib.countries import country_name
from events_app.lib.i18n import LANGUAGE_NAMES, N_, current_language, format_datetime_in_zone, gettext

if TYPE_CHECKING:
    from openpyxl import Workbook
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UTF8_BOM = "\ufeff"
FILE_CHUNK_BYTES = 64 * 1024
#: A spreadsheet treats a cell starting with one of these as a formula (CSV/formula injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

COLUMN_HEADERS = (
    N_("Full name"),
    N_("Email"),
    N_("Country"),
    N_("Institution"),
    N_("Position"),
    N_("Sector"),
    N_("Language"),
    N_("Status"),
    N_("Registered at"),
    N_("Event starts"),
    N_("Event ends"),
)
SHEET_TITLE = N_("Attendees")


def neutralise(value: str) -> str:
    """Prefix a cell a spreadsheet would run as a formula with ``'``, so it stays text."""
    return f"'{value}" if value.startswith(FORMULA_TRIGGERS) else value


@dataclass(frozen=True, slots=True)
class RowLabels:
    """Every label of a row in one language, taken once per request (the stream runs after it)."""

    language: str
    zone: str
    headers: tuple[str, ...]
    statuses: dict[RegistrationStatus, str]
    sectors: dict[Sector, str]
    sheet_title: str
    tzinfo: ZoneInfo
    #: The event's start and end, ISO 8601 in its zone: the same on every row, so a file says when.
    event_times: tuple[str, str] = ("", "")
    _countries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_event(cls, event: Event) -> RowLabels:
        """Labels in the request's language, times in the event's zone."""
        return cls(
            language=current_language(),
            zone=event.timezone,
            headers=tuple(gettext(header) for header in COLUMN_HEADERS),
            statuses={status: status_label(status) for status in RegistrationStatus},
            sectors={sector: gettext(label) for sector, label in SECTOR_LABELS.items()},
            sheet_title=gettext(SHEET_TITLE)[:31],
            tzinfo=ZoneInfo(event.timezone),
            event_times=(
                event.starts_at.astimezone(ZoneInfo(event.timezone)).isoformat(timespec="seconds"),
                event.ends_at.astimezone(ZoneInfo(event.timezone)).isoformat(timespec="seconds"),
            ),
        )

    def country(self, code: str) -> str:
        if code not in self._countries:
            self._countries[code] = country_name(code, self.language)
        return self._countries[code]

    def iso_time(self, instant: datetime) -> str:
        """ISO 8601 in the event's zone, with its offset."""
        return instant.astimezone(self.tzinfo).isoformat(timespec="seconds")

    def local_text(self, instant: datetime) -> str:
        """For pages: "14 abr 2027, 10:00" in the event's zone (in the request's language)."""
        return format_datetime_in_zone(instant, self.zone, "medium")

    def cells(self, row: AttendeeRow) -> list[str]:
        """One exported line, safe to open in a spreadsheet."""
        values = (
            row.full_name,
            row.email,
            self.country(row.country),
            row.institution,
            row.position,
            self.sectors[row.sector],
            LANGUAGE_NAMES.get(row.language, row.language),
            self.statuses[row.status],
            self.iso_time(row.created_at),
            *self.event_times,
        )
        return [neutralise(value) for value in values]

    def present(self, row: AttendeeRow) -> dict[str, str]:
        """One line of the HTML list (the template escapes; no formula guard needed)."""
        return {
            "id": str(row.id),
            "full_name": row.full_name,
            "email": row.email,
            "country": self.country(row.country),
            "institution": row.institution,
            "sector": self.sectors[row.sector],
            "language": LANGUAGE_NAMES.get(row.language, row.language),
            "status": row.status.value,
            "status_label": self.statuses[row.status],
            "registered_iso": self.iso_time(row.created_at),
            "registered_text": self.local_text(row.created_at),
        }


def export_filename(event: Event, extension: str, now: datetime) -> str:
    """A plain ASCII name: it goes into a header (``Content-Disposition``) unquoted by anything else."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", event.slug)[:80] or "event"
    return f"attendees-{slug}-{now:%Y%m%d-%H%M}.{extension}"


# --- CSV ------------------------------------------------------------------------------------------


def _csv_lines(rows: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8")


async def csv_stream(chunks: AsyncIterator[list[AttendeeRow]], labels: RowLabels) -> AsyncIterator[bytes]:
    """UTF-8 with a BOM (so Excel reads the accents), a header line, then one piece per chunk."""
    yield UTF8_BOM.encode("utf-8") + _csv_lines([list(labels.headers)])
    async for rows in chunks:
        yield _csv_lines(labels.cells(row) for row in rows)


# --- XLSX -----------------------------------------------------------------------------------------


def _append_rows(sheet: WriteOnlyWorksheet, rows: list[list[str]]) -> None:
    for row in rows:
        sheet.append(row)


def _save(workbook: Workbook) -> Path:
    with tempfile.NamedTemporaryFile(prefix="attendees-", suffix=".xlsx", delete=False) as handle:
        path = Path(handle.name)
    workbook.save(path)
    return path


async def xlsx_stream(chunks: AsyncIterator[list[AttendeeRow]], labels: RowLabels) -> AsyncIterator[bytes]:
    """Rows go to openpyxl (in a thread: it is CPU work) as they are read; the file follows."""
    from openpyxl import Workbook  # here, not at the top: ~6 MB a web process would hold for nothing

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=labels.sheet_title)
    sheet.append(list(labels.headers))
    async for rows in chunks:
        await asyncio.to_thread(_append_rows, sheet, [labels.cells(row) for row in rows])
    path = await asyncio.to_thread(_save, workbook)
    try:
        async with await anyio.open_file(path, "rb") as handle:
            while piece := await handle.read(FILE_CHUNK_BYTES):
                yield piece
    finally:
        await anyio.Path(path).unlink(missing_ok=True)
