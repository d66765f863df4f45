"""ruff and mypy are part of the suite, so CI refuses code that is not clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_is_clean() -> None:
    lint = _run(str(BIN / "ruff"), "check", "events_app", "tests", "migrations", "bench")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatting = _run(str(BIN / "ruff"), "format", "--check", "events_app", "tests")
    assert formatting.returncode == 0, formatting.stdout + formatting.stderr


def test_mypy_is_clean() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
