"""schemathesis over the app's own OpenAPI document: every operation, no 5xx, every answer as documented.

The app runs behind a real uvicorn server (``live_client``) on the test's event loop; Hypothesis and
schemathesis drive it from a worker thread with blocking requests, so the loop stays free to serve them.
Path parameters are drawn either from schemathesis (random ids, slugs) or from the real rows made below,
so the fuzz reaches the handlers' insides and not only their 404s. Derandomized and bounded in examples.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from conftest import add_event, api_token_for, create_user, registration_form
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_attendees import add_registrations, person

from events_app.db.models import RegistrationStatus, Role

BASE = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SCHEMA_PATH = "/schema/openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class World:
    """Real rows for path parameters and bodies, and an administrator's API token."""

    token: str
    known: dict[str, list[str]]
    #: operation label -> a valid body, which the fuzzer overlays with some of the fields it drew
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: operation label -> path parameters of real rows for which the valid call succeeds
    paths: dict[str, dict[str, str]] = field(default_factory=dict)


def operations(schema: schemathesis.BaseSchema) -> list[Any]:
    """Every operation of the document (one that schemathesis cannot read fails the test)."""
    found = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        found.append(result.ok())
    return found


def call_valid_cases(schema: schemathesis.BaseSchema, base_url: str, world: World) -> dict[str, int]:
    """One valid request per operation, on real rows, checked like the fuzzed ones: all must succeed."""
    session = requests.Session()
    answered: dict[str, int] = {}
    for operation in operations(schema):
        kwargs: dict[str, Any] = {"path_parameters": world.paths.get(operation.label, {})}
        if operation.label in world.bodies:
            kwargs["body"] = world.bodies[operation.label]
        case = operation.Case(**kwargs)
        headers = {"Authorization": f"Bearer {world.token}"}
        response = case.call_and_validate(base_url=base_url, session=session, headers=headers, checks=CHECKS)
        answered[operation.label] = response.status_code
    return answered


async def seed(session_maker: async_sessionmaker[AsyncSession]) -> World:
    event = await add_event(session_maker, capacity=50, approval_required=True, waitlist_enabled=True)
    statuses = [
        RegistrationStatus.PENDING_APPROVAL,
        RegistrationStatus.WAITLISTED,
        RegistrationStatus.CONFIRMED,
    ]
    people = [person(index, BASE, status=statuses[index % 3]) for index in range(9)]
    await add_registrations(session_maker, event, people)
    admin = await create_user(session_maker, "admin@programme.example.org", Role.ADMIN)
    known = {
        "slug": [event.slug],
        "event_id": [str(event.id)],
        "registration_id": [str(someone.id) for someone in people],
    }
    form = registration_form()
    event_path = {"event_id": str(event.id)}
    first = {status: str(people[index].id) for index, status in enumerate(statuses)}
    bodies: dict[str, dict[str, Any]] = {
        "POST /api/events/{slug}/registrations": {
            **{name: form[name] for name in ("full_name", "email", "country", "institution", "sector")},
            **{"language": form["language"], "position": form["position"], "consent": True},
        },
        "POST /api/checkin": {
            "event_id": str(event.id),
            "nonce": "fuzz-nonce-0001",
            "device": "Entrance A",
            "registration_id": first[RegistrationStatus.CONFIRMED],
        },
        "POST /api/checkin/undo": {
            "event_id": str(event.id),
            "registration_id": first[RegistrationStatus.CONFIRMED],
        },
    }
    paths: dict[str, dict[str, str]] = {
        "GET /api/events/{slug}": {"slug": event.slug},
        "POST /api/events/{slug}/registrations": {"slug": event.slug},
        "POST /api/manage/registrations/{registration_id}/approve": {
            "registration_id": first[RegistrationStatus.PENDING_APPROVAL]
        },
        "POST /api/manage/registrations/{registration_id}/promote": {
            "registration_id": first[RegistrationStatus.WAITLISTED]
        },
        "POST /api/manage/registrations/{registration_id}/reject": {"registration_id": str(people[3].id)},
        "GET /api/manage/events/{event_id}/registrations": event_path,
        "GET /api/manage/events/{event_id}/registrations.csv": event_path,
        "GET /api/checkin/events/{event_id}/manifest": event_path,
        "GET /api/checkin/events/{event_id}/search": event_path,
        "GET /api/checkin/events/{event_id}/stats": event_path,
    }
    return World(await api_token_for(session_maker, admin), known, bodies, paths)


