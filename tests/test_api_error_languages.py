"""The JSON API's errors read in the request's language, including those Litestar and msgspec produce.

A wrong type, a missing field, a malformed identifier or an unknown path answer with texts in Spanish or
Brazilian Portuguese (Accept-Language or ``?lang=``), on the public registration API and on the
organiser API alike.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import add_event, api_token_for, create_user
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.db.models import Role
from events_app.lib import api_errors
from events_app.lib.i18n import force_locale, gettext

API_URL = "/api/events/launch/registrations"
BODY = {
    "full_name": "Maria da Conceição",
    "email": "maria@example.org",
    "country": "BR",
    "institution": "Polícia Federal",
    "sector": "police",
    "language": "pt_BR",
    "consent": True,
}

#: The texts as the catalogs must give them (not looked up: a missing translation fails here).
EXPECTED = {
    "es": {
        "text": "Este campo debe contener texto.",
        "boolean": "Debe ser verdadero o falso.",
        "uuid": "Debe ser un identificador (un UUID).",
        "required": "Este campo es obligatorio.",
        "invalid": "Algunos campos no son válidos.",
        "not_found": "Esta página no existe.",
    },
    "pt_BR": {
        "text": "Este campo deve conter texto.",
        "boolean": "Deve ser verdadeiro ou falso.",
        "uuid": "Deve ser um identificador (um UUID).",
        "required": "Este campo é obrigatório.",
        "invalid": "Alguns campos não são válidos.",
        "not_found": "Esta página não existe.",
    },
}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Error texts depend on no database: SQLite only."""
    return sqlite_url


def by_field(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid"
    return {error["field"]: error["message"] for error in body["errors"]}


@pytest.mark.parametrize("language", ["es", "pt_BR"])
async def test_registration_api_type_and_missing_field_errors_follow_the_language(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], language: str
) -> None:
    await add_event(session_maker)
    expected = EXPECTED[language]
    header = {"Accept-Language": language.replace("_", "-")}

    wrong_text = await client.post(API_URL, json={**BODY, "full_name": 5}, headers=header)
    assert wrong_text.json()["detail"] == expected["invalid"]
    assert by_field(wrong_text) == {"full_name": expected["text"]}
    wrong_boolean = await client.post(API_URL, json={**BODY, "consent": "yes"}, headers=header)
    assert by_field(wrong_boolean) == {"consent": expected["boolean"]}

    missing = {key: value for key, value in BODY.items() if key != "email"}
    answer = await client.post(API_URL, params={"lang": language}, json=missing)
    assert by_field(answer) == {"email": expected["required"]}

    no_body = await client.post(API_URL, content=b"", headers={**header, "Content-Type": "application/json"})
    assert by_field(no_body) == {"body": expected["required"]}

    nowhere = await client.get("/api/no-such-thing", headers=header)
    assert nowhere.status_code == 404
    assert nowhere.json()["detail"] == expected["not_found"]


@pytest.mark.parametrize("language", ["es", "pt_BR"])
async def test_organiser_api_errors_follow_the_language(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession], language: str
) -> None:
    event = await add_event(session_maker)
    admin = await create_user(session_maker, "admin@example.org", Role.ADMIN, events=[event])
    token = await api_token_for(session_maker, admin)
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": language.replace("_", "-")}
    expected = EXPECTED[language]

    scan = {"event_id": "nope", "nonce": "n1", "device": "A"}
    bad_id = await client.post("/api/checkin", json=scan, headers=headers)
    assert by_field(bad_id) == {"event_id": expected["uuid"]}

    missing = await client.post("/api/checkin", json={"nonce": "n2", "device": "A"}, headers=headers)
    assert by_field(missing) == {"event_id": expected["required"]}


@pytest.mark.parametrize("language", ["es", "pt_BR", "fr"])
def test_every_framework_message_is_translated(language: str) -> None:
    """Each text the API can put in place of msgspec's English has its translation."""
    messages = [value for name, value in vars(api_errors).items() if name.startswith("MSG_")]
    assert messages
    with force_locale(language):
        for message in messages:
            assert gettext(message) != message, f"{message!r} is not translated into {language}"
