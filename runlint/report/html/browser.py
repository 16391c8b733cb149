"""Open a report in the distribution's headless Chromium (for the browser test, the screenshot
script and the report bench; users only need a browser of their own).

Playwright drives ``/usr/bin/chromium`` (Debian's ``chromium`` package): no browser is ever
downloaded, and each page gets a fresh profile that is deleted afterwards.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "FLAGS", "headless_page", "missing"]

CHROMIUM = Path("/usr/bin/chromium")

#: A quiet headless browser: no GPU, no background network, no first-run or sync chatter.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def missing() -> str | None:
    """Why no page can be opened here (no Chromium, no Playwright), or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright)"
    return None


@contextmanager
def headless_page(width: int = 1400, height: int = 1000) -> Iterator[tuple[Any, list[str]]]:
    """A new Playwright page of that viewport, and the list its console errors, page errors and
    failed requests are appended to as they happen."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile,  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            args=list(FLAGS),
            headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            page = ctx.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request {r.url}"))
            yield page, errors
        finally:
            ctx.close()
