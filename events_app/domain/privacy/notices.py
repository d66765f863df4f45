"""The privacy notice, versioned: each version is a folder of per-language templates that never changes.

A registration stores the version the person accepted (``Registration.privacy_notice_version``), so
every version ever published stays readable at ``/privacy/<version>``. To change the notice, add a new
folder ``templates/privacy/<version>/`` with one file per language and append the version here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from events_app.lib.i18n import SUPPORTED_LANGUAGES


@dataclass(frozen=True, slots=True)
class NoticeVersion:
    version: str
    published_on: date


#: Oldest first; the last one is the notice people accept when they register now.
NOTICE_VERSIONS: tuple[NoticeVersion, ...] = (
    NoticeVersion("2026-11", date(2026, 11, 1)),
    NoticeVersion("2026-11-22", date(2026, 11, 22)),
)
CURRENT_NOTICE = NOTICE_VERSIONS[-1]
PRIVACY_NOTICE_VERSION = CURRENT_NOTICE.version


def notice_version(version: str) -> NoticeVersion | None:
    return next((notice for notice in NOTICE_VERSIONS if notice.version == version), None)


def notice_template(notice: NoticeVersion, language: str) -> str:
    """The template holding the notice's text in ``language`` (each version exists in every language)."""
    chosen = language if language in SUPPORTED_LANGUAGES else SUPPORTED_LANGUAGES[0]
    return f"privacy/{notice.version}/{chosen}.html"
