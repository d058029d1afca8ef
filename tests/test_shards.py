"""Sharded serving: split an index, search the shards through a router, get the single index's answers."""

from __future__ import annotations

import gzip
import json
import socket
from contextlib import contextmanager
from itertools import islice

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api.app import create_app
from api.cli import main
from api.shard_service import ShardService
from indexer.split import shard_of, split_index
from indexer.store import IndexStore
from models.config import Settings
from models.errors import IndexBusy, InvalidInput, PaperNotFound
from models.onnx_encoder import OnnxEmbedder
from models.paper import Hit, Paper
from models.query import Filters
from search.engine import SearchEngine
from search.shards import LocalShard, ShardRouter, merge_top
from tests.conftest import shared_dataset
from tests.test_api import assert_error

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


def assert_same_hits(got: list[Hit], want: list[Hit], atol: float = 1e-6) -> None:
    assert [h.paper.paper_id for h in got] == [h.paper.paper_id for h in want]
    np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=atol)
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
    assert_same_hits(sample_router.related(ids[0], limit=10), sample_engine.related(ids[0], limit=10, mode="dense"))
    assert ids[0] not in [h.paper.paper_id for h in sample_router.related(ids[0], limit=23)]
    assert_same_hits(sample_router.recommend(ids[:2], ids[-1:], limit=10),
                     sample_engine.recommend(ids[:2], ids[-1:], limit=10, mode="dense"))
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


# --- the HTTP app over a router: the single-index server's routes, shapes and statuses ---------------


KEY = "shard-test-key"


@contextmanager
def shard_client(open_router, **settings):
    app = create_app(Settings(**settings), service=ShardService(Settings(**settings), open_router))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def clients(sample_shards, sample_index_dir, embedder):
    """(router app, single-index app) over the same 24 papers."""
    single = create_app(Settings(index_dir=sample_index_dir), embedder=embedder)
    with shard_client(lambda: ShardRouter.open_local(sample_shards[0], encoder=embedder)) as sharded, \
            TestClient(single) as whole:
        yield sharded, whole


def _same_page(got, want) -> None:
    """Same status, same keys, same hits (scores to float tolerance); took_ms may differ."""
    assert got.status_code == want.status_code == 200, got.text
    got, want = got.json(), want.json()
    assert got.keys() == want.keys()
    assert {k: v for k, v in got.items() if k not in ("took_ms", "results")} == \
           {k: v for k, v in want.items() if k not in ("took_ms", "results")}
    assert [r.keys() for r in got["results"]] == [r.keys() for r in want["results"]]
    assert [r["paper_id"] for r in got["results"]] == [r["paper_id"] for r in want["results"]]
    np.testing.assert_allclose([r["score"] for r in got["results"]], [r["score"] for r in want["results"]],
                               atol=1e-6)


def test_router_app_answers_like_the_single_index_app(clients):
    sharded, whole = clients
    for params in ({"q": "protein folding", "limit": 5}, {"q": "OCR", "limit": 3, "offset": 2, "year_from": 2021}):
        _same_page(sharded.get("/search", params=params), whole.get("/search", params={**params, "mode": "dense"}))
    _same_page(sharded.get("/papers/seed-03/related", params={"limit": 4}),
               whole.get("/papers/seed-03/related", params={"limit": 4, "mode": "dense"}))
    body = {"text": "predicting protein structure from sequence", "limit": 5}
    _same_page(sharded.post("/related", json=body), whole.post("/related", json={**body, "mode": "dense"}))
    body = {"positive": ["seed-03", "seed-17"], "negative": ["seed-09"], "limit": 5}
    _same_page(sharded.post("/recommend", json=body), whole.post("/recommend", json={**body, "mode": "dense"}))
    assert sharded.get("/papers/seed-03").json() == whole.get("/papers/seed-03").json()
    health, single_health = sharded.get("/health").json(), whole.get("/health").json()
    assert health.keys() == single_health.keys() and health["status"] == "ready" and health["papers"] == 24
    stats, single_stats = sharded.get("/stats").json(), whole.get("/stats").json()
    assert stats.keys() == single_stats.keys()
    assert (stats["papers"], stats["modes"], stats["default_mode"], stats["writes_enabled"]) == \
           (24, ["dense"], "dense", False)
    assert stats["model_fingerprint"] == single_stats["model_fingerprint"]


