"""Sharded serving: split an index, search the shards through a router, get the single index's answers."""

from __future__ import annotations

import gzip
import json
import socket
from itertools import islice

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.cli import main
from indexer.split import shard_of, split_index
from indexer.store import IndexStore
from models.config import Settings
from models.errors import InvalidInput, PaperNotFound
from models.paper import Hit, Paper
from models.query import Filters
from search.engine import SearchEngine
from search.shards import ShardRouter, merge_top
from tests.conftest import shared_dataset

QUERIES = ("lightweight OCR", "protein folding", "large language model", "speech recognition", "graph networks")


# --- the merge is a pure function ------------------------------------------------------------------


def _hit(paper_id: str, score: float) -> Hit:
    return Hit(paper=Paper(paper_id=paper_id, title=paper_id), score=score, rank=0)


@given(st.dictionaries(st.text(min_size=1, max_size=4), st.integers(-50, 50), max_size=40),
       st.integers(1, 4), st.integers(1, 15), st.integers(0, 5))
def test_merge_equals_sorting_the_union(scores, shards, limit, offset):
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    per_shard = [[] for _ in range(shards)]
    for paper_id, score in ranked:  # each shard's list is itself ranked, as a shard returns it
        per_shard[shard_of(paper_id, shards)].append(_hit(paper_id, float(score)))
    merged = merge_top(per_shard, limit, offset)
    assert [(h.paper.paper_id, h.score) for h in merged] == \
           [(pid, float(score)) for pid, score in ranked[offset:offset + limit]]
    assert [h.rank for h in merged] == list(range(offset + 1, offset + 1 + len(merged)))


def test_merge_keeps_one_copy_of_a_repeated_paper():
    merged = merge_top([[_hit("a", 0.9), _hit("b", 0.5)], [_hit("a", 0.7), _hit("c", 0.6)]], limit=5)
    assert [(h.paper.paper_id, h.score) for h in merged] == [("a", 0.9), ("c", 0.6), ("b", 0.5)]


def test_shard_of_is_stable_and_spread():
    assert shard_of("2101.00001", 4) == shard_of("2101.00001", 4)
    counts = np.bincount([shard_of(f"paper-{i}", 4) for i in range(4000)], minlength=4)
    assert counts.min() > 900  # an even split, not one hot shard


# --- a local 2-shard split of the sample index ------------------------------------------------------


@pytest.fixture(scope="module")
def sample_shards(tmp_path_factory, sample_index_dir):
    root = tmp_path_factory.mktemp("shards")
    targets = [root / "shard-0", root / "shard-1"]
    counts = split_index(sample_index_dir, targets)
    return targets, counts


@pytest.fixture
def sample_router(sample_shards, embedder):
    router = ShardRouter.open_local(sample_shards[0], encoder=embedder)
    yield router
    router.close()


def test_split_partitions_every_paper_once_with_its_vector(sample_shards, sample_index_dir):
    targets, counts = sample_shards
    assert sum(counts) == 24 and min(counts) > 0
    whole = IndexStore.open(sample_index_dir)
    parts = [IndexStore.open(t) for t in targets]
    try:
        everything = {p.paper_id: p for _, p in whole.iter_papers()}
        seen: dict[str, int] = {}
        for number, part in enumerate(parts):
            assert part.model.fingerprint == whole.model.fingerprint
            for _, paper in part.iter_papers():
                assert paper.paper_id not in seen and paper == everything[paper.paper_id]
                assert shard_of(paper.paper_id, 2) == number
                seen[paper.paper_id] = number
            ids = [pid for pid, n in seen.items() if n == number]
            mine, theirs = part.embeddings_for(ids), whole.embeddings_for(ids)
            assert all(np.array_equal(mine[pid], theirs[pid]) for pid in ids)  # copied, not re-embedded
        assert seen.keys() == everything.keys()
    finally:
        for store in (whole, *parts):
            store.close()


def test_split_refuses_existing_targets(sample_shards, sample_index_dir):
    with pytest.raises(InvalidInput, match="already holds an index"):
        split_index(sample_index_dir, sample_shards[0])


def assert_same_hits(got: list[Hit], want: list[Hit]) -> None:
    assert [h.paper.paper_id for h in got] == [h.paper.paper_id for h in want]
    np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-6)
    assert [h.rank for h in got] == [h.rank for h in want]


