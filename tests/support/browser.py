"""Real Chromium (Debian's package) driven by Playwright, for browser tests.

Playwright's own browser download is never used: tests launch the system Chromium and fail loudly
when it is missing (``.ci/run`` installs it).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import BrowserContext, async_playwright

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium not found: install Debian's 'chromium' package (.ci/run does)")


@asynccontextmanager
async def chromium(
    user_data_dir: Path, extra_flags: list[str] | None = None
) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_FLAGS + (extra_flags or []),
        )
        try:
            yield context
        finally:
            await context.close()
