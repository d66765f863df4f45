"""Public pages stay light on slow links: under 100 KB gzipped with what they load, nothing from outside."""

from __future__ import annotations

import gzip
import re

from conftest import add_event
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

BUDGET_BYTES = 100 * 1024
RESOURCE = re.compile(r'<(?:link[^>]+href|script[^>]+src|img[^>]+src)="([^"]+)"')


async def test_public_pages_weigh_under_100_kb_and_load_nothing_from_outside(
    client: AsyncTestClient[Litestar], session_maker: async_sessionmaker[AsyncSession]
) -> None:
    await add_event(session_maker)
    for path in ("/", "/events/launch", "/events/launch/register"):
        page = await client.get(path)
        assert page.status_code == 200
        resources = RESOURCE.findall(page.text)
        assert resources, path
        total = len(gzip.compress(page.content))
        for url in resources:
            assert url.startswith("/"), f"{path} loads {url} from outside"
            asset = await client.get(url)
            assert asset.status_code == 200, url
            total += len(gzip.compress(asset.content))
        assert total < BUDGET_BYTES, f"{path} weighs {total} bytes gzipped"
