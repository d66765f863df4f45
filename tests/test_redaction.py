"""Secret links never reach the logs."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from test_cli import EVENTS_APP, _run

from events_app.lib.redaction import RedactSecrets, redact

TOKEN = "Abc_def-GHIjkl0123456789abcdefghijklmnopqrs"


def test_redact_hides_manage_join_and_certificate_tokens() -> None:
    for prefix in ("/my/", "/j/", "/certificates/"):
        assert redact(f"GET {prefix}{TOKEN}/cancel HTTP/1.1") == f"GET {prefix}[redacted]/cancel HTTP/1.1"
    assert redact("GET /events/launch HTTP/1.1") == "GET /events/launch HTTP/1.1"


def test_the_filter_rewrites_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("uvicorn.access.test")
    logger.addFilter(RedactSecrets())
    with caplog.at_level(logging.INFO, logger="uvicorn.access.test"):
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1", "GET", f"/my/{TOKEN}", "1.1", 200)
    assert TOKEN not in caplog.text
    assert "/my/[redacted]" in caplog.text


def test_a_running_server_does_not_log_the_token(tmp_path: Path) -> None:
    env = {**os.environ, "EVENTS_VAR_DIR": str(tmp_path / "var")}
    env.pop("EVENTS_DATABASE_URL", None)
    _run("db", "upgrade", env=env)
    port = free_port()
    server = subprocess.Popen(
        [EVENTS_APP, "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/my/{TOKEN}", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "/my/[redacted]" in output
    assert TOKEN not in output
