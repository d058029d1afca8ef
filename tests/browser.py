"""Shared parts of the browser tests (test_web*.py, test_widget*.py): Debian's chromium driven by
Playwright, axe-core for WCAG checks, screenshots kept under the test's temporary folder.

axe-core is the npm package's axe.min.js: $AXE_CORE_JS, else /tmp/axe/node_modules/axe-core/, else
this checkout's node_modules/ (CI runs `npm install axe-core`); the WCAG checks skip without it.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
# Generous waits: on a loaded 2-core machine the first query also warms up the model.
WAIT_MS = 120_000
AXE_PLACES = (Path("/tmp/axe/node_modules/axe-core/axe.min.js"), ROOT / "node_modules" / "axe-core" / "axe.min.js")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="Debian chromium is absent: apt-get install -y chromium")


def axe_source() -> str:
    """axe.min.js, or skip the calling test when it is nowhere to be found."""
    places = [Path(os.environ["AXE_CORE_JS"])] if os.environ.get("AXE_CORE_JS") else []
    for place in [*places, *AXE_PLACES]:
        if place.is_file():
            return place.read_text(encoding="utf-8")
    pytest.skip("axe-core is absent: npm install axe-core (or set AXE_CORE_JS to its axe.min.js)")


def axe_violations(page) -> list[dict]:
    """WCAG 2.0/2.1 A and AA violations on the page as it is now (axe-core, open shadow roots included).

    axe goes in through the DevTools protocol (page.evaluate), which a strict CSP does not block,
    so the page under test keeps its own policy.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result = page.evaluate("""async (tags) => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""", WCAG_TAGS)
    return result


def tab_to(page, selector: str, most: int = 40) -> None:
    """Press Tab until the focused element matches `selector`; fail when `most` presses do not get there."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{selector} cannot be reached with Tab")


def screenshot(page, folder: Path, name: str) -> Path:
    """A full-page screenshot under `folder` (the test's tmp_path); the path is printed for the run's log."""
    path = Path(folder) / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


@contextmanager
def chromium() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is absent: pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# Chromium logs every 404 answer as a console error; where a test expects one (the widget asking
# for a paper the index lacks), it passes this to checked_page.
NOT_FOUND = "the server responded with a status of 404"


@contextmanager
def checked_page(browser, expected_errors: tuple[str, ...] = (), **context_options) -> Iterator:
    """A fresh page in its own context that records script errors (CSP refusals included); fails if any
    other than the console messages holding one of `expected_errors`."""
    context = browser.new_context(**{"viewport": {"width": 1100, "height": 900}, **context_options})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(message) -> None:
        if message.type == "error" and not any(text in message.text for text in expected_errors):
            errors.append(message.text)

    page.on("console", console)
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """`folder` served on its own port (another origin than the API), as a site embedding the widget."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
