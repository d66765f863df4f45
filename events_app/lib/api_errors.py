"""Field errors for what Litestar and msgspec reject before our code runs, in the request's language.

msgspec words a wrong body in English for developers ("Expected `str`, got `int`", "Invalid UUID"); the
JSON API answers every 422 with messages a person can read in es, pt_BR, en or fr, like our own checks.
"""

from __future__ import annotations

import re

from events_app.lib.i18n import N_, gettext

MSG_NOT_TEXT = N_("This must be text.")
MSG_NOT_BOOLEAN = N_("This must be true or false.")
MSG_NOT_INTEGER = N_("This must be a whole number.")
MSG_NOT_NUMBER = N_("This must be a number.")
MSG_NOT_OBJECT = N_("This must be a JSON object.")
MSG_NOT_LIST = N_("This must be a list.")
MSG_NOT_UUID = N_("This must be an identifier (a UUID).")
MSG_NOT_DATETIME = N_("This must be a date and time with its offset, for example 2027-04-14T10:00:00-05:00.")
MSG_NOT_ALLOWED = N_("This value is not one of the allowed ones.")
MSG_NOT_VALID = N_("This value is not valid.")

#: msgspec's type names (the first one that is not ``null`` decides).
_TYPE_MESSAGES = {
    "str": MSG_NOT_TEXT,
    "bool": MSG_NOT_BOOLEAN,
    "int": MSG_NOT_INTEGER,
    "float": MSG_NOT_NUMBER,
    "object": MSG_NOT_OBJECT,
    "array": MSG_NOT_LIST,
    "uuid": MSG_NOT_UUID,
    "datetime": MSG_NOT_DATETIME,
}
_EXPECTED = re.compile(r"Expected `([^`]+)`")


def framework_message(message: str) -> str:
    """A translated text for one of msgspec's (or Litestar's) validation messages."""
    if found := _EXPECTED.search(message):
        for kind in (part.strip() for part in found.group(1).split("|")):
            if kind in _TYPE_MESSAGES:
                return gettext(_TYPE_MESSAGES[kind])
    lowered = message.lower()
    if "uuid" in lowered:
        return gettext(MSG_NOT_UUID)
    if "datetime" in lowered:
        return gettext(MSG_NOT_DATETIME)
    if "enum" in lowered:
        return gettext(MSG_NOT_ALLOWED)
    return gettext(MSG_NOT_VALID)
