"""Facets, date order, the corpus summary and the widget's no-JS embed, over the 24-paper sample.

The sample is small enough that every ranking's candidates (FACET_DEPTH = 100 per side) are all
24 papers, so the expected counts are computed straight from the sample file.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.records import to_paper
from models.config import Settings
from models.query import Filters
from tests.conftest import SAMPLE

# The sample as the record decoder reads it (the file names a paper's field "category").
RECORDS = [to_paper(json.loads(line)) for line in SAMPLE.read_text().splitlines() if line.strip()]


def expected(papers, field):
    values = Counter()
    for paper in papers:
        if field == "year":
            values[paper.year] += 1
        else:
            values.update(set(paper.categories))
    return values


@pytest.fixture(scope="module")
def client(sample_index_dir, embedder):
    with TestClient(create_app(Settings(index_dir=sample_index_dir), embedder=embedder)) as c:
        yield c


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_facet_counts_cover_the_candidates(sample_engine, mode):
    query = "deep learning model" if mode != "lexical" else "model"
    hits, counts = sample_engine.search_with_facets(query, limit=5, mode=mode, facets=("year", "category", "venue"))
    assert len(hits) == 5
    if mode == "lexical":  # BM25 candidates are the papers holding a query term
        matching = [p for p in RECORDS if "model" in f"{p.title} {p.abstract}".lower()]
    else:
        matching = RECORDS
    got_years = {item["value"]: item["count"] for item in counts["year"]}
    if mode != "lexical":
        assert got_years == dict(expected(matching, "year"))
        assert {i["value"]: i["count"] for i in counts["category"]} == dict(expected(matching, "category"))
    else:
        assert 0 < sum(got_years.values()) <= len(matching)
    assert [i["value"] for i in counts["year"]] == sorted(got_years, reverse=True)  # newest first
    category_counts = [i["count"] for i in counts["category"]]
    assert category_counts == sorted(category_counts, reverse=True)  # most frequent first
    assert counts["venue"] == []  # the sample has no venues


def test_facets_follow_the_filters(sample_engine):
    _, counts = sample_engine.search_with_facets("segmentation", filters=Filters(year_from=2022),
                                                 facets=("year",), mode="hybrid")
    assert counts["year"] and all(item["value"] >= 2022 for item in counts["year"])
    assert sum(i["count"] for i in counts["year"]) == sum(1 for p in RECORDS if p.year >= 2022)


def test_sort_by_date_pages_newest_first_without_overlap(sample_engine):
    pages = [sample_engine.search_with_facets("neural network", limit=8, offset=o, mode="hybrid", sort="date")[0]
             for o in (0, 8, 16)]
    hits = [h for page in pages for h in page]
    years = [h.paper.year for h in hits]
    assert len(hits) == 24 and len({h.paper.paper_id for h in hits}) == 24
    assert years == sorted(years, reverse=True)
    relevance = sample_engine.search("neural network", limit=24, mode="hybrid")
    assert [h.paper.paper_id for h in relevance] != [h.paper.paper_id for h in hits]
    # Within one year, the ranking's own order is kept.
    score_by_id = {h.paper.paper_id: h.score for h in relevance}
    for year in set(years):
        same = [score_by_id[h.paper.paper_id] for h in hits if h.paper.year == year]
        assert same == sorted(same, reverse=True)


def test_search_api_returns_facets_and_sort(client):
    body = client.get("/search", params={"q": "OCR", "facets": "year,category", "sort": "date",
                                          "mode": "hybrid"}).json()
    assert set(body["facets"]) == {"year", "category"} and body["sort"] == "date"
    assert {i["value"]: i["count"] for i in body["facets"]["year"]} == dict(expected(RECORDS, "year"))
    years = [hit["year"] for hit in body["results"]]
    assert years == sorted(years, reverse=True)
    plain = client.get("/search", params={"q": "OCR"}).json()
    assert plain["facets"] is None and plain["sort"] == "relevance"


def test_bad_facets_and_sort_are_clear_errors(client):
    response = client.get("/search", params={"q": "OCR", "facets": "year,colour"})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "'colour'" in message and "year, category, venue" in message
    response = client.get("/search", params={"q": "OCR", "sort": "oldest"})
    assert response.status_code == 422 and "sort" in response.json()["error"]["message"]


def test_corpus_summary(client):
    body = client.get("/corpus").json()
    years = [p.year for p in RECORDS]
    assert body["papers"] == len(RECORDS) and (body["year_min"], body["year_max"]) == (min(years), max(years))
    assert body["categories"][0] == {"value": "cs.CV", "count": expected(RECORDS, "category")["cs.CV"]}
    titles = [p.title for p in RECORDS]
    assert 1 <= len(body["examples"]) <= 4
    assert all(any(example.split()[0] in title for title in titles) for example in body["examples"])


def test_embed_lists_related_papers_never_the_paper_itself(client):
    response = client.get("/embed/related", params={"paper_id": "seed-03", "limit": 4, "theme": "dark"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.text.count("<li>") == 4 and "PP-OCRv3" not in response.text
    assert 'data-theme="dark"' in response.text and "<script" not in response.text
    assert "frame-ancestors *" in response.headers["content-security-policy"]
    assert response.headers["cache-control"].startswith("public, max-age=")
    assert "set-cookie" not in response.headers


def test_embed_by_title_and_abstract_drops_the_pages_own_paper(client):
    own = next(p for p in RECORDS if p.title.startswith("PP-OCRv3"))
    response = client.get("/embed/related", params={"title": own.title, "text": own.abstract[:1000],
                                                    "doi": "10.9999/unknown", "limit": 5})
    assert response.text.count("<li>") == 5 and own.title not in response.text
    assert "OCR" in response.text


def test_embed_for_an_unknown_paper_is_a_quiet_empty_list(client):
    response = client.get("/embed/related", params={"doi": "10.9999/not-indexed"})
    assert response.status_code == 200 and "No related papers found." in response.text
    assert client.get("/embed/related", params={"limit": 0}).status_code == 422
    assert client.get("/embed/related", params={"theme": "neon"}).status_code == 422