@pytest.mark.parametrize("query", QUERIES)
def test_two_shards_rank_like_the_single_index(sample_router, sample_engine, query):
    assert_same_hits(sample_router.search(query, limit=24), sample_engine.search(query, limit=24, mode="dense"))
    assert_same_hits(sample_router.search(query, limit=5, offset=3),
                     sample_engine.search(query, limit=5, offset=3, mode="dense"))


def test_two_shards_filter_relate_and_recommend_like_the_single_index(sample_router, sample_engine):
    ids = [h.paper.paper_id for h in sample_engine.search("protein folding", limit=24, mode="dense")]
    filters = Filters(year_from=2022)
    assert_same_hits(sample_router.search("OCR", limit=10, filters=filters),
                     sample_engine.search("OCR", limit=10, filters=filters, mode="dense"))
    assert_same_hits(sample_router.related(ids[0], limit=10), sample_engine.related(ids[0], limit=10))
    assert ids[0] not in [h.paper.paper_id for h in sample_router.related(ids[0], limit=23)]
    assert_same_hits(sample_router.recommend(ids[:2], ids[-1:], limit=10),
                     sample_engine.recommend(ids[:2], ids[-1:], limit=10))
    with pytest.raises(PaperNotFound):
        sample_router.related("no-such-paper")


def test_cli_split_and_search(tmp_path, sample_index_dir, sample_engine, capsys):
    assert main(["shards", "split", "--index", str(sample_index_dir), "--out", str(tmp_path), "--count", "3",
                 "--json"]) == 0
    counts = [json.loads(line)["papers"] for line in capsys.readouterr().out.splitlines()]
    assert sum(counts) == 24 and len(counts) == 3
    shards = [arg for n in range(3) for arg in ("--shard", str(tmp_path / f"shard-{n}"))]
    assert main(["shards", "search", "protein folding", *shards, "--json", "--limit", "5"]) == 0
    got = [json.loads(line)["paper_id"] for line in capsys.readouterr().out.splitlines()]
    assert got == [h.paper.paper_id for h in sample_engine.search("protein folding", limit=5, mode="dense")]
    assert main(["shards", "search", "protein folding"]) == 1
    assert "--shard DIR" in capsys.readouterr().err


# --- SciFact, and Ray Serve -----------------------------------------------------------------------------


@pytest.mark.slow
def test_three_shards_rank_like_the_single_index_on_scifact(tmp_path, scifact_reference, embedder):
    targets = [tmp_path / f"shard-{n}" for n in range(3)]
    split_index(scifact_reference, targets)
    with gzip.open(shared_dataset("scifact") / "queries.jsonl.gz", "rt") as handle:
        queries = [json.loads(line)["text"] for line in islice(handle, 40)]
    router = ShardRouter.open_local(targets, encoder=embedder)
    engine = SearchEngine.open(Settings(index_dir=scifact_reference), encoder=embedder)
    try:
        for query in queries:
            assert_same_hits(router.search(query, limit=10), engine.search(query, limit=10, mode="dense"))
    finally:
        router.close()
        engine.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ray_serve_shards_answer_like_the_single_index(ray_local, sample_shards, sample_engine):
    pytest.importorskip("ray.serve")
    from ray import serve

    from api import ray_serve

    port = _free_port()
    ray_serve.run(sample_shards[0], port=port, blocking=False)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=120) as client:
            for query in QUERIES[:3]:
                body = client.get("/search", params={"q": query, "limit": 10}).json()
                want = sample_engine.search(query, limit=10, mode="dense")
                assert [r["paper_id"] for r in body["results"]] == [h.paper.paper_id for h in want]
                np.testing.assert_allclose([r["score"] for r in body["results"]], [h.score for h in want],
                                           atol=1e-5)
            first = want[0].paper.paper_id
            related = client.get("/related", params={"paper_id": first, "limit": 5}).json()["results"]
            assert [r["paper_id"] for r in related] == \
                   [h.paper.paper_id for h in sample_engine.related(first, limit=5)]
            missing = client.get("/related", params={"paper_id": "no-such-paper"})
            assert missing.status_code == 404 and missing.json()["status"] == 404
            assert client.get("/search", params={"q": " "}).json() == {
                "error": "The query is empty: type a few words, such as 'lightweight OCR'.", "status": 400}
            assert client.get("/health").json() == {"status": "ok", "shards": 2}
    finally:
        serve.shutdown()

