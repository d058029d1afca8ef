"""Feeds (api/feeds.py, api/routes_feeds.py, `papersearch feed`): every document parsed by a real
parser (feedparser for Atom; JSON Feed 1.1 checked against the spec's required fields), the
threshold, the window, conditional GETs, stable entry ids and the 400s, on the 24-paper sample
plus papers added with dates around today."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import feedparser
import jsonschema
import pytest
from fastapi.testclient import TestClient

from api import feeds
from api.app import create_app
from api.cli import main as cli_main
from indexer.build import add_papers
from indexer.store import layout
from models.config import Settings
from models.paper import Paper

QUERY = "OCR text recognition"
KEY = "feed-test-key"
NOW = datetime.now(timezone.utc)


def _day(days_ago: int) -> datetime:
    return NOW - timedelta(days=days_ago)


# Papers dated around today; the sample's own papers are all older than the default window.
DATED = [
    Paper("feed-ocr-fresh", "Lightweight OCR for scanned receipts",
          "We present a compact optical character recognition model that reads text in scanned receipts "
          "and invoices, with a text detector and a text recognizer trained on synthetic documents.",
          authors=("Ada Lovelace", "Alan Turing"), year=NOW.year, categories=("cs.CV", "cs.CL"),
          extra={"date": _day(2).date().isoformat()}),
    Paper("feed-ocr-week", "Handwritten text recognition with a small transformer",
          "Handwritten text recognition (OCR for handwriting) with a lightweight transformer that reads "
          "lines of text from scanned pages.", authors=("Grace Hopper",), year=NOW.year,
          categories=("cs.CV",), extra={"date": _day(10).strftime("%b %d, %Y")}),
    Paper("feed-ocr-old", "Optical character recognition for historical newspapers",
          "An OCR system for scanned historical newspapers: text detection and text recognition of "
          "degraded print.", authors=("Emmy Noether",), year=NOW.year, categories=("cs.CV",),
          extra={"date": _day(60).date().isoformat()}),
    # No date of its own: the time it is indexed stands in for one.
    Paper("feed-ocr-undated", "Document OCR with layout-aware text recognition",
          "Text recognition of document images that reads words in layout order; an OCR pipeline for "
          "scanned forms.", authors=("Katherine Johnson",), year=NOW.year, categories=("cs.CV",),
          doi="10.1234/ocr.2026.7"),
    Paper("feed-cooking", "Slow-cooked bean stews in rural kitchens",
          "A survey of traditional recipes for slow-cooked bean stews, with notes on spices, clay pots "
          "and regional variations of the dish.", authors=("Julia Child",), year=NOW.year,
          categories=("physics.pop-ph",), extra={"date": _day(1).date().isoformat()}),
]
IN_WINDOW_ON_TOPIC = ["feed-ocr-undated", "feed-ocr-fresh", "feed-ocr-week"]  # newest first

# JSON Feed 1.1's required fields (https://www.jsonfeed.org/version/1.1/): version, title, items;
# each item an id and content_html or content_text; dates RFC 3339.
JSON_FEED_SCHEMA = {
    "type": "object", "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"}, "title": {"type": "string"},
        "home_page_url": {"type": "string"}, "feed_url": {"type": "string"},
        "items": {"type": "array", "items": {
            "type": "object", "required": ["id"],
            "anyOf": [{"required": ["content_text"]}, {"required": ["content_html"]}],
            "properties": {"id": {"type": "string"}, "url": {"type": "string"}, "title": {"type": "string"},
                           "content_text": {"type": "string"},
                           "date_published": {"type": "string", "format": "date-time"},
                           "date_modified": {"type": "string", "format": "date-time"},
                           "authors": {"type": "array", "items": {"type": "object", "required": ["name"]}},
                           "tags": {"type": "array", "items": {"type": "string"}}}}},
    },
}


@pytest.fixture(scope="module")
def dated_index_dir(tmp_path_factory, sample_index_dir, embedder):
    """The sample plus DATED, built once for this module. Tests must not write to it."""
    target = tmp_path_factory.mktemp("feeds") / "index"
    shutil.copytree(sample_index_dir, target, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    add_papers(Settings(index_dir=target), DATED, embedder=embedder)
    return target


@pytest.fixture(scope="module")
def client(dated_index_dir, embedder):
    with TestClient(create_app(Settings(index_dir=dated_index_dir), embedder=embedder)) as c:
        yield c


def _atom(response) -> feedparser.FeedParserDict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert feeds.ATOM_NS in parsed.namespaces.values()
    for name in ("id", "title", "updated"):  # RFC 4287's required feed elements
        assert parsed.feed.get(name), name
    for entry in parsed.entries:
        for name in ("id", "title", "updated", "summary", "link"):
            assert entry.get(name), (entry.get("id"), name)
    return parsed


def _json_feed(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/feed+json")
    document = json.loads(response.content)
    jsonschema.validate(document, JSON_FEED_SCHEMA, format_checker=jsonschema.FormatChecker())
    return document


def _ids(parsed) -> list[str]:
    return [entry.id.rsplit("/", 1)[-1] for entry in parsed.entries]


def test_search_feed_is_valid_atom_with_the_newest_relevant_papers(client):
    parsed = _atom(client.get("/feeds/search.atom", params={"q": QUERY}))
    assert _ids(parsed) == IN_WINDOW_ON_TOPIC  # not the old one (window), not the stew (threshold)
    first = parsed.entries[0]
    assert first.id == feeds.entry_id("feed-ocr-undated")
    assert first.link == "https://doi.org/10.1234/ocr.2026.7"  # a DOI is the paper's own page
    fresh = parsed.entries[1]
    assert [a.name for a in fresh.authors] == ["Ada Lovelace", "Alan Turing"]
    assert [t.term for t in fresh.tags] == ["cs.CV", "cs.CL"]
    assert fresh.summary.startswith("We present a compact optical character recognition")
    assert fresh.updated.startswith(_day(2).date().isoformat())
    assert parsed.entries[2].updated.startswith(_day(10).date().isoformat())  # "Mon DD, YYYY" understood
    assert parsed.feed.updated == parsed.entries[0].updated
    assert parsed.feed.title == f"PaperSearch: {QUERY}"
    assert any(link.rel == "self" for link in parsed.feed.links)


def test_json_feed_has_the_same_entries(client):
    atom = _atom(client.get("/feeds/search.atom", params={"q": QUERY}))
    document = _json_feed(client.get("/feeds/search.json", params={"q": QUERY}))
    assert [item["id"] for item in document["items"]] == [entry.id for entry in atom.entries]
    fresh = document["items"][1]
    assert fresh["authors"] == [{"name": "Ada Lovelace"}, {"name": "Alan Turing"}]
    assert fresh["tags"] == ["cs.CV", "cs.CL"]
    assert fresh["_papersearch"]["score"] >= feeds.DEFAULT_MIN_SCORE
    assert document["feed_url"].endswith("/feeds/search.json?q=OCR+text+recognition")


def test_threshold_decides_what_enters(client):
    everything = _atom(client.get("/feeds/search.atom", params={"q": QUERY, "min_score": -1}))
    assert "feed-cooking" in _ids(everything) and "feed-ocr-old" not in _ids(everything)
    scores = {item["_papersearch"]["paper_id"]: item["_papersearch"]["score"] for item in _json_feed(
        client.get("/feeds/search.json", params={"q": QUERY, "min_score": -1}))["items"]}
    assert scores["feed-cooking"] < feeds.DEFAULT_MIN_SCORE <= min(scores[i] for i in IN_WINDOW_ON_TOPIC)
    strict = _atom(client.get("/feeds/search.atom", params={"q": QUERY, "min_score": 0.99}))
    assert strict.entries == []  # a valid, empty feed: nothing is that close


def test_window_decides_how_far_back(client):
    wider = _atom(client.get("/feeds/search.atom", params={"q": QUERY, "since": "90"}))
    assert "feed-ocr-old" in _ids(wider)
    since = _day(5).date().isoformat()
    narrow = _atom(client.get("/feeds/search.atom", params={"q": QUERY, "since": since}))
    assert _ids(narrow) == ["feed-ocr-undated", "feed-ocr-fresh"]
    assert all(entry.updated[:10] >= since for entry in narrow.entries)


def test_related_and_recommend_feeds(client):
    related = _atom(client.get("/feeds/related/feed-ocr-fresh.atom"))
    assert "feed-ocr-fresh" not in _ids(related)
    assert {"feed-ocr-week", "feed-ocr-undated"} <= set(_ids(related))
    assert related.feed.title == "PaperSearch: related to Lightweight OCR for scanned receipts"
    _json_feed(client.get("/feeds/related/feed-ocr-fresh.json"))
    liked = _atom(client.get("/feeds/recommend.atom", params=[("positive", "feed-ocr-fresh"),
                                                              ("negative", "feed-cooking"), ("min_score", 0.3)]))
    assert "feed-ocr-undated" in _ids(liked)
    assert not {"feed-ocr-fresh", "feed-cooking"} & set(_ids(liked))
    _json_feed(client.get("/feeds/recommend.json", params={"positive": "feed-ocr-fresh"}))


def test_conditional_get_answers_304(client):
    url = "/feeds/search.atom?q=receipts+OCR"
    first = client.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.headers["cache-control"].startswith("public")
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    earlier = format_datetime(datetime.now(timezone.utc) - timedelta(days=1), usegmt=True)
    assert client.get(url, headers={"If-Modified-Since": earlier}).status_code == 200
    # If-None-Match decides when both are sent (RFC 9110).
    assert client.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}).status_code == 200


def test_a_write_invalidates_the_cached_feed_and_entry_ids_stay(tmp_path, dated_index_dir, embedder):
    directory = tmp_path / "index"
    shutil.copytree(dated_index_dir, directory, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    auth = {"Authorization": f"Bearer {KEY}"}
    with TestClient(create_app(Settings(index_dir=directory, api_key=KEY), embedder=embedder)) as client:
        url = f"/feeds/search.atom?q={QUERY}"
        before = client.get(url)
        changed = {**DATED[0].to_dict(), "id": "feed-ocr-fresh", "title": "Lightweight OCR for scanned receipts, v2"}
        changed.pop("paper_id")
        changed.update(changed.pop("extra"))
        assert client.post("/papers", json=[changed], headers=auth).status_code == 200
        after = client.get(url, headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
        entry = next(e for e in _atom(after).entries if e.id == feeds.entry_id("feed-ocr-fresh"))
        assert entry.title == "Lightweight OCR for scanned receipts, v2"  # same entry, new record
        assert client.get(url, headers={"If-None-Match": after.headers["etag"]}).status_code == 304


def test_cli_writes_the_document_the_server_answers(client, dated_index_dir, tmp_path):
    out = tmp_path / "feed.json"
    status = cli_main(["feed", "search", QUERY, "--index", str(dated_index_dir), "--format", "json",
                       "--since", "20", "--base-url", "http://testserver", "--out", str(out), "-q"])
    assert status == 0
    document = json.loads(out.read_bytes())
    served = client.get(document["feed_url"].removeprefix("http://testserver"))
    assert served.content == out.read_bytes()


@pytest.mark.parametrize("url", [
    "/feeds/search.atom", "/feeds/search.atom?q=", "/feeds/search.xml?q=ocr",
    "/feeds/search.atom?q=ocr&limit=0", "/feeds/search.atom?q=ocr&limit=101", "/feeds/search.json?q=ocr&mode=fuzzy",
    "/feeds/search.atom?q=ocr&min_score=abc", "/feeds/search.atom?q=ocr&min_score=nan",
    "/feeds/search.atom?q=ocr&min_score=5000", "/feeds/search.atom?q=ocr&since=yesterday",
    "/feeds/search.atom?q=ocr&since=0", "/feeds/search.atom?q=ocr&since=99999999",
    "/feeds/search.atom?q=ocr&year_from=999", "/feeds/search.atom?q=ocr&year_from=2025&year_to=2020",
    "/feeds/search.atom?q=ocr&category=" + "x" * 501, "/feeds/search.atom?q=" + "x" * 4097,
    "/feeds/recommend.atom", "/feeds/recommend.atom?positive=seed-01&negative=seed-01",
])
def test_bad_parameters_are_400_in_the_error_shape(client, url):
    response = client.get(url)
    assert response.status_code == 400, (url, response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] in ("invalid_request", "invalid_query") and error["message"]


@pytest.mark.parametrize("url", ["/feeds/related/no-such-paper.atom", "/feeds/recommend.json?positive=no-such-paper"])
def test_unknown_papers_are_404_not_an_empty_feed(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "paper_not_found"


@pytest.mark.parametrize(("text", "year", "expected"), [
    ("2026-08-21", None, "2026-08-21"), ("2026-08-21T10:00:00Z", None, "2026-08-21"),
    ("Jul 12, 2022", None, "2022-07-12"), ("Jan 29", 2026, "2026-01-29"),
    ("Thu, 21 Aug 2026 08:00:00 GMT", None, "2026-08-21"), ("sometime", 2026, "1970-01-01"),
])
def test_paper_dates(text, year, expected):
    paper = Paper("p", "t", year=year, extra={"date": text})
    assert feeds.paper_date(paper, indexed_at=0).date().isoformat() == expected


def test_since_is_days_back_from_midnight_or_a_date():
    now = datetime(2026, 8, 22, 15, 30, tzinfo=timezone.utc)
    assert feeds.parse_since(None, now) == datetime(2026, 7, 23, tzinfo=timezone.utc)
    assert feeds.parse_since("7d", now) == datetime(2026, 8, 15, tzinfo=timezone.utc)
    assert feeds.parse_since("2026-08-01", now) == datetime(2026, 8, 1, tzinfo=timezone.utc)


def test_an_index_from_before_indexed_at_dates_its_rows_by_creation_until_its_next_write(fresh_index_dir, embedder):
    import sqlite3

    from indexer.store import IndexStore

    database = sqlite3.connect(layout.db_file(fresh_index_dir))
    database.executescript("ALTER TABLE papers DROP COLUMN indexed_at; PRAGMA user_version=1;")
    database.close()
    store = IndexStore.open(fresh_index_dir)
    created = int(store._meta_get("created_at"))
    assert store.indexed_times(["seed-01", "nope"]) == {"seed-01": created}
    assert store.last_indexed() == created
    store.close()
    before = int(datetime.now(timezone.utc).timestamp())
    add_papers(Settings(index_dir=fresh_index_dir), DATED[:1], embedder=embedder)  # the write upgrades it
    store = IndexStore.open(fresh_index_dir)
    stamps = store.indexed_times(["seed-01", "feed-ocr-fresh"])
    store.close()
    assert stamps["seed-01"] >= before and stamps["feed-ocr-fresh"] >= before
