"""The search page and the widget in headless Chromium, against a live `papersearch serve`.

Needs Debian's chromium (/usr/bin/chromium) and the Playwright Python package; `.ci/run` installs
both. Playwright drives the system browser: `playwright install` is never run.
Set PAPERSEARCH_SCREENSHOTS=DIR to keep screenshots of the page and the widget.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from indexer.store import layout
from tests.browser import tab_to
from tests.live import live_server

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
KEY = "web-key-0123456789"
# Generous waits: on a loaded 2-core machine the first query also warms up the model.
WAIT_MS = 120_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is absent: apt-get install -y chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is absent: pip install playwright")


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_index_dir):
    index_dir = tmp_path_factory.mktemp("web") / "index"
    shutil.copytree(sample_index_dir, index_dir, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    with live_server(index_dir, env={"PAPERSEARCH_API_KEY": KEY}) as live:
        yield live


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that records script errors; the test fails if any occurred."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
    assert not errors, errors


def screenshot(page, name: str) -> None:
    folder = os.environ.get("PAPERSEARCH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def search_in_page(page, query: str) -> list[str]:
    page.fill("#q", query)
    page.keyboard.press("Enter")
    page.wait_for_selector(".result h2")
    return page.locator("#result-list .result h2").all_inner_texts()


# --- the search page ------------------------------------------------------------------------------


def test_typing_a_query_shows_pp_ocr_papers(server, page):
    page.goto(server.url)
    titles = search_in_page(page, "lightweight OCR")
    assert sum("PP-OCR" in t for t in titles[:3]) >= 2, titles
    assert "lightweight+OCR" in page.url or "lightweight%20OCR" in page.url
    assert "results for" in page.inner_text("#status")
    first = page.locator("#result-list .result").first
    assert first.locator(".meta").inner_text().strip() and first.locator(".category").count() >= 1
    assert first.locator(".abstract").inner_text().strip()
    screenshot(page, "page-results")


def test_keyboard_only_search_and_paper_view(server, page):
    page.goto(server.url)
    page.locator("body").click(position={"x": 5, "y": 5})  # focus away from the box
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("protein folding")
    page.keyboard.press("Enter")
    page.wait_for_selector(".result h2")
    tab_to(page, "#result-list .result h2 a")  # the first result's title link
    title = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.wait_for_selector("#paper-view h3#related")
    assert page.evaluate("document.activeElement.id") == "paper-title"
    assert page.inner_text("#paper-title") == title
    page.go_back()
    page.wait_for_selector("#result-list .result h2")
    assert page.input_value("#q") == "protein folding"


def test_paper_view_shows_related_papers_but_not_itself(server, page):
    page.goto(server.url + "?paper=seed-03")
    page.wait_for_selector("#paper-view .results .result h2")
    assert page.inner_text("#paper-title").startswith("PP-OCRv3")
    related = page.locator("#paper-view .results .result h2 a")
    hrefs = [related.nth(i).get_attribute("href") for i in range(related.count())]
    assert len(hrefs) == 10 and "/paper/seed-03" not in hrefs
    assert "OCR" in related.first.inner_text()
    screenshot(page, "page-paper")


def test_filters_and_more_results(server, page):
    page.goto(server.url + "?q=deep+learning&year_from=2022")
    page.wait_for_selector(".result h2")
    assert page.locator("#options").get_attribute("open") is not None  # filters in the URL are shown
    assert page.input_value("#year_from") == "2022"
    before = page.locator("#result-list .result").count()
    page.click("#more")
    # (wait_for_function would need 'unsafe-eval', which the page's CSP rightly forbids)
    page.locator("#result-list .result").nth(before).wait_for()
    metas = page.locator("#result-list .meta").all_inner_texts()
    years = [int(y) for meta in metas for y in re.findall(r"\b(20\d\d)\b", meta)]
    assert len(metas) == 14 and len(years) == 14 and min(years) >= 2022, metas  # 14 sample papers since 2022
    assert page.locator("#more").is_hidden()


def test_text_from_the_index_never_runs_as_html(server, page):
    hostile = {"id": "xss-1", "title": 'Tricky <img src=x onerror="window.__xss=1"> OCR title',
               "abstract": "<script>window.__xss=2</script> An abstract about <b>OCR</b>.",
               "authors": ['<img src=y onerror="window.__xss=3">'], "categories": ["<i>cs.CV</i>"],
               "url": "javascript:window.__xss=4", "year": 2024}
    response = httpx.post(server.endpoint("/papers"), json=[hostile],
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
    assert response.status_code == 200, response.text
    page.goto(server.url)
    search_in_page(page, "Tricky OCR title img onerror")
    result = page.locator("#result-list .result", has_text="Tricky").first
    assert '<img src=x onerror="window.__xss=1">' in result.locator("h2").inner_text()
    assert result.locator("img, script, b, i").count() == 0
    assert result.locator("a", has_text="Source").count() == 0  # a javascript: url is never a link
    page.goto(server.url + "?paper=xss-1")
    page.wait_for_selector("#paper-title")
    assert page.locator("#paper-view img, #paper-view script").count() == 0
    assert page.evaluate("window.__xss") is None


def test_snippet_marks_render_and_nothing_else_does(server, page):
    """Lexical search sends `snippet`: escaped HTML with <mark>. Only the marks may become elements."""
    def fake_search(route):
        body = {"query": "ocr", "mode": "dense", "limit": 10, "offset": 0, "took_ms": 1.0, "next_offset": None,
                "results": [{"paper_id": "p1", "title": "T", "abstract": "plain abstract", "authors": [], "year": 2024,
                             "categories": [], "venue": None, "url": None, "doi": None, "extra": {}, "score": 0.5,
                             "rank": 1, "snippet": "Fast <mark>OCR</mark> &amp; &lt;b&gt;bold&lt;/b&gt; "
                                                   "<img src=z onerror=\"window.__xss=5\"> <mark>text</mark>"}]}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(re.compile(r"/search\?"), fake_search)
    page.goto(server.url + "?q=ocr")
    page.wait_for_selector(".result .abstract mark")
    abstract = page.locator(".result .abstract").first
    assert abstract.locator("mark").all_inner_texts() == ["OCR", "text"]
    assert abstract.locator("img, b").count() == 0
    assert "& <b>bold</b>" in abstract.inner_text() and "<img src=z" in abstract.inner_text()
    assert page.evaluate("window.__xss") is None


def test_page_reads_well_on_a_phone(server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server.url + "?q=lightweight+OCR")
        page.wait_for_selector(".result h2")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.evaluate("parseFloat(getComputedStyle(document.getElementById('q')).fontSize)") >= 16
        screenshot(page, "page-phone")
    finally:
        context.close()


# --- the widget -----------------------------------------------------------------------------------

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>A blog</title>
<style>
  /* A hostile host stylesheet: the widget must neither be broken by it nor break it. */
  * {{ font-family: Georgia, serif; color: #b00000 !important; }}
  ol, li {{ display: none !important; }}
  a {{ font-size: 40px; }}
  section {{ background: black; }}
</style></head>
<body>
  <h1 id="blog-title">My reading notes</h1>
  <p>Papers like PP-OCRv3:</p>
  <script src="{api}widget.js" data-paper-id="seed-03" data-limit="5" async></script>
  <p>Papers about protein folding:</p>
  <script src="{api}widget.js" data-query="protein structure prediction" data-limit="3" async></script>
  <p>A paper that does not exist:</p>
  <script src="{api}widget.js" data-paper-id="no-such-paper" async></script>
  <ol id="host-list"><li>host item</li></ol>
</body></html>
"""


