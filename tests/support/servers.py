"""Real server processes for multi-process tests: ``python -m events_app run`` (or ``worker``).

Each process gets its settings through ``EVENTS_*`` environment variables, exactly as in production,
logs to a file in the test's directory (shown when it fails to start), and is stopped with SIGTERM
(SIGKILL after a grace period). Typical use::

    env = events_env(tmp_path, database_url, EVENTS_RUN_WORKER_IN_APP="false")
    with running(web_server(env, tmp_path / "a.log"), web_server(env, tmp_path / "b.log")) as (a, b):
        httpx.get(f"{a.base_url}/health")
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

__all__ = ["ServerProcess", "events_env", "free_port", "running", "web_server", "worker_process"]

#: A fixed secret shared by every process of one test (tokens and CSRF must verify on all of them).
TEST_SECRET_KEY = "test-secret-key-shared-by-every-process-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def events_env(var_dir: Path, database_url: str, **settings: str) -> dict[str, str]:
    """The environment of an events_app process: this one's, minus any EVENTS_*, plus ``settings``.

    The registration and resend rate limits are off unless ``settings`` sets them.

    ``settings`` are given by their variable names (``EVENTS_SMTP_PORT="2525"``).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVENTS_")}
    env.update(
        EVENTS_VAR_DIR=str(var_dir),
        EVENTS_DATABASE_URL=database_url,
        EVENTS_SECRET_KEY=TEST_SECRET_KEY,
        EVENTS_BASE_URL="http://127.0.0.1",
        EVENTS_DEFAULT_LANGUAGE="en",
        # Abuse limits off (as in conftest.make_settings): a test about them passes its own.
        EVENTS_REGISTRATION_LIMIT_PER_IP="0",
        EVENTS_REGISTRATION_LIMIT_PER_EMAIL="0",
        EVENTS_RESEND_LIMIT_PER_IP="0",
        EVENTS_RESEND_LIMIT_PER_EMAIL="0",
    )
    env.update(settings)
    return env


class ServerProcess:
    """One child process running an ``events_app`` command; ``base_url`` is set for web servers."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        assert self.port is not None, "not a web server"
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "events_app", *self.args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until ``/health`` answers 200 (web servers) or, for a worker, just that it is alive."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.port is None:
                return
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.args} not ready after {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, no clean-up: for tests of a process dying mid-work."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


def web_server(env: dict[str, str], log_path: Path) -> ServerProcess:
    """``python -m events_app run`` on a free loopback port (one uvicorn process)."""
    port = free_port()
    return ServerProcess(["run", "--host", "127.0.0.1", "--port", str(port)], env, log_path, port=port)


def worker_process(env: dict[str, str], log_path: Path) -> ServerProcess:
    """``python -m events_app worker``: a dedicated outbox worker."""
    return ServerProcess(["worker"], env, log_path)


@contextlib.contextmanager
def running(*servers: ServerProcess, timeout: float = 30.0) -> Iterator[tuple[ServerProcess, ...]]:
    """Start every server (in parallel), wait until each is ready, and stop them all at the end."""
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()
