"""Keeps secret links out of logs: personal tokens in paths are replaced before a line is written."""

from __future__ import annotations

import logging
import re

#: Paths whose last segment is a bearer secret (manage links, join links, certificate codes).
SECRET_PATH = re.compile(r"(/(?:my|j|certificates)/)[A-Za-z0-9_-]{16,}")
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    return SECRET_PATH.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites the message and its arguments (uvicorn's access log passes the path as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def install() -> None:
    """Attach the filter to the loggers that print request paths."""
    for name in ("uvicorn.access", "uvicorn.error", "events_app", "litestar"):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactSecrets) for existing in logger.filters):
            logger.addFilter(RedactSecrets())
