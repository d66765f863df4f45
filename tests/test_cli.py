"""The console script: the README's first command (migrate, seed demo events, serve them), accounts and
upkeep."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from conftest import add_event, free_port, registration_form
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events_app.domain.events.demo import DEMO_EVENTS
from events_app.domain.registrations import schemas
from events_app.domain.registrations.services import RegistrationService, TokenSettings
from events_app.settings import Settings

EVENTS_APP = shutil.which("events-app", path=str(Path(sys.executable).parent)) or "events-app"


def _run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [EVENTS_APP, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_upgrade_seed_and_run_serve_the_demo_events(tmp_path: Path) -> None:
    env = {**os.environ, "EVENTS_VAR_DIR": str(tmp_path / "var"), "EVENTS_DEFAULT_LANGUAGE": "en"}
    for key in ("EVENTS_DATABASE_URL", "EVENTS_SMTP_HOST", "EVENTS_MAILDIR", "EVENTS_SECRET_KEY"):
        env.pop(key, None)
    _run("db", "upgrade", env=env)
    assert "human-trafficking-network-launch" in _run("seed-demo", env=env)
    assert "none" in _run("seed-demo", env=env)  # idempotent
    assert (tmp_path / "var" / "secret_key").exists()  # generated once, kept under var/

    port = free_port()
    server = subprocess.Popen(
        [EVENTS_APP, "run", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert health.status_code == 200
        assert health.json()["database"] == "ok"
        home = httpx.get(f"{base}/?lang=en", timeout=5)
        assert home.status_code == 200
        for demo in DEMO_EVENTS:
            assert demo.texts["en"]["title"] in home.text
        api = httpx.get(f"{base}/api/events", timeout=5).json()
        assert {event["slug"] for event in api} == {demo.slug for demo in DEMO_EVENTS}
        assert {event["registration_state"] for event in api} == {"open"}
        assert {event["timezone"] for event in api} == {
            "America/Bogota",
            "America/Sao_Paulo",
            "Europe/Madrid",
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_create_user_reads_the_password_from_standard_input(tmp_path: Path) -> None:
    env = {**os.environ, "EVENTS_VAR_DIR": str(tmp_path / "var")}
    env.pop("EVENTS_DATABASE_URL", None)
    _run("db", "upgrade", env=env)
    _run("seed-demo", env=env)
    done = subprocess.run(
        [
            EVENTS_APP,
            "create-user",
            "Manager@Example.org",
            "--role",
            "event_manager",
            "--event",
            "guide-penitentiary-intelligence",
        ],
        env=env,
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "created event_manager manager@example.org" in done.stdout
    again = subprocess.run(
        [EVENTS_APP, "create-user", "manager@example.org", "--role", "admin"],
        env=env,
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode != 0
    assert "exists already" in again.stderr
    short = subprocess.run(
        [EVENTS_APP, "create-user", "other@example.org", "--role", "admin"],
        env=env,
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert short.returncode != 0
    assert "at least 12" in short.stderr


def _search_index_problem(database: Path) -> str | None:
    """FTS5's own check of the attendee search index against the registrations (None when in step)."""
    with closing(sqlite3.connect(database)) as connection:
        try:
            connection.execute(
                "INSERT INTO registrations_search(registrations_search, rank) VALUES ('integrity-check', 1)"
            )
        except sqlite3.DatabaseError as error:
            return str(error)
    return None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_compact_rebuilds_the_search_index_that_renumbered_rowids_broke(
    tmp_path: Path, session_maker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """VACUUM may renumber the registrations' rowids, to which SQLite's search index points: ``db compact``
    vacuums and then rebuilds the index (here the rowids are renumbered by hand, as VACUUM may do)."""
    await add_event(session_maker)
    async with session_maker() as session:
        tokens = TokenSettings(secret_key=settings.secret_key, message_id_domain="test")
        service = RegistrationService(session=session, tokens=tokens)
        for email in ("ana.quispe@example.org", "bruno.vargas@example.org"):
            form = schemas.validate(registration_form(email=email, full_name=email.split("@")[0]))
            assert (await service.register("launch", form)).registration
    database = Path(settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("UPDATE registrations SET rowid = rowid + 1000")
        connection.commit()
    assert _search_index_problem(database) is not None

    env = {
        **os.environ,
        "EVENTS_VAR_DIR": str(tmp_path / "var"),
        "EVENTS_DATABASE_URL": settings.database_url,
    }
    assert "search index rebuilt" in _run("db", "compact", env=env)
    assert _search_index_problem(database) is None
