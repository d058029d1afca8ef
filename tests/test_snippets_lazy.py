"""Snippets are computed only where someone reads them: the JSON search and JSON Lines (API and CLI),
the CLI listing and MCP keep them; BibTeX, RIS, CSL-JSON and CSV exports and the S2-compatible searches,
which have no place for one, never compute one (nor do feeds, api/feeds.py; the widget asks for none:
tests/test_widget.py). A counting wrapper around the real Highlighter.snippet tells which."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from models.config import Settings
from search import highlight

QUERY = "lightweight OCR"


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """The abstracts a snippet was made for, in this test (the real function still does the work)."""
    calls: list[str] = []
    real = highlight.Highlighter.snippet

    def counted(self, abstract):
        calls.append(abstract)
        return real(self, abstract)

    monkeypatch.setattr(highlight.Highlighter, "snippet", counted)
    return calls


@pytest.fixture(scope="module")
def client(sample_index_dir, embedder):
    with TestClient(create_app(Settings(index_dir=sample_index_dir), embedder=embedder)) as c:
        yield c


def test_the_json_search_makes_them_by_default_and_never_when_told_not_to(client, made):
    results = client.get("/search", params={"q": QUERY, "limit": 3, "mode": "lexical"}).json()["results"]
    assert len(made) == 3 and "<mark>" in results[0]["snippet"]
    client.get("/search", params={"q": QUERY, "limit": 3, "snippets": "false"})
    assert len(made) == 3


@pytest.mark.parametrize("fmt", ["bibtex", "ris", "csl-json", "csv"])
def test_exports_without_a_place_for_a_snippet_compute_none(client, made, fmt):
    response = client.get("/search", params={"q": QUERY, "limit": 3, "format": fmt})
    assert response.status_code == 200 and "OCR" in response.text
    assert made == []


def test_json_lines_export_carries_them(client, made):
    response = client.get("/search", params={"q": QUERY, "limit": 2, "format": "jsonl", "mode": "lexical"})
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(made) == 2 and all("<mark>" in line["snippet"] for line in lines)


def test_s2_searches_compute_none(client, made):
    title = client.get("/search", params={"q": QUERY, "limit": 1, "snippets": "false"}).json()["results"][0]["title"]
    for path, query in (("/graph/v1/paper/search", QUERY), ("/graph/v1/paper/search/bulk", QUERY),
                        ("/graph/v1/paper/search/match", title)):
        response = client.get(path, params={"query": query, "fields": "title,abstract"})
        assert response.status_code == 200 and "OCR" in response.text, (path, response.text)
    assert made == []


def test_the_cli_makes_them_for_people_and_json_lines_only(sample_index_dir, made, capsys):
    index = ["--index", str(sample_index_dir), "-k", "2", "--mode", "lexical"]
    assert main(["search", QUERY, *index]) == 0
    assert len(made) == 2 and "OCR" in capsys.readouterr().out
    assert main(["search", QUERY, *index, "--format", "bibtex"]) == 0
    assert main(["search", QUERY, *index, "--format", "csv"]) == 0
    assert len(made) == 2 and "@" in capsys.readouterr().out
    assert main(["search", QUERY, *index, "--format", "jsonl"]) == 0
    assert len(made) == 4 and "<mark>" in capsys.readouterr().out
