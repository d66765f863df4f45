"""What a registration request must look like: one validator for the HTML form and the JSON API."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from email_validator import EmailNotValidError, validate_email

from events_app.db.models import Sector
from events_app.lib.countries import is_country_code
from events_app.lib.i18n import N_, SUPPORTED_LANGUAGES, gettext, normalize_language

MAX_LENGTHS = {
    "full_name": 200,
    "email": 254,
    "country": 2,
    "institution": 200,
    "position": 200,
    "sector": 40,
    "language": 8,
    "consent": 10,
}
REQUIRED_FIELDS = ("full_name", "email", "country", "institution", "sector", "language")
CONSENT_VALUES = {"on", "yes", "true", "1"}

SECTOR_LABELS: dict[Sector, str] = {
    Sector.POLICE: N_("Police"),
    Sector.PROSECUTION: N_("Prosecution service"),
    Sector.JUDICIARY: N_("Judiciary"),
    Sector.PENITENTIARY: N_("Penitentiary system"),
    Sector.CUSTOMS: N_("Customs"),
    Sector.MINISTRY: N_("Ministry"),
    Sector.INTERNATIONAL_ORGANISATION: N_("International organisation"),
    Sector.OTHER: N_("Other"),
}

MSG_REQUIRED = N_("This field is required.")
MSG_TOO_LONG = N_("This is too long: at most %(max)d characters.")
MSG_BAD_CHARACTERS = N_("This contains characters that are not allowed (line breaks or control characters).")
MSG_BAD_EMAIL = N_("Enter a valid email address, for example name@institution.org.")
MSG_BAD_COUNTRY = N_("Choose a country from the list.")
MSG_BAD_SECTOR = N_("Choose a sector from the list.")
MSG_BAD_LANGUAGE = N_("Choose a language from the list.")
MSG_CONSENT = N_("You must accept the privacy notice to register.")
MSG_NOT_TEXT = N_("This must be text.")


class RegistrationRequest(msgspec.Struct, forbid_unknown_fields=False):
    """The JSON body of ``POST /api/events/{slug}/registrations`` (validated further by :func:`validate`)."""

    full_name: str
    email: str
    country: str
    institution: str
    sector: str
    language: str
    consent: bool
    position: str = ""


@dataclass(frozen=True, slots=True)
class RegistrationData:
    full_name: str
    email: str
    email_normalized: str
    country: str
    institution: str
    position: str
    sector: Sector
    language: str


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class RegistrationInvalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("invalid registration")
        self.errors = errors

    def by_field(self) -> dict[str, str]:
        return {error.field: error.message for error in self.errors}


def has_forbidden_characters(value: str) -> bool:
    """Control characters (CR, LF, NUL, ...) and Unicode line/paragraph separators."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs") for ch in value)


def _clean_text(raw: Mapping[str, Any], field: str, errors: list[FieldError]) -> str:
    value = raw.get(field, "")
    if value is None:
        value = ""
    if isinstance(value, bool) or not isinstance(value, str):
        errors.append(FieldError(field, gettext(MSG_NOT_TEXT)))
        return ""
    if has_forbidden_characters(value):
        errors.append(FieldError(field, gettext(MSG_BAD_CHARACTERS)))
        return ""
    cleaned = " ".join(value.split())
    if not cleaned and field in REQUIRED_FIELDS:
        errors.append(FieldError(field, gettext(MSG_REQUIRED)))
    elif len(cleaned) > MAX_LENGTHS[field]:
        errors.append(FieldError(field, gettext(MSG_TOO_LONG) % {"max": MAX_LENGTHS[field]}))
        return ""
    return cleaned


def _clean_email(value: str, errors: list[FieldError]) -> tuple[str, str]:
    if not value:
        return "", ""
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        errors.append(FieldError("email", gettext(MSG_BAD_EMAIL)))
        return "", ""
    return result.normalized, result.normalized.lower()


def _consented(raw: Mapping[str, Any]) -> bool:
    value = raw.get("consent")
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in CONSENT_VALUES


def validate(raw: Mapping[str, Any]) -> RegistrationData:
    """Clean and check a registration; raises :class:`RegistrationInvalid` with translated messages."""
    errors: list[FieldError] = []
    values = {field: _clean_text(raw, field, errors) for field in MAX_LENGTHS if field != "consent"}
    email, email_normalized = _clean_email(values["email"], errors)
    country = values["country"].upper()
    if values["country"] and not is_country_code(country):
        errors.append(FieldError("country", gettext(MSG_BAD_COUNTRY)))
    if values["sector"] and values["sector"] not in {sector.value for sector in Sector}:
        errors.append(FieldError("sector", gettext(MSG_BAD_SECTOR)))
    language = normalize_language(values["language"]) if values["language"] else None
    if values["language"] and language not in SUPPORTED_LANGUAGES:
        errors.append(FieldError("language", gettext(MSG_BAD_LANGUAGE)))
    consent = raw.get("consent")
    if isinstance(consent, str) and has_forbidden_characters(consent):
        # "yes\r\n" would pass the strip() in _consented: CR/LF/NUL are refused in every field.
        errors.append(FieldError("consent", gettext(MSG_BAD_CHARACTERS)))
    elif not _consented(raw):
        errors.append(FieldError("consent", gettext(MSG_CONSENT)))
    if errors:
        raise RegistrationInvalid(errors)
    return RegistrationData(
        full_name=values["full_name"],
        email=email,
        email_normalized=email_normalized,
        country=country,
        institution=values["institution"],
        position=values["position"],
        sector=Sector(values["sector"]),
        language=language or SUPPORTED_LANGUAGES[0],
    )
