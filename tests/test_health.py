from __future__ import annotations

from pathlib import Path

from conftest import free_port, make_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient

from events_app.app import create_app


async def test_health_reports_the_database_and_the_outbox_backlog(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "outbox_backlog": 0}


async def test_health_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    app = create_app(make_settings(tmp_path, unreachable))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
