"""Versions of one work (same DOI, same arXiv id, or same title + first author a year apart) shown once."""

from __future__ import annotations

import json
from contextlib import closing

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from indexer.store import IndexStore
from models.config import Settings
from models.identifiers import work_key
from models.paper import Paper
from models.query import Filters
from search import versions
from search.engine import SearchEngine
from tests.test_identifiers import ID_RECORDS, sample_plus

# What the title rule must not join: the same title and first author three years later, and the
# same title by another first author in the same year.
NOT_VERSIONS = [
    {"id": "vaswani-2020", "title": "Attention Is All You Need", "authors": ["Ashish Vaswani"], "year": 2020,
     "abstract": "An invited talk revisiting attention-only sequence models for translation."},
    {"id": "other-2017", "title": "Attention is all you need", "authors": ["Somebody Else"], "year": 2017,
     "abstract": "An unrelated note on attention in reading comprehension by another author."},
]
WORKS = {("1706.03762", "nips-2017-7181"), ("cvpr-2016-90", "resnet-preprint"), ("hep-th/9711200", "ijtp-38-1113")}


@pytest.fixture(scope="module")
def versions_index(tmp_path_factory, sample_index_dir, embedder):
    return sample_plus(tmp_path_factory, sample_index_dir, embedder, ID_RECORDS + NOT_VERSIONS, "versions")


@pytest.fixture(scope="module")
def engine(versions_index, embedder):
    with closing(SearchEngine.open(Settings(index_dir=versions_index), encoder=embedder)) as engine:
        yield engine


def _ids(hits):
    return [hit.paper.paper_id for hit in hits]


def test_work_key_compares_titles_and_first_surnames():
    a = Paper("a", "Deep Residual Learning for Image Recognition", authors=("Kaiming He",), year=2015)
    b = Paper("b", "Deep residual learning for image recognition.", authors=("He, K.",), year=2015)
    c = Paper("c", "D{\\'e}ep Residual Learning for Image Recognition", authors=("K. He",), year=2015)
    assert work_key(a) == work_key(b) == "deep residual learning for image recognition|he|2015"
    assert work_key(c) is not None
    assert work_key(Paper("d", "Introduction", authors=("A. B",), year=2015)) is None  # too short to join
    assert work_key(Paper("e", a.title, authors=("Kaiming He",))) is None  # no year


def test_works_found_by_doi_arxiv_id_and_title(versions_index):
    store = IndexStore.open(versions_index)
    try:
        ids = [pid for pair in WORKS for pid in pair] + ["vaswani-2020", "other-2017", "seed-01"]
        groups = versions.works(store, ids)
    finally:
        store.close()
    for pair in WORKS:
        assert groups[pair[0]] == groups[pair[1]] == tuple(sorted(pair))
    assert groups["vaswani-2020"] == ("vaswani-2020",) and groups["other-2017"] == ("other-2017",)
    assert groups["seed-01"] == ("seed-01",)


def test_search_shows_a_work_once_with_its_versions(engine):
    hits = engine.search("attention only transformer sequence transduction", limit=10, mode="dense")
    ids = _ids(hits)
    assert len({"1706.03762", "nips-2017-7181"} & set(ids)) == 1
    shown = next(h for h in hits if h.paper.paper_id in {"1706.03762", "nips-2017-7181"})
    assert set(shown.versions) | {shown.paper.paper_id} == {"1706.03762", "nips-2017-7181"}
    every = engine.search("attention only transformer sequence transduction", limit=10, mode="dense",
                          filters=Filters(all_versions=True))
    assert {"1706.03762", "nips-2017-7181"} <= set(_ids(every))
    assert len(ids) == 10 and [h.rank for h in hits] == list(range(1, 11))


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_pages_never_repeat_a_work_and_match_one_long_page(engine, mode):
    query = "deep residual networks attention supergravity"
    whole = engine.search(query, limit=12, mode=mode, snippets=False)
    paged = [hit for offset in range(0, 12, 3)
             for hit in engine.search(query, limit=3, offset=offset, mode=mode, snippets=False)]
    assert _ids(paged) == _ids(whole)
    groups = [tuple(sorted((h.paper.paper_id, *h.versions))) for h in paged]
    assert len(groups) == len(set(groups))


def test_related_and_recommend_leave_out_the_inputs_versions(engine):
    related = _ids(engine.related(paper_id="arXiv:1706.03762", limit=10, mode="dense"))
    assert "nips-2017-7181" not in related
    assert "nips-2017-7181" in _ids(engine.related(paper_id="1706.03762", limit=30, mode="dense",
                                                   filters=Filters(all_versions=True)))
    recommended = _ids(engine.recommend(["resnet-preprint"], limit=10))
    assert not {"resnet-preprint", "cvpr-2016-90"} & set(recommended)


def test_cli_and_api_ask_for_every_version(versions_index, embedder, capsys):
    query = "superconformal field theories supergravity large N"
    index = ["--index", str(versions_index), "--json", "-k", "5", "--mode", "lexical"]
    assert main(["search", query, *index]) == 0
    one = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert main(["search", query, *index, "--all-versions"]) == 0
    every = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    pair = {"hep-th/9711200", "ijtp-38-1113"}
    assert len(pair & {h["paper_id"] for h in one}) == 1 and pair <= {h["paper_id"] for h in every}
    assert next(h for h in one if h["paper_id"] in pair)["versions"]
    with TestClient(create_app(Settings(index_dir=versions_index), embedder=embedder)) as client:
        params = {"q": query, "mode": "lexical", "limit": 5}
        one = client.get("/search", params=params).json()["results"]
        every = client.get("/search", params={**params, "versions": "all"}).json()["results"]
        assert len(pair & {h["paper_id"] for h in one}) == 1 and pair <= {h["paper_id"] for h in every}
        assert all("versions" in h for h in one)
        body = {"positive": ["seed-03"], "versions": "all", "limit": 40}
        assert client.post("/recommend", json=body).status_code == 200
        assert client.get("/search", params={**params, "versions": "some"}).status_code == 422