@pytest.fixture(scope="module")
def host_site(server, tmp_path_factory):
    """The host page on another origin (its own port), as a site embedding the widget would be."""
    folder = tmp_path_factory.mktemp("host-site")
    (folder / "index.html").write_text(HOST_PAGE.format(api=server.url))
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_widget_renders_related_papers_on_another_site(server, host_site, browser):
    assert host_site.split(":")[2] != server.url.split(":")[2]  # a different origin: CORS is exercised
    context = browser.new_context(viewport={"width": 900, "height": 1200})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(host_site)
        widgets = page.locator(".papersearch-widget")
        # Playwright's CSS locators pierce open shadow roots.
        widgets.nth(2).wait_for()
        by_id, by_query, missing = widgets.nth(0), widgets.nth(1), widgets.nth(2)
        by_id.locator("li a").first.wait_for()
        by_query.locator("li a").first.wait_for()
        titles = by_id.locator("li a").all_inner_texts()
        assert len(titles) == 5 and sum("PP-OCR" in t for t in titles) >= 1, titles
        assert not any(t.startswith("PP-OCRv3") for t in titles)  # never the paper itself
        assert by_id.locator("h2").inner_text() == "Related papers"
        assert any("Fold" in t for t in by_query.locator("li a").all_inner_texts())
        assert by_query.locator("li").count() == 3
        missing.locator("p.note", has_text="No related papers found.").wait_for()  # quiet, not an error
        # The host's CSS did not reach inside (items visible, links not red) ...
        assert by_id.locator("li").first.is_visible()
        color = by_id.locator("li a").first.evaluate("a => getComputedStyle(a).color")
        assert color != "rgb(176, 0, 0)"
        # ... and the widget's CSS did not leak out.
        assert not page.locator("#host-list li").is_visible()
        assert page.locator("#blog-title").evaluate("h => getComputedStyle(h).color") == "rgb(176, 0, 0)"
        screenshot(page, "widget-host-page")
    finally:
        context.close()
    assert not errors, errors


def test_api_docs_render_without_internet(server, browser):
    context = browser.new_context()
    origin = server.url.rstrip("/")
    leaving: list[tuple[str, str]] = []

    def offline(route):  # as on a machine without internet: only this server answers
        if route.request.url.startswith(origin):
            route.continue_()
        else:
            leaving.append((route.request.resource_type, route.request.url))
            route.abort()

    context.route("**/*", offline)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(server.endpoint("/docs"))
        page.wait_for_selector(".opblock-summary-path")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert {"/search", "/recommend", "/papers"} <= {p.strip() for p in paths}
        assert not leaving, leaving
        screenshot(page, "api-docs")
        page.goto(server.endpoint("/redoc"))  # the other rendering of the same spec
        page.get_by_text("/papers/{paper_id}/related").first.wait_for()
        # Only ReDoc's "API docs by Redocly" badge image points outside; it is missed, not needed.
        assert all(kind == "image" for kind, _ in leaving), leaving
    finally:
        context.close()
