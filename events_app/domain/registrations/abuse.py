"""Abuse limits on the public forms: rate limits per address and per email, and a honeypot field.

The limits are fixed windows counted in the database (``lib/ratelimit.py``), so every web process
sees the same counts. The registration form and the registration API share their counters: a script
gains nothing by switching from one to the other.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession

from events_app.domain.registrations.schemas import MAX_LENGTHS, MSG_BAD_EMAIL, MSG_REQUIRED
from events_app.lib.i18n import gettext, ngettext
from events_app.lib.ratelimit import Limit, Verdict, check, hashed, purge_expired
from events_app.settings import Settings

#: The honeypot's name: a field people never see and form-filling bots fill in. It carries no token
#: that browsers' or password managers' autofill heuristics look for (url, website, company, name,
#: email, phone, address...), so an autofill does not fill it for a real person.
HONEYPOT_FIELD = "hp_leave_blank"


def honeypot_filled(data: Mapping[str, Any]) -> bool:
    value = data.get(HONEYPOT_FIELD)
    return isinstance(value, str) and bool(value.strip())


def honeypot_message() -> str:
    """Shown above the form, re-rendered with what was typed and an empty honeypot, when it was filled.

    Nothing is stored or sent. Not a fake success: that only fools bots that read the answer (form
    spam rarely does) and silently loses the person whose autofill still filled the field. A person
    submits again and goes through (the field now stays empty); a bot that refills it keeps failing.
    """
    return gettext(
        "Your browser filled in a field that must stay empty, so nothing was sent. Please submit again."
    )


def _limits(
    secret_key: str,
    form: str,
    ip: str,
    email_normalized: str | None,
    per_ip: tuple[int, int],
    per_email: tuple[int, int],
) -> list[Limit]:
    """Per address (every attempt) and per email (attempts with a valid email); (limit, window seconds)."""
    limits = [Limit(f"{form}:ip:{hashed(secret_key, ip)}", per_ip[0], timedelta(seconds=per_ip[1]))]
    if email_normalized:
        key = f"{form}:email:{hashed(secret_key, email_normalized)}"
        limits.append(Limit(key, per_email[0], timedelta(seconds=per_email[1])))
    return limits


def registration_limits(settings: Settings, ip: str, email_normalized: str | None) -> list[Limit]:
    return _limits(
        settings.secret_key,
        "register",
        ip,
        email_normalized,
        (settings.registration_limit_per_ip, settings.registration_limit_per_ip_window_seconds),
        (settings.registration_limit_per_email, settings.registration_limit_per_email_window_seconds),
    )


def resend_limits(settings: Settings, ip: str, email_normalized: str | None) -> list[Limit]:
    return _limits(
        settings.secret_key,
        "resend",
        ip,
        email_normalized,
        (settings.resend_limit_per_ip, settings.resend_limit_per_ip_window_seconds),
        (settings.resend_limit_per_email, settings.resend_limit_per_email_window_seconds),
    )


async def count_attempt(session: AsyncSession, limits: list[Limit]) -> Verdict:
    """Count one attempt and commit at once.

    The hit gets its own short transaction: the registration that follows may roll back (event full,
    closed, a race on the same email), and a rolled-back hit would not count.
    """
    if not any(limit.active for limit in limits):
        return Verdict(allowed=True)
    verdict = await check(session, limits)
    await session.commit()
    return verdict


def too_many_attempts(verdict: Verdict) -> str:
    minutes = max(1, math.ceil(verdict.retry_after / 60))
    return ngettext(
        "Too many attempts from your network or with this email address. Try again in %(num)d minute.",
        "Too many attempts from your network or with this email address. Try again in %(num)d minutes.",
        minutes,
    ) % {"num": minutes}


class ResendInvalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def validate_resend_email(data: Mapping[str, Any]) -> str:
    """The normalised (lower-case) email typed on the resend form; raises :class:`ResendInvalid`."""
    value = data.get("email", "")
    if not isinstance(value, str) or not value.strip():
        raise ResendInvalid(gettext(MSG_REQUIRED))
    value = value.strip()
    if len(value) > MAX_LENGTHS["email"]:
        raise ResendInvalid(gettext(MSG_BAD_EMAIL))
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise ResendInvalid(gettext(MSG_BAD_EMAIL)) from None
    return result.normalized.lower()


def resend_context(values: dict[str, str], error: str | None, message: str | None = None) -> dict[str, Any]:
    """What the resend form shows: the email typed, its error, and a message above the form."""
    return {
        "values": values,
        "errors": [("email", error)] if error else [],
        "error_for": {"email": error} if error else {},
        "form_message": message,
    }


#: Counters are kept at least this long after their last hit (longer than every window in use).
KEEP_COUNTERS = timedelta(days=1)


def purge_job(settings: Settings) -> Callable[[AsyncSession], Awaitable[int]]:
    """A worker's periodic job: forget counters older than every window, so the table stays small."""
    windows = (
        settings.registration_limit_per_ip_window_seconds,
        settings.registration_limit_per_email_window_seconds,
        settings.resend_limit_per_ip_window_seconds,
        settings.resend_limit_per_email_window_seconds,
    )
    keep = max(KEEP_COUNTERS, timedelta(seconds=max(windows)))

    async def purge_rate_limit_counters(session: AsyncSession) -> int:
        await purge_expired(session, keep)
        return 0  # it writes no outbox rows

    return purge_rate_limit_counters
