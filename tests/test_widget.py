"""The zero-configuration widget in headless Chromium, on host pages built from real article pages
(../shared/samples/article-page.html: PLOS ONE, Highwire tags; article-page-ojs.html: OJS, Dublin
Core) served from another origin than the API: the meta-tag paths (DOI, then title + abstract),
overrides, lazy rendering, themes, the iframe fallback, an unknown paper, SPA re-render, axe-core.
"""

from __future__ import annotations

import html
import json
import re
import shutil

import httpx
import pytest

from indexer.store import layout
from tests.browser import NOT_FOUND, axe_violations, checked_page, chromium, needs_chromium, screenshot, static_site
from tests.conftest import shared_sample
from tests.live import live_server

pytestmark = [pytest.mark.slow, needs_chromium]

KEY = "widget-key-0123456789"
HOSTILE_CSS = """<style>
  /* A hostile host stylesheet: the widget must neither be broken by it nor break it. */
  * { font-family: Georgia, serif; color: #b00000 !important; }
  ol, li { display: none !important; }
  a { font-size: 40px; }
  section { background: black; }
  .themed { --papersearch-accent: rgb(122, 31, 95); --papersearch-radius: 2px; }
</style>"""


def sample(name: str) -> str:
    return shared_sample(name).read_text(encoding="utf-8")


def meta_tags(page: str) -> str:
    """The article page's own <meta> tags, verbatim (its scripts and stylesheets are left behind)."""
    return "\n".join(re.findall(r"<meta\s[^>]*>", page.split("</head>", 1)[0], flags=re.I))


def meta(page: str, name: str) -> str:
    found = re.search(rf'<meta\s+name="{re.escape(name)}"[^>]*content="([^"]*)"', page, flags=re.I)
    return html.unescape(found.group(1)) if found else ""


def host_page(tags: str, body: str, css: str = HOSTILE_CSS) -> str:
    return (f'<!doctype html><html lang="en"><head><title>An article</title><link rel="icon" href="data:,">'
            f'{tags}{css}</head>'
            f'<body><main><h1 id="article-title">The article</h1><p>The article text.</p>{body}'
            '<ol id="host-list"><li>host item</li></ol></main></body></html>')


