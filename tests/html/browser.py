"""Headless Chromium for the HTML tests: Playwright's Python package driving the system browser,
or, without Playwright, Chromium's own ``--headless --dump-dom`` and ``--screenshot``.

No browser is downloaded: the executable is ``$DMBP_CHROMIUM`` or the first of
:data:`CANDIDATES` on ``PATH``. :func:`chromium_or_skip` skips the test, saying why, when
there is none.
"""

import base64
import io
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

#: Where the screenshots go (CI keeps this folder as an artifact); ``$DMBP_TEST_ARTIFACTS`` overrides.
ARTIFACTS = Path(os.environ.get("DMBP_TEST_ARTIFACTS", Path(__file__).parents[1] / "artifacts"))


def chromium_or_skip() -> str:
    """The Chromium executable, or skip the test when there is none."""
    executable = os.environ.get("DMBP_CHROMIUM") or next(filter(None, map(shutil.which, CANDIDATES)), None)
    if executable is None:
        pytest.skip(f"no Chromium: none of {', '.join(CANDIDATES)} on PATH and DMBP_CHROMIUM unset")
    return executable


def open_page(executable: str, path: Path, screenshot: str, driver: str = "playwright") -> dict:
    """Load ``path`` in headless Chromium with every ``<details>`` opened; screenshot it.

    ``driver`` is ``"playwright"`` (falls back to ``"cli"`` when Playwright is not installed)
    or ``"cli"``.

    Returns
    -------
    dict
        ``errors``: console errors and page errors; ``requests``: URLs other than the page
        itself that it asked for; ``images``: ``naturalWidth`` of every image; ``rows``: the row
        count of the top-level ``table.models``, and ``text``: the page's visible text.
        Without Playwright (:func:`_open_with_cli`) the images are measured by decoding them and
        the requests are not observed (``[]``).
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        driver = "cli"
    if driver == "cli":
        return _open_with_cli(executable, path, screenshot)
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


def _open_with_cli(executable: str, path: Path, screenshot: str) -> dict:
    """:func:`open_page` through Chromium's command line: the DOM after load, and a screenshot."""
    base = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
    url = path.resolve().as_uri()
    dump = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True)
    subprocess.run([*base, f"--screenshot={ARTIFACTS / screenshot}", "--window-size=1280,3000", url],
                   capture_output=True, timeout=120, check=True)
    dom = _Dom()
    dom.feed(dump.stdout)
    errors = [line for line in dump.stderr.splitlines() if "CONSOLE" in line]
    return {"errors": errors, "requests": [], "images": [_natural_width(src) for src in dom.images],
            "rows": dom.rows, "text": " ".join(dom.text)}


def _natural_width(src: str) -> int:
    """Width of an inlined PNG (0 when it is not one or does not decode)."""
    if not src.startswith("data:image/png;base64,"):
        return 0
    try:
        return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).width
    except (OSError, ValueError):
        return 0


class _Dom(HTMLParser):
    """Image sources, body rows of the top-level ``table.models`` and text of a serialised DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.text: list[str] = []
        self.rows = 0
        self._tables: list[str] = []
        self._section = ""
        self._hidden = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        self._hidden = tag in ("style", "title")
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        elif tag == "table":
            self._tables.append(attrs.get("class") or "")
        elif tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr" and self._tables[-1:] == ["models"] and self._section == "tbody":
            self.rows += 1

    def handle_endtag(self, tag: str) -> None:
        self._hidden = False
        if tag == "table" and self._tables:
            self._tables.pop()

    def handle_data(self, data: str) -> None:
        if data.strip() and not self._hidden:
            self.text.append(data.strip())
