"""What the check-in API reads and answers, and the checks on what a scanner sends."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import msgspec

from events_app.domain.registrations.schemas import MSG_BAD_CHARACTERS, MSG_REQUIRED, MSG_TOO_LONG
from events_app.domain.registrations.views import FieldErrorOut
from events_app.lib.i18n import N_, gettext

DEVICE_MAX = 120
NONCE_MAX = 100
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{8,100}")
#: A scan is never dated later than the server's clock (a device clock running fast).
FUTURE_TOLERANCE = timedelta(minutes=5)
SEARCH_LIMIT = 20
SEARCH_MIN_CHARS = 2
SEARCH_MAX_CHARS = 200

MSG_ONE_OF = N_("Send either a ticket code or a registration, not both.")
MSG_BAD_NONCE = N_("The scan id must be 8 to 100 letters, digits or dashes.")


class ScanResult(StrEnum):
    OK = "ok"
    ALREADY_CHECKED_IN = "already_checked_in"
    INVALID = "invalid"
    OTHER_EVENT = "other_event"
    CANCELLED = "cancelled"
    NOT_APPROVED = "not_approved"
    WAITLISTED = "waitlisted"


class ScanIn(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/checkin``: a ticket code from the camera, or a registration chosen by hand."""

    event_id: UUID
    nonce: str
    device: str
    code: str | None = None
    registration_id: UUID | None = None
    #: When the device scanned (an offline scan is sent later with its original time).
    scanned_at: datetime | None = None


class UndoIn(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /api/checkin/undo``: the registration to let out again, or the nonce of its check-in."""

    event_id: UUID
    registration_id: UUID | None = None
    nonce: str | None = None


class ScanAnswer(msgspec.Struct, omit_defaults=False):
    result: str
    message: str
    name: str = ""
    institution: str = ""
    country: str = ""
    registration_id: str | None = None
    #: For ``ok`` the time of this scan; for ``already_checked_in`` the time of the first one.
    checked_in_at: str | None = None
    device: str | None = None


class UndoOut(msgspec.Struct):
    result: str
    registration_id: str
    name: str
    message: str


class ManifestEntry(msgspec.Struct):
    ticket_hash: str
    registration_id: str
    status: str
    name: str
    institution: str
    country: str
    checked_in: bool
    checked_in_at: str | None = None
    checked_in_device: str | None = None


class ManifestOut(msgspec.Struct):
    """Everything a scanner needs to decide offline: one entry per registration of the event."""

    event_id: str
    generated_at: str
    expected: int
    tickets: list[ManifestEntry]


class StatsOut(msgspec.Struct):
    checked_in: int
    expected: int


class SearchHit(msgspec.Struct):
    registration_id: str
    name: str
    institution: str
    country: str
    status: str
    checked_in: bool


class SearchOut(msgspec.Struct):
    results: list[SearchHit]


@dataclass(frozen=True, slots=True)
class Scan:
    """A checked scan request."""

    event_id: UUID
    nonce: str
    device: str
    scanned_at: datetime
    code: str | None = None
    registration_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class CheckinInvalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(", ".join(error.field for error in errors))
        self.errors = errors

    def out(self) -> list[FieldErrorOut]:
        return [FieldErrorOut(field=error.field, message=error.message) for error in self.errors]


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char).startswith("C") for char in value)


def clean_device(value: str) -> tuple[str, str | None]:
    """The device name trimmed, and a translated error when it cannot be used."""
    if _has_control_characters(value):
        return value, gettext(MSG_BAD_CHARACTERS)
    device = " ".join(value.split())
    if not device:
        return device, gettext(MSG_REQUIRED)
    if len(device) > DEVICE_MAX:
        return device, gettext(MSG_TOO_LONG) % {"max": DEVICE_MAX}
    return device, None


def nonce_error(nonce: str) -> str | None:
    return None if NONCE_PATTERN.fullmatch(nonce) else gettext(MSG_BAD_NONCE)


def scan_time(value: datetime | None, now: datetime) -> datetime:
    """The device's time of the scan in UTC; missing or in the future means now."""
    if value is None:
        return now
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return now if moment > now + FUTURE_TOLERANCE else moment


def parse_scan(data: ScanIn, now: datetime) -> Scan:
    """Check a scan request; raises :class:`CheckinInvalid` with translated messages."""
    errors: list[FieldError] = []
    device, device_error = clean_device(data.device)
    if device_error:
        errors.append(FieldError("device", device_error))
    if error := nonce_error(data.nonce):
        errors.append(FieldError("nonce", error))
    if (data.code is None) == (data.registration_id is None):
        errors.append(FieldError("code", gettext(MSG_ONE_OF)))
    if errors:
        raise CheckinInvalid(errors)
    return Scan(
        event_id=data.event_id,
        nonce=data.nonce,
        device=device,
        scanned_at=scan_time(data.scanned_at, now),
        code=data.code,
        registration_id=data.registration_id,
    )


def parse_manual_form(event_id: UUID, form: dict[str, Any], now: datetime, device: str) -> Scan | None:
    """The no-JavaScript check-in form (a registration and the nonce the page gave it); None if broken."""
    try:
        registration_id = UUID(str(form.get("registration_id", "")))
    except ValueError:
        return None
    nonce = str(form.get("nonce", ""))
    if nonce_error(nonce):
        return None
    return Scan(
        event_id=event_id, nonce=nonce, device=device, scanned_at=now, registration_id=registration_id
    )


def parse_undo(data: UndoIn) -> tuple[UUID | None, str | None]:
    if (data.registration_id is None) == (data.nonce is None):
        raise CheckinInvalid([FieldError("registration_id", gettext(MSG_ONE_OF))])
    if data.nonce is not None and (error := nonce_error(data.nonce)):
        raise CheckinInvalid([FieldError("nonce", error)])
    return data.registration_id, data.nonce


def search_terms(q: str | None) -> str:
    """The search text, or "" when it is too short to search with."""
    text = " ".join((q or "").split())[:SEARCH_MAX_CHARS]
    return text if len(text) >= SEARCH_MIN_CHARS else ""