@pytest.fixture(scope="module")
def papers():
    """The two sample articles as PaperSearch records: PLOS ONE under its DOI as id, OJS under another id."""
    plos, ojs = sample("article-page.html"), sample("article-page-ojs.html")
    return {
        "plos": {"id": meta(plos, "citation_doi"), "doi": meta(plos, "citation_doi"),
                 "title": meta(plos, "citation_title"), "abstract": meta(plos, "citation_abstract"),
                 "authors": re.findall(r'name="citation_author" content="([^"]+)"', plos), "year": 2019,
                 "venue": "PLOS ONE", "categories": ["q-bio"]},
        "ojs": {"id": "firstmonday-10274", "doi": meta(ojs, "DC.Identifier.DOI"), "title": meta(ojs, "DC.Title"),
                "abstract": meta(ojs, "DC.Description"), "year": 2020, "venue": "First Monday",
                "authors": re.findall(r'name="citation_author" content="([^"]+)"', ojs), "categories": ["cs.CY"]},
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_index_dir, papers):
    index_dir = tmp_path_factory.mktemp("widget") / "index"
    shutil.copytree(sample_index_dir, index_dir, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    with live_server(index_dir, env={"PAPERSEARCH_API_KEY": KEY}) as live:
        # The OJS article is indexed without its DOI, so the widget has to fall back to its text.
        records = [papers["plos"], {**papers["ojs"], "doi": None}]
        response = httpx.post(live.endpoint("/papers"), json=records,
                              headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
        assert response.status_code == 200 and response.json()["indexed"] == 2, response.text
        yield live


@pytest.fixture(scope="module")
def site(server, tmp_path_factory):
    """Host pages on their own port: another origin than the API, as on a journal's site."""
    folder = tmp_path_factory.mktemp("host-site")
    plos, ojs = meta_tags(sample("article-page.html")), meta_tags(sample("article-page-ojs.html"))
    script = f'<script src="{server.url}widget.js" async></script>'
    embed = html.escape(f"{server.url}embed/related?doi={meta(sample('article-page.html'), 'citation_doi')}")
    pages = {
        "plos.html": host_page(plos, script),
        "ojs.html": host_page(ojs, script),
        "override.html": host_page(plos, f'<script src="{server.url}widget.js" data-paper-id="seed-03" '
                                         'data-limit="3" data-title="More like PP-OCRv3" async></script>'),
        "lazy.html": host_page(plos, '<div class="spacer" id="spacer"></div>' + script,
                               HOSTILE_CSS + "<style>.spacer { height: 3000px; }</style>"),
        "dark.html": host_page(plos, f'<div class="themed"><script src="{server.url}widget.js" data-theme="dark" '
                                     'async></script></div>'),
        "unknown.html": host_page('<meta name="citation_doi" content="10.9999/not.indexed">', script),
        "query.html": host_page(plos, f'<script src="{server.url}widget.js" data-query="lightweight OCR" '
                                      'data-mode="lexical" async></script>'),
        "iframe.html": host_page(plos, script + f'<iframe title="Related papers" width="600" height="400" '
                                                f'src="{embed}"></iframe>'),
    }
    for name, text in pages.items():
        (folder / name).write_text(text, encoding="utf-8")
    with static_site(folder) as url:
        assert url.split(":")[2] != server.url.split(":")[2]  # another origin: CORS is exercised
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def titles_in(widget) -> list[str]:
    widget.locator("li a").first.wait_for()
    return widget.locator("li a").all_inner_texts()


def api_calls(page, server) -> list[str]:
    calls: list[str] = []
    page.on("request", lambda r: calls.append(f"{r.method} {r.url}") if r.url.startswith(server.url) else None)
    return calls


def test_meta_tags_find_the_paper_by_doi_and_never_list_it(server, site, browser, papers, tmp_path):
    with checked_page(browser) as page:
        calls = api_calls(page, server)
        responses: list = []
        page.on("response", lambda r: responses.append(r) if r.url.startswith(server.url) else None)
        page.goto(site + "plos.html")
        widget = page.locator(".papersearch-widget")
        titles = titles_in(widget)
        assert len(titles) == 5 and papers["plos"]["title"] not in titles
        doi = papers["plos"]["doi"]
        assert any(c.startswith("GET") and "/papers/" + doi.replace("/", "%2F") + "/related" in c for c in calls), calls
        assert not any(c.startswith("POST") for c in calls)  # found by DOI: no text query
        # The host page's CSS did not reach inside, and the widget's did not leak out.
        assert widget.locator("li").first.is_visible()
        assert widget.locator("li a").first.evaluate("a => getComputedStyle(a).color") != "rgb(176, 0, 0)"
        assert not page.locator("#host-list li").is_visible()
        assert page.locator("#article-title").evaluate("h => getComputedStyle(h).color") == "rgb(176, 0, 0)"
        assert widget.locator("section").get_attribute("aria-labelledby") == "papersearch-heading"
        assert widget.locator("section h2").inner_text() == "Related papers"
        widget_js = next(r for r in responses if r.url.endswith("/widget.js"))
        assert widget_js.headers["cache-control"].startswith("public, max-age=")
        assert not any("set-cookie" in r.headers for r in responses)
        screenshot(page, tmp_path, "widget-plos")
        violations = axe_violations(page)
        print(f"axe-core on the PLOS host page with the widget: {len(violations)} violations")
        assert violations == [], json.dumps(violations, indent=1)


def test_without_a_known_id_the_title_and_abstract_are_the_query(server, site, browser, papers, tmp_path):
    with checked_page(browser, (NOT_FOUND,)) as page:
        calls = api_calls(page, server)
        bodies: list = []
        page.on("response", lambda r: bodies.append(r) if r.request.method == "POST" else None)
        page.goto(site + "ojs.html")
        titles = titles_in(page.locator(".papersearch-widget"))
        doi = papers["ojs"]["doi"]
        assert any("/papers/" + doi.replace("/", "%2F") in c for c in calls)  # tried the DOI first
        assert any(c.startswith("POST") and c.endswith("/related") for c in calls)
        assert len(titles) == 5 and papers["ojs"]["title"] not in titles
        # The text query did find the page's own paper: the widget dropped it.
        assert bodies and bodies[0].json()["results"][0]["title"] == papers["ojs"]["title"]
        screenshot(page, tmp_path, "widget-ojs")
        assert axe_violations(page) == []


def test_data_attributes_override_the_meta_tags(site, browser, papers):
    with checked_page(browser) as page:
        page.goto(site + "override.html")
        widget = page.locator(".papersearch-widget")
        titles = titles_in(widget)
        assert len(titles) == 3 and any("PP-OCR" in t for t in titles)
        assert not any(t.startswith("PP-OCRv3") for t in titles)
        assert widget.locator("h2").inner_text() == "More like PP-OCRv3"


def test_the_widget_renders_only_when_scrolled_into_view(server, site, browser):
    with checked_page(browser, viewport={"width": 900, "height": 700}) as page:
        calls = api_calls(page, server)
        page.goto(site + "lazy.html")
        page.wait_for_load_state("networkidle")
        widget = page.locator(".papersearch-widget")
        assert widget.get_attribute("data-state") == "waiting"
        assert not any("/papers/" in c or "/related" in c for c in calls), calls
        widget.scroll_into_view_if_needed()
        titles_in(widget)
        assert widget.get_attribute("data-state") == "done"
        assert any("/related" in c for c in calls)


def test_a_search_widget_asks_for_no_snippets(server, site, browser):
    """It lists titles, authors and years only, so the server is spared the snippets."""
    with checked_page(browser) as page:
        calls = api_calls(page, server)
        page.goto(site + "query.html")
        assert any("OCR" in t for t in titles_in(page.locator(".papersearch-widget")))
        searches = [c for c in calls if "/search?" in c]
        assert searches and all("snippets=false" in c for c in searches), calls


def test_dark_theme_and_custom_properties(site, browser, tmp_path):
    with checked_page(browser) as page:
        page.goto(site + "dark.html")
        widget = page.locator(".papersearch-widget")
        titles_in(widget)
        box = widget.locator("section")
        assert box.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(31, 32, 35)"
        assert box.evaluate("b => getComputedStyle(b).borderTopLeftRadius") == "2px"  # --papersearch-radius
        screenshot(page, tmp_path, "widget-dark")
        assert axe_violations(page) == []
    with checked_page(browser, color_scheme="dark") as page:  # data-theme "auto" follows the reader
        page.goto(site + "plos.html")
        titles_in(page.locator(".papersearch-widget"))
        background = page.locator(".papersearch-widget section").evaluate("b => getComputedStyle(b).backgroundColor")
        assert background == "rgb(31, 32, 35)"


def test_the_iframe_fallback_shows_the_same_papers(site, browser, tmp_path):
    with checked_page(browser, java_script_enabled=True) as page:
        page.goto(site + "iframe.html")
        widget_titles = titles_in(page.locator(".papersearch-widget"))
        frame = page.frame_locator("iframe")
        frame.locator("li a").first.wait_for()
        assert frame.locator("li a").all_inner_texts() == widget_titles
        assert frame.locator("script").count() == 0
        screenshot(page, tmp_path, "widget-iframe")


def test_an_unknown_paper_is_quiet_and_render_draws_again_after_a_page_change(site, browser, papers, tmp_path):
    with checked_page(browser, (NOT_FOUND,)) as page:
        page.goto(site + "unknown.html")
        widget = page.locator(".papersearch-widget")
        widget.locator("p.note", has_text="No related papers found.").wait_for()
        assert widget.locator("li").count() == 0 and "unavailable" not in widget.inner_text()
        screenshot(page, tmp_path, "widget-unknown")
        # A single-page app moves to another article, then asks the widget to draw again.
        page.evaluate("""doi => {
            document.querySelector('meta[name=citation_doi]').setAttribute('content', doi);
            window.PaperSearchWidget.render();
        }""", papers["plos"]["doi"])
        titles = titles_in(widget)
        assert len(titles) == 5 and papers["plos"]["title"] not in titles
        assert page.locator(".papersearch-widget").count() == 1  # drawn again in place, not twice
