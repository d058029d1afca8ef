"""Ranked lists out over HTTP and on the command line: format=, Accept, unknown formats, --format."""

from __future__ import annotations

import json

import bibtexparser
import pytest
import rispy

from api.cli import main
from api.result_formats import MEDIA_TYPES
from tests.test_api import assert_error, client_for
from tests.test_export_round_trip import export_ids

# Every ranked list the API has: (method, path, query or JSON body).
RANKED_LISTS = [
    ("GET", "/search", {"q": "lightweight OCR", "limit": 3}),
    ("GET", "/papers/seed-03/related", {"limit": 3}),
    ("POST", "/related", {"text": "real-time object detection on mobile devices", "limit": 3}),
    ("POST", "/recommend", {"positive": ["seed-03"], "negative": ["seed-01"], "limit": 3}),
]


@pytest.fixture(scope="module")
def client(sample_index_dir, embedder):
    with client_for(sample_index_dir, embedder) as c:
        yield c


def _call(client, method, path, body, params=None, headers=None):
    if method == "GET":
        return client.get(path, params={**body, **(params or {})}, headers=headers)
    return client.post(path, json=body, params=params, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), RANKED_LISTS)
def test_every_ranked_list_exports_by_format_and_by_accept(client, method, path, body):
    expected = [r["paper_id"] for r in _call(client, method, path, body).json()["results"]]
    assert len(expected) == 3
    for fmt, media in MEDIA_TYPES.items():
        by_name = _call(client, method, path, body, params={"format": fmt})
        by_accept = _call(client, method, path, body, headers={"Accept": f"text/html;q=0.5, {media}"})
        for answer in (by_name, by_accept):
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == f"{media}; charset=utf-8"
            assert answer.headers["content-disposition"].startswith("attachment; filename=\"papersearch-")
            assert export_ids(fmt, answer.text) == expected
    # A browser's Accept (*/*) and format=json keep the JSON answer.
    browser = _call(client, method, path, body, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.headers["content-type"] == "application/json"
    assert _call(client, method, path, body, params={"format": "json"}).json()["results"]


def test_unknown_formats_are_refused_listing_the_formats(client):
    message = assert_error(client.get("/search", params={"q": "ocr", "format": "docx"}), 400, "unknown_format")
    assert "'docx'" in message and all(f"{name} ({media})" in message for name, media in MEDIA_TYPES.items())
    message = assert_error(client.get("/search", params={"q": "ocr"}, headers={"Accept": "image/png"}),
                           406, "not_acceptable")
    assert "image/png" in message and all(media in message for media in MEDIA_TYPES.values())
    assert_error(client.post("/recommend", params={"format": "pdf"}, json={"positive": ["seed-01"]}),
                 400, "unknown_format")


def test_openapi_lists_the_export_media_types(client):
    search = client.get("/openapi.json").json()["paths"]["/search"]["get"]
    assert set(MEDIA_TYPES.values()) <= set(search["responses"]["200"]["content"])
    assert "406" in search["responses"] and any(p["name"] == "format" for p in search["parameters"])


def test_cli_format_flag_for_search_related_and_recommend(sample_index_dir, capsys):
    index = ["--index", str(sample_index_dir), "-k", "3"]
    assert main(["search", "lightweight OCR", *index, "--format", "ris"]) == 0
    assert len(rispy.loads(capsys.readouterr().out)) == 3
    assert main(["related", "seed-03", *index, "--format", "bibtex"]) == 0
    library = bibtexparser.parse_string(capsys.readouterr().out)
    assert len(library.entries) == 3 and not library.failed_blocks
    assert main(["recommend", "-p", "seed-03", *index, "--format", "csl-json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert main(["search", "ocr", *index, "--format", "jsonl"]) == 0
    jsonl = capsys.readouterr().out
    assert main(["search", "ocr", *index, "--json"]) == 0
    assert capsys.readouterr().out == jsonl  # --format jsonl is --json
    assert main(["search", "ocr", *index, "--json", "--format", "csv"]) == 2
    assert "--json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["search", "ocr", *index, "--format", "docx"])
    assert exc.value.code == 2
    assert "invalid choice: 'docx'" in capsys.readouterr().err


def test_named_papers_export_in_their_order(client):
    """POST /export: a reading list (the page's liked papers) as a file."""
    ids = ["seed-17", "seed-03", "seed-01"]
    for fmt, media in MEDIA_TYPES.items():
        answer = client.post("/export", params={"format": fmt}, json={"paper_ids": ids})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(media)
        assert export_ids(fmt, answer.text) == ids
    assert [p["paper_id"] for p in client.post("/export", json={"paper_ids": ids}).json()["results"]] == ids
    message = assert_error(client.post("/export", json={"paper_ids": ["seed-01", "ghost-9"]}), 404, "paper_not_found")
    assert "ghost-9" in message
    assert_error(client.post("/export", json={"paper_ids": []}), 422, "invalid_request")
