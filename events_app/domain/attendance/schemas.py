"""The attendance forms, checked: an uploaded report, the threshold, a registrant to match a row to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from events_app.lib.attendance_reports import ReportFormat
from events_app.lib.i18n import N_, gettext

#: Largest report accepted (real exports of a 1,000-person webinar are well under 1 MB).
MAX_REPORT_BYTES = 5 * 1024 * 1024
#: The request may be a little larger than the file: the other fields and the multipart framing.
MAX_UPLOAD_REQUEST_BYTES = MAX_REPORT_BYTES + 256 * 1024
FORMAT_CHOICES: tuple[tuple[str, str], ...] = (
    ("auto", N_("Recognise it from the file")),
    (ReportFormat.ZOOM.value, N_("Zoom webinar attendee report")),
    (ReportFormat.TEAMS.value, N_("Microsoft Teams attendance report")),
)
MIN_THRESHOLD, MAX_THRESHOLD = 1, 100

MSG_NO_FILE = N_("Choose the report file to upload.")
MSG_TOO_LARGE = N_("The file is too large: at most %(megabytes)d MB.")
MSG_BAD_ZONE = N_("Enter a time zone such as America/Bogota or Europe/Madrid.")
MSG_BAD_FORMAT = N_("Choose one of the formats offered.")
MSG_BAD_THRESHOLD = N_("Enter a whole number from 1 to 100.")
MSG_NO_REGISTRANT = N_("Choose a registrant of this event.")


class FormInvalid(Exception):
    """The form cannot be used as sent; ``errors`` maps field names to translated messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class ReportUpload:
    raw: bytes
    filename: str
    zone: str
    fmt: ReportFormat | None


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return value.strip() if isinstance(value, str) else ""


def valid_zone(name: str) -> bool:
    if not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def upload_values(values: Mapping[str, Any], default_zone: str) -> dict[str, str]:
    """What the form shows again: the zone and format as typed (the file cannot be kept)."""
    return {
        "timezone": _text(values, "timezone") or default_zone,
        "format": _text(values, "format") or "auto",
    }


def parse_upload(values: Mapping[str, Any], raw: bytes, filename: str) -> ReportUpload:
    errors: dict[str, str] = {}
    if not raw:
        errors["file"] = gettext(MSG_NO_FILE)
    elif len(raw) > MAX_REPORT_BYTES:
        errors["file"] = gettext(MSG_TOO_LARGE) % {"megabytes": MAX_REPORT_BYTES // (1024 * 1024)}
    zone = _text(values, "timezone")
    if not valid_zone(zone):
        errors["timezone"] = gettext(MSG_BAD_ZONE)
    chosen = _text(values, "format") or "auto"
    if chosen not in {code for code, _ in FORMAT_CHOICES}:
        errors["format"] = gettext(MSG_BAD_FORMAT)
    if errors:
        raise FormInvalid(errors)
    fmt = None if chosen == "auto" else ReportFormat(chosen)
    return ReportUpload(raw=raw, filename=filename, zone=zone, fmt=fmt)


def parse_threshold(values: Mapping[str, Any]) -> int:
    text = _text(values, "attendance_threshold_percent")
    if not text.isdigit() or not MIN_THRESHOLD <= int(text) <= MAX_THRESHOLD:
        raise FormInvalid({"attendance_threshold_percent": gettext(MSG_BAD_THRESHOLD)})
    return int(text)


def parse_registration_choice(values: Mapping[str, Any]) -> UUID:
    try:
        return UUID(_text(values, "registration_id"))
    except ValueError:
        raise FormInvalid({"registration_id": gettext(MSG_NO_REGISTRANT)}) from None
