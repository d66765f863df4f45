"""The app served by uvicorn in a subprocess, for benchmarks that measure it from outside."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

BENCH_SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM (``timeout``, a CI's cancel) into SystemExit, so servers and clusters are stopped."""

    def _exit(signum: int, _frame: object) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppServer:
    def __init__(
        self,
        workdir: Path,
        database_url: str,
        secret: str = BENCH_SECRET,
        extra_env: dict[str, str] | None = None,
        workers: int = 1,
    ) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "EVENTS_DATABASE_URL": database_url,
            "EVENTS_VAR_DIR": str(workdir),
            "EVENTS_SECRET_KEY": secret,
            "EVENTS_RUN_WORKER_IN_APP": "false",
            "EVENTS_DEFAULT_LANGUAGE": "en",
            **(extra_env or {}),
        }
        command = [sys.executable, "-m", "events_app", "run", "--port", str(self.port)]
        if workers > 1:  # uvicorn's supervisor and N worker processes, as in the README's production set-up
            command += ["--workers", str(workers)]
        # The server's errors go to a file, not a pipe: a pipe nobody reads blocks a chatty server.
        self.log_path = workdir / f"server-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=self._log)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self) -> None:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server died:\n{self.log_tail()}")
                try:
                    if (await http.get(f"{self.url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the server did not start")

    def _status(self, field: str) -> int:
        """A memory figure of the server process from /proc, in kB."""
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
        return int(found.group(1)) if found else 0

    def reset_peak(self) -> bool:
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def rss_kb(self) -> int:
        return self._status("VmRSS")

    def peak_kb(self) -> int:
        return self._status("VmHWM")

    def cpu_seconds(self) -> float:
        """User and system CPU time the server has used so far: its process and the live processes under it
        (uvicorn's workers, with ``workers`` > 1)."""
        stats: dict[int, list[str]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stats[int(entry.name)] = (entry / "stat").read_text().rpartition(")")[2].split()
                except OSError:  # the process ended meanwhile
                    continue
        ours, total, grown = {self.process.pid}, 0, True
        while grown:  # children, their children, ...
            found = {pid for pid, fields in stats.items() if int(fields[1]) in ours} - ours
            ours |= found
            grown = bool(found)
        for pid in ours:
            if pid in stats:
                total += int(stats[pid][11]) + int(stats[pid][12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()
