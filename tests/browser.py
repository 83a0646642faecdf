"""Debian's chromium driven by Playwright, for the console's browser tests: no browser
download (``playwright install`` is never run), the system's /usr/bin/chromium instead.
Skips with the reason on a developer machine without it; fails in CI (``CI=true``),
where .ci/run installs it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the console's browser tests (.ci/run installs it)")
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless; closed on exit."""
    if not CHROMIUM.exists():
        _missing("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    # Playwright gives every launch a fresh temporary profile (its own --user-data-dir,
    # which it refuses as an argument), removed when the browser closes.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Render what ``page`` shows as a PNG. With STRONGROOM_SCREENSHOTS=1 it is saved as
    docs/console/<name>.png (docs/console.md shows them); otherwise it is only rendered,
    so a test run leaves the working tree as it found it."""
    data = page.screenshot(full_page=full_page)
    assert data.startswith(b"\x89PNG"), f"{name}: the browser rendered no PNG"
    if os.environ.get("STRONGROOM_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(data)


def text_of(page: Any) -> str:
    """The page's HTML, for checks of what it must (not) contain."""
    return str(page.content())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)
