"""What a message to registrants must look like: the compose form, parsed and checked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from events_app.db.models import RegistrationStatus
from events_app.domain.registrations.schemas import MSG_BAD_COUNTRY, MSG_BAD_LANGUAGE, MSG_TOO_LONG
from events_app.lib.countries import is_country_code
from events_app.lib.i18n import N_, SUPPORTED_LANGUAGES, gettext, language_name

#: The tokens an organiser may put in a subject or body; each recipient's own value replaces them.
PLACEHOLDERS = ("name", "link", "event")
#: Anything in braces; those that are not one of :data:`PLACEHOLDERS` are reported as unknown.
BRACED = re.compile(r"\{([^{}\r\n]{0,60})\}")
#: The registrations a message can go to (cancelled and rejected people are not written to).
MESSAGE_STATUSES = (
    RegistrationStatus.CONFIRMED,
    RegistrationStatus.PENDING_APPROVAL,
    RegistrationStatus.WAITLISTED,
)
SUBJECT_MAX = 200
BODY_MAX = 20_000

MSG_SUBJECT_BASE = N_("Write the subject in %(language)s, the event's main language.")
MSG_BODY_BASE = N_("Write the message in %(language)s, the event's main language.")
MSG_SUBJECT_MISSING = N_("Write a subject for this language too, or leave both empty.")
MSG_BODY_MISSING = N_("Write the message for this language too, or leave both empty.")
MSG_UNKNOWN_PLACEHOLDER = N_("Unknown placeholder: %(placeholders)s. You can use {name}, {link} and {event}.")
MSG_NO_STATUS = N_("Choose at least one registration status.")
MSG_NO_RECIPIENTS = N_("Nobody matches these recipients: change the filters.")


@dataclass(frozen=True, slots=True)
class RecipientFilter:
    """Which of the event's registrations receive a message."""

    statuses: tuple[RegistrationStatus, ...] = (RegistrationStatus.CONFIRMED,)
    country: str = ""
    language: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "statuses": [status.value for status in self.statuses],
            "country": self.country,
            "language": self.language,
        }


@dataclass(frozen=True, slots=True)
class MessageDraft:
    """A checked message: its recipients and its texts (only the languages that were written)."""

    filters: RecipientFilter
    texts: dict[str, dict[str, str]]
    #: Chosen when the preview is shown and sent along with the confirmation: a repeated "Send" (a double
    #: click, a reload) finds the message already there and sends nothing again.
    key: UUID | None = None


@dataclass
class MessageInvalid(Exception):
    """The form has errors: ``errors`` maps a field name to its (translated) message."""

    errors: dict[str, str] = field(default_factory=dict)


def text_fields(language: str) -> tuple[str, str]:
    return f"subject_{language}", f"body_{language}"


def form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The submitted form as the template shows it again: strings, and ``status`` as a list."""
    known = {"country", "language", *(name for code in SUPPORTED_LANGUAGES for name in text_fields(code))}
    values: dict[str, Any] = {
        key: value for key, value in data.items() if key in known and isinstance(value, str)
    }
    statuses = data.get("status", [])
    values["status"] = [statuses] if isinstance(statuses, str) else [str(item) for item in statuses]
    return values


def default_values() -> dict[str, Any]:
    return {"status": [RegistrationStatus.CONFIRMED.value], "country": "", "language": ""}


def unknown_placeholders(text: str) -> list[str]:
    return [f"{{{name}}}" for name in BRACED.findall(text) if name not in PLACEHOLDERS]


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}``, ``{link}`` and ``{event}`` in one pass: a value is never expanded again, and
    nothing else in the organiser's text is interpreted (no ``str.format``)."""
    pattern = "|".join(re.escape(f"{{{name}}}") for name in PLACEHOLDERS)
    return re.sub(pattern, lambda match: values[match.group(0)[1:-1]], text)


def _clean_subject(value: object) -> str:
    return " ".join(str(value).split()) if isinstance(value, str) else ""


def _clean_body(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _check_text(name: str, text: str, limit: int, errors: dict[str, str]) -> None:
    if len(text) > limit:
        errors[name] = gettext(MSG_TOO_LONG) % {"max": limit}
    elif unknown := unknown_placeholders(text):
        errors[name] = gettext(MSG_UNKNOWN_PLACEHOLDER) % {"placeholders": ", ".join(unknown)}


def _language_text(
    language: str, base_language: str, data: Mapping[str, Any], errors: dict[str, str]
) -> dict[str, str] | None:
    subject_field, body_field = text_fields(language)
    subject, body = _clean_subject(data.get(subject_field)), _clean_body(data.get(body_field))
    _check_text(subject_field, subject, SUBJECT_MAX, errors)
    _check_text(body_field, body, BODY_MAX, errors)
    if language == base_language:
        name = language_name(language)
        if not subject:
            errors[subject_field] = gettext(MSG_SUBJECT_BASE) % {"language": name}
        if not body:
            errors[body_field] = gettext(MSG_BODY_BASE) % {"language": name}
    elif subject and not body:
        errors[body_field] = gettext(MSG_BODY_MISSING)
    elif body and not subject:
        errors[subject_field] = gettext(MSG_SUBJECT_MISSING)
    return {"subject": subject, "body": body} if subject and body else None


def _filters(data: Mapping[str, Any], errors: dict[str, str]) -> RecipientFilter:
    raw = data.get("status", [])
    chosen = {raw} if isinstance(raw, str) else {str(item) for item in raw}
    statuses = tuple(status for status in MESSAGE_STATUSES if status.value in chosen)
    if not statuses or len(statuses) != len(chosen):
        errors["status"] = gettext(MSG_NO_STATUS)
    country = str(data.get("country") or "").strip().upper()
    if country and not is_country_code(country):
        errors["country"] = gettext(MSG_BAD_COUNTRY)
    language = str(data.get("language") or "").strip()
    if language and language not in SUPPORTED_LANGUAGES:
        errors["language"] = gettext(MSG_BAD_LANGUAGE)
    return RecipientFilter(statuses=statuses, country=country, language=language)


def _key(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def parse(data: Mapping[str, Any], base_language: str) -> MessageDraft:
    """Check the compose form; raises :class:`MessageInvalid` with every problem at once."""
    errors: dict[str, str] = {}
    filters = _filters(data, errors)
    texts = {}
    for language in text_languages(base_language):
        text = _language_text(language, base_language, data, errors)
        if text is not None:
            texts[language] = text
    if errors:
        raise MessageInvalid(errors)
    return MessageDraft(filters=filters, texts=texts, key=_key(data.get("message_key")))


def text_languages(base_language: str) -> list[str]:
    """The languages of the form's texts: the event's main language first."""
    return [base_language, *(language for language in SUPPORTED_LANGUAGES if language != base_language)]


def form_fields(base_language: str) -> list[str]:
    """The fields in the order of the form, for the error summary."""
    fields = ["status", "country", "language"]
    for language in text_languages(base_language):
        fields.extend(text_fields(language))
    return fields
