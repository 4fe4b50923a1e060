"""Headless Chromium for the HTML tests: Playwright's Python package driving the system browser.

No browser is downloaded: the executable is ``$DMBP_CHROMIUM`` or the first of
:data:`CANDIDATES` on ``PATH``. :func:`chromium_or_skip` skips the test, saying why, when
there is none (or when Playwright is not installed).
"""

import os
import shutil
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

#: Where the screenshots go (CI keeps this folder as an artifact); ``$DMBP_TEST_ARTIFACTS`` overrides.
ARTIFACTS = Path(os.environ.get("DMBP_TEST_ARTIFACTS", Path(__file__).parents[1] / "artifacts"))


def chromium_or_skip() -> str:
    """The Chromium executable, or skip the test when there is none or Playwright is missing."""
    executable = os.environ.get("DMBP_CHROMIUM") or next(filter(None, map(shutil.which, CANDIDATES)), None)
    if executable is None:
        pytest.skip(f"no Chromium: none of {', '.join(CANDIDATES)} on PATH and DMBP_CHROMIUM unset")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    return executable


def open_page(executable: str, path: Path, screenshot: str) -> dict:
    """Load ``path`` in headless Chromium with every ``<details>`` opened; screenshot it.

    Returns
    -------
    dict
        ``errors``: console errors and page errors; ``requests``: URLs other than the page
        itself that it asked for; ``images``: ``naturalWidth`` of every image; ``rows``: the row
        count of the top-level ``table.models``, and ``text``: the page's visible text.
    """
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = path.resolve().as_uri()
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url) if r.url not in (url,) and
                    not r.url.startswith("data:") else None)
            page.goto(url, wait_until="load")
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
            found = page.evaluate("""() => ({
                images: [...document.images].map(i => i.complete ? i.naturalWidth : 0),
                rows: document.querySelectorAll('table.models > tbody > tr').length,
                text: document.body.innerText})""")
        finally:
            browser.close()
    return {"errors": errors, "requests": requests, **found}