def fuzz_operation(
    operation: Any,
    session: requests.Session,
    base_url: str,
    world: World,
    mode: GenerationMode,
    examples: int,
    checks: list[Any],
    statuses: list[int],
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        if mode is GenerationMode.POSITIVE:
            use_real_rows(data, case, operation.label, world)
        headers = {}
        if data.draw(st.sampled_from([True, True, True, False]), label="authenticated"):
            headers["Authorization"] = f"Bearer {world.token}"
        response = case.call_and_validate(base_url=base_url, session=session, headers=headers, checks=checks)
        statuses.append(response.status_code)

    run()


def use_real_rows(data: st.DataObject, case: Any, label: str, world: World) -> None:
    """Point some cases at the real event and registrations, from a valid body, to get past the 404s.

    Only for valid (positive) cases: a negative case must stay invalid in the part schemathesis broke.
    """
    known = world.known
    for name in list(case.path_parameters or {}):
        if name in known and data.draw(st.booleans(), label=f"real {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known[name]))
    valid = world.bodies.get(label)
    if valid is not None and data.draw(st.booleans(), label="start from a valid body"):
        drawn = case.body if isinstance(case.body, dict) else {}
        case.body = {**valid, **{k: v for k, v in drawn.items() if data.draw(st.booleans(), label=k)}}
    if isinstance(case.body, dict):
        for name in [name for name in case.body if name in known]:
            if data.draw(st.booleans(), label=f"real {name} in the body"):
                case.body[name] = data.draw(st.sampled_from(known[name]))


def fuzz_operations(
    schema: schemathesis.BaseSchema,
    base_url: str,
    world: World,
    mode: GenerationMode,
    examples: int,
) -> dict[str, list[int]]:
    """Run every operation of the schema; the status codes each one answered (failures raise)."""
    session = requests.Session()
    seen: dict[str, list[int]] = {}
    failures: list[str] = []
    checks: list[Any] = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
    for operation in operations(schema):
        statuses = seen.setdefault(operation.label, [])
        try:
            fuzz_operation(operation, session, base_url, world, mode, examples, checks, statuses)
        except Unsatisfiable:
            # Nothing of this operation can be made invalid (no parameters, or strings only in the path).
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as error:  # run them all, report every failure together
            failures.append(f"{operation.label} ({mode.value}): {error}")
    assert not failures, "\n\n".join(failures)
    return seen


async def run_fuzz(
    live_client: httpx.AsyncClient,
    session_maker: async_sessionmaker[AsyncSession],
    plan: list[tuple[GenerationMode, int]],
) -> None:
    world = await seed(session_maker)
    document = (await live_client.get(SCHEMA_PATH)).json()
    schema = schemathesis.openapi.from_dict(document)
    base_url = str(live_client.base_url).rstrip("/")
    expected = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    # The organiser and check-in APIs are in the document, so they are fuzzed too (with the token).
    assert any(label.startswith("POST /api/checkin") for label in expected)
    assert any(label.startswith("GET /api/manage/") for label in expected)
    answered = await asyncio.to_thread(call_valid_cases, schema, base_url, world)
    assert set(answered) == expected
    assert all(200 <= status < 300 for status in answered.values()), answered
    for mode, examples in plan:
        seen = await asyncio.to_thread(fuzz_operations, schema, base_url, world, mode, examples)
        assert set(seen) == expected


async def test_every_api_operation_answers_as_documented(
    live_client: httpx.AsyncClient, session_maker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    """Valid and invalid inputs on every operation: never a 5xx, every status and body as documented."""
    if database_url.startswith("sqlite"):
        plan = [(GenerationMode.POSITIVE, 25), (GenerationMode.NEGATIVE, 15)]
    else:  # a smaller pass on PostgreSQL: the same handlers, another SQL dialect
        plan = [(GenerationMode.POSITIVE, 8), (GenerationMode.NEGATIVE, 5)]
    await run_fuzz(live_client, session_maker, plan)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