def test_router_app_errors_in_the_main_shape_and_statuses(clients):
    sharded, whole = clients
    for path in ("/papers/no-such-paper/related", "/papers/no-such-paper"):
        assert sharded.get(path).json() == whole.get(path).json()
        assert_error(sharded.get(path), 404, "paper_not_found")
    assert_error(sharded.post("/recommend", json={"positive": ["nope"]}), 404, "paper_not_found")
    assert_error(sharded.get("/search", params={"q": " "}), 400, "invalid_query")
    # Lexical and hybrid ranking do not exist over shards: the schema says so, like any bad value.
    assert "mode" in assert_error(sharded.get("/search", params={"q": "ocr", "mode": "hybrid"}), 422,
                                  "invalid_request")
    assert_error(sharded.get("/no-such-route"), 404, "not_found")


def test_router_app_refuses_writes_as_read_only(sample_shards, embedder):
    with shard_client(lambda: ShardRouter.open_local(sample_shards[0], encoder=embedder), api_key=KEY) as client:
        auth = {"Authorization": f"Bearer {KEY}"}
        for response in (client.post("/papers", json=[{"id": "x", "title": "t"}], headers=auth),
                         client.post("/papers", json=[{"id": "x", "title": "t"}]),
                         client.delete("/papers/seed-03", headers=auth)):
            assert "papersearch index" in assert_error(response, 403, "read_only")
        assert client.get("/papers/seed-03").status_code == 200


def test_router_app_over_missing_shards_is_503_index_not_built(tmp_path, embedder):
    with shard_client(lambda: ShardRouter.open_local([tmp_path / "nowhere"], encoder=embedder)) as client:
        for response in (client.get("/search", params={"q": "ocr"}), client.get("/health"), client.get("/stats")):
            assert "papersearch index" in assert_error(response, 503, "index_not_built")
            assert response.headers["Retry-After"]


class _BusyShard(LocalShard):
    """A shard whose index is being rewritten in place (what a remote shard reports mid-rebuild)."""

    def search_vector(self, vector, k, filters, exclude_ids):
        raise IndexBusy(f"Another process is writing to {self.engine.store.directory}; try again when it is done.")


def test_router_app_passes_a_busy_shard_on_as_503_index_busy(sample_shards, embedder):
    def open_router():
        router = ShardRouter.open_local(sample_shards[0], encoder=embedder)
        router.shards[1] = _BusyShard(router.shards[1].engine)
        return router

    with shard_client(open_router) as client:
        response = client.get("/search", params={"q": "ocr"})
        assert "try again" in assert_error(response, 503, "index_busy")
        assert response.headers["Retry-After"]


def test_shards_encode_queries_with_the_onnx_export(sample_shards, sample_engine):
    router = ShardRouter.open_local(sample_shards[0])
    try:
        assert isinstance(router.encoder, OnnxEmbedder)
        for shard in router.shards:
            assert isinstance(shard.engine.encoder, OnnxEmbedder)
        got = router.search("protein folding", limit=5)
        assert_same_hits(got, sample_engine.search("protein folding", limit=5, mode="dense"), atol=1e-4)
        assert all(hit.snippet for hit in got)
    finally:
        router.close()


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
            related = client.get(f"/papers/{first}/related", params={"limit": 5}).json()["results"]
            assert [r["paper_id"] for r in related] == \
                   [h.paper.paper_id for h in sample_engine.related(first, limit=5, mode="dense")]
            assert_error(client.get("/papers/no-such-paper/related"), 404, "paper_not_found")
            assert client.get("/search", params={"q": " "}).json() == {"error": {
                "code": "invalid_query", "message": "The query is empty: type a few words, such as 'lightweight OCR'."}}
            assert_error(client.delete("/papers/seed-01"), 403, "read_only")
            health = client.get("/health").json()
            assert (health["status"], health["papers"]) == ("ready", 24)
    finally:
        serve.shutdown()

