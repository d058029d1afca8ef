"""The page as a workbench, in headless Chromium against a live `papersearch serve` on the sample:
the landing view, facets and sorting, the paper page, the reading list and its recommendations,
keyboard and phone use, axe-core on every view. Screenshots go under each test's tmp_path.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from indexer.store import layout
from tests.browser import axe_violations, checked_page, chromium, needs_chromium, screenshot, tab_to
from tests.live import live_server

pytestmark = [pytest.mark.slow, needs_chromium]

LIKED = "seed-03"  # PP-OCRv3
DISLIKED = "seed-01"


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_index_dir):
    index_dir = tmp_path_factory.mktemp("workbench") / "index"
    shutil.copytree(sample_index_dir, index_dir, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    with live_server(index_dir) as live:
        yield live


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    with checked_page(browser) as page:
        yield page


def assert_accessible(page, view: str) -> None:
    violations = axe_violations(page)
    print(f"axe-core on {view}: {len(violations)} WCAG 2 A/AA violations")
    assert violations == [], json.dumps(violations, indent=1)


def years_shown(page) -> list[int]:
    metas = page.locator("#result-list .result .meta").all_inner_texts()
    return [int(re.findall(r"\b(\d{4})\b", meta)[0]) for meta in metas]


def test_landing_shows_the_corpus_and_example_queries(server, page, tmp_path):
    page.goto(server.url)
    page.wait_for_selector("#landing-view .examples a")
    assert page.inner_text(".corpus-size") == "24 papers, published 2021–2026."
    chips = page.locator("#landing-view .chip").all_inner_texts()
    assert chips[0].split()[0] == "cs.CV" and len(chips) == 4
    screenshot(page, tmp_path, "landing")
    assert_accessible(page, "landing")
    example = page.locator("#landing-view .examples a").first
    query = example.inner_text()
    example.click()
    page.wait_for_selector("#result-list .result h2")
    assert page.input_value("#q") == query and "q=" in page.url


def test_facets_filter_and_sorting_orders_by_date(server, page, tmp_path):
    page.goto(server.url + "?q=deep+learning")
    page.wait_for_selector("#facets .facet-value")
    assert page.locator("#facets h3").all_inner_texts() == ["Year", "Category"]  # no venues in the sample
    page.wait_for_selector("#export:not([hidden])")  # this server has exports and feeds
    page.wait_for_selector("#follow:not([hidden])")
    screenshot(page, tmp_path, "results-facets")
    assert_accessible(page, "results")
    year_2022 = page.locator("#facet-year + ul a", has_text="2022")
    assert year_2022.locator(".count").inner_text() == "5"
    year_2022.click()
    page.wait_for_selector("#facets .facet-value.active")
    assert "year_from=2022" in page.url and "year_to=2022" in page.url
    page.locator("#result-list .result").nth(4).wait_for()
    assert set(years_shown(page)) == {2022} and page.locator("#result-list .result").count() == 5
    page.locator("#facets .facet-value.active").click()  # the active value turns the filter off
    page.locator("#facet-year + ul a.active").wait_for(state="detached")
    assert "year_from" not in page.url
    if page.get_attribute("#options", "open") is None:
        page.locator("#options summary").click()
    page.select_option("#sort", "date")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#status:has-text('newest first')")
    years = years_shown(page)
    assert years == sorted(years, reverse=True) and years[0] == 2026, years
    assert "sort=date" in page.url


def test_facets_and_sorting_by_keyboard_alone(server, page):
    page.goto(server.url + "?q=segmentation")
    page.wait_for_selector("#facets .facet-value")
    page.locator("#q").focus()
    tab_to(page, "#facet-category + ul a")
    category = page.evaluate("document.activeElement.querySelector('.facet-name').textContent")
    page.keyboard.press("Enter")
    page.wait_for_selector("#facets .facet-value.active")
    assert f"category={category}" in page.url
    metas = page.locator("#result-list .result .meta").all_inner_texts()
    assert metas and all(category in meta for meta in metas)


def test_paper_page_with_related_papers_citation_and_like(server, page, tmp_path):
    page.goto(server.url + "paper/" + LIKED)
    page.wait_for_selector("#paper-view .results .result h2")
    assert page.inner_text("#paper-title").startswith("PP-OCRv3")
    hrefs = page.locator("#paper-view .results .result h2 a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert len(hrefs) == 10 and f"/paper/{LIKED}" not in hrefs
    with page.expect_download() as download:
        page.click("#cite-paper")
    items = json.loads(download.value.path().read_text())
    assert items[0]["id"] == LIKED and items[0]["title"].startswith("PP-OCRv3") and items[0]["author"]
    like = page.locator("#paper-view > .links .opinion-like")
    like.click()
    assert like.get_attribute("aria-pressed") == "true" and page.inner_text("#list-count") == "1"
    screenshot(page, tmp_path, "paper")
    assert_accessible(page, "paper page")
    page.goto(server.url + "?paper=" + LIKED)  # the old address still works
    page.wait_for_selector("#paper-title")
    assert page.url.endswith("/paper/" + LIKED)


def test_reading_list_recommends_exports_and_travels_by_link(server, browser, page, tmp_path):
    page.goto(server.url + "?q=OCR")
    page.wait_for_selector("#result-list .result h2")
    first = page.locator("#result-list .result").first
    first_id = first.locator(".opinion-like").get_attribute("data-paper-id")
    first.locator(".opinion-like").click()
    second = page.locator("#result-list .result").nth(1)
    second_id = second.locator(".opinion-dislike").get_attribute("data-paper-id")
    second.locator(".opinion-dislike").click()
    stored = json.loads(page.evaluate("localStorage.getItem('papersearch.readingList.v1')"))
    assert list(stored["like"]) == [first_id] and list(stored["dislike"]) == [second_id]
    page.click("#list-link")
    page.wait_for_selector("#recommended-list .result h2")
    assert page.locator("#list-like + ul li a").all_inner_texts()[0] == stored["like"][first_id]["title"]
    recommended = page.locator("#recommended-list .opinion-like").evaluate_all(
        "bs => bs.map(b => b.dataset.paperId)")
    assert len(recommended) == 10 and not {first_id, second_id} & set(recommended)
    screenshot(page, tmp_path, "reading-list")
    assert_accessible(page, "reading list")
    with page.expect_download() as download:
        page.click("#export-list")
    exported = json.loads(download.value.path().read_text())
    assert [item["id"] for item in exported] == [first_id]
    share = page.input_value("#share-url")
    assert share.endswith(f"/list#like={first_id}&dislike={second_id}")

    with checked_page(browser) as elsewhere:  # another browser profile: an empty localStorage
        elsewhere.goto(share)
        elsewhere.wait_for_selector("#recommended-list .result h2")
        assert elsewhere.inner_text("#list-title") == "A shared reading list"
        again = elsewhere.locator("#recommended-list .opinion-like").evaluate_all(
            "bs => bs.map(b => b.dataset.paperId)")
        assert again == recommended  # the same list gives the same recommendations
        assert elsewhere.evaluate("localStorage.getItem('papersearch.readingList.v1')") is None
        elsewhere.click("#keep-shared")
        kept = json.loads(elsewhere.evaluate("localStorage.getItem('papersearch.readingList.v1')"))
        assert list(kept["like"]) == [first_id] and list(kept["dislike"]) == [second_id]
        screenshot(elsewhere, tmp_path, "shared-list")

    page.locator("#list-like + ul .remove").first.click()
    page.locator("#list-like + ul li.meta").wait_for()  # "None yet."
    assert page.inner_text("#list-count") == "1"


def test_controls_of_other_features_appear_when_the_server_has_them(server, page):
    """Export (format=), min_score and feeds: the page finds them in the server's OpenAPI schema and
    builds their URLs by parameter name."""
    page.goto(server.url + "?q=OCR&year_from=2022")
    page.wait_for_selector("#export:not([hidden])")
    assert page.locator("#export-format option").all_inner_texts() == ["bibtex", "ris", "csl-json", "csv", "jsonl"]
    page.select_option("#export-format", "ris")
    href = page.get_attribute("#export-link", "href")
    assert href.startswith("/search?") and "format=ris" in href and "q=OCR" in href and "year_from=2022" in href
    follow = page.get_attribute("#follow", "href")
    assert follow == "/feeds/search.atom?q=OCR&year_from=2022"
    assert page.get_attribute("link#feed-alternate", "href") == follow
    assert page.locator("#min-score-field").is_visible()
    page.fill("#min_score", "0.3")
    page.click("#search-form button[type=submit]")
    page.wait_for_url(re.compile(r"min_score=0\.3"))
    page.locator("#result-list .opinion-like").first.click()
    liked = page.locator("#result-list .opinion-like").first.get_attribute("data-paper-id")
    page.goto(server.url + "paper/seed-03")
    page.wait_for_selector("#follow-paper")
    assert page.get_attribute("#follow-paper", "href") == "/feeds/related/seed-03.atom"
    assert page.get_attribute("#related-export", "href") == "/papers/seed-03/related?limit=10&format=bibtex"
    page.goto(server.url + "list")
    page.wait_for_selector("#list-server-export")
    assert page.get_attribute("#follow-list", "href") == f"/feeds/recommend.atom?positive={liked}"


@pytest.mark.parametrize(("name", "view"), [("landing", ""), ("results", "?q=lightweight+OCR"),
                                            ("paper", "paper/seed-03"), ("list", "list")])
def test_every_view_fits_a_phone(server, browser, tmp_path, name, view):
    with checked_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                      device_scale_factor=2) as phone:
        phone.goto(server.url + view)
        phone.wait_for_selector("#status:not(:empty), #landing-view .examples a")
        phone.wait_for_load_state("networkidle")
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), view
        screenshot(phone, tmp_path, "phone-" + name)
