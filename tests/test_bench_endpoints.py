"""Benchmark-only endpoints: routed only with EVENTS_BENCH_ENDPOINTS on, never in the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from conftest import make_settings

from events_app.app import create_app

BENCH_PREFIX = "/api/bench/"


def _paths(bench_endpoints: bool, tmp_path: Path) -> tuple[set[str], set[str]]:
    settings = make_settings(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path}/unused.sqlite3", bench_endpoints=bench_endpoints
    )
    app = create_app(settings)
    routed = {route.path for route in app.routes}
    documented = set((app.openapi_schema.paths or {}).keys())
    return routed, documented


def test_off_by_default(tmp_path: Path) -> None:
    routed, _ = _paths(False, tmp_path)
    assert not [path for path in routed if path.startswith(BENCH_PREFIX)]


def test_on_when_enabled_but_never_documented(tmp_path: Path) -> None:
    routed, documented = _paths(True, tmp_path)
    assert {path for path in routed if path.startswith(BENCH_PREFIX)} == {
        "/api/bench/events/{slug:str}/bare",
        "/api/bench/events/{slug:str}/registrations-without-mail",
    }
    assert not [path for path in documented if path.startswith(BENCH_PREFIX)]
