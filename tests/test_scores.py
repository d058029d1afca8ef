"""Scores with one meaning: the calibrated maps by hand, scores per mode on the real engine, and
`min_score` on the engine, the shard router, the API and the CLI (cut a prefix, pages agree,
no next page once the cut ends the list, range checks)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from models.config import Settings
from models.errors import InvalidQuery
from search import scores
from search.shards import ShardRouter

MODES = ("dense", "lexical", "hybrid")


def _ids(hits):
    return [h.paper.paper_id for h in hits]


# --- pure parts -----------------------------------------------------------------------------------


def test_logistic_map_of_hand_made_features():
    model = scores.Logistic(-1.0, cosine=2.0, bm25_attainable=4.0, bm25_best=1.0, cosine_in_list=0.5)
    rowids = np.array([7, 8, 9])
    cosines = {7: 0.5, 8: 0.7, 9: 0.3}
    bm25 = {7: 6.0, 9: 3.0}  # 8 was found by the dense side only
    got = scores.hybrid(scores.Evidence(rowids, cosines, bm25, attainable=12.0), model)
    logit7 = -1.0 + 2.0 * 0.5 + 4.0 * 0.5 + 1.0 * 1.0 + 0.5 * 0.5
    logit8 = -1.0 + 2.0 * 0.7 + 0.0 + 0.0 + 0.5 * 1.0
    assert got[0] == pytest.approx(1 / (1 + math.exp(-logit7)))
    # 8 alone would score lower than 7 and stays its own; 9 is lower still.
    assert got[1] == pytest.approx(1 / (1 + math.exp(-logit8)))
    assert got[0] >= got[1] >= got[2]


def test_shown_scores_never_rise_and_a_threshold_cuts_a_prefix():
    assert scores.non_increasing(np.array([0.9, 0.95, 0.5, 0.7])).tolist() == [0.9, 0.9, 0.5, 0.5]
    assert scores.cut(np.array([0.9, 0.6, 0.4]), 0.5) == 2
    assert scores.cut(np.array([0.9, 0.6, 0.4]), 0.4) == 3
    assert scores.cut(np.array([0.9, 0.6, 0.4]), None) == 3
    assert scores.cut(np.array([0.3]), 0.5) == 0


def test_attainable_bm25_is_each_terms_ceiling():
    # A term's BM25 tends to idf * (k1 + 1) as its frequency grows; a weight multiplies it.
    assert scores.attainable_bm25({"a": 2.0, "b": 1.0}, {"a": 1, "b": 3}) == pytest.approx(2.2 * (2.0 + 3.0))


# --- the engine -----------------------------------------------------------------------------------


def _calls(engine):
    """One call per entry point; each takes limit, offset, mode and min_score."""
    return {
        "search": lambda **kw: engine.search("lightweight OCR system", snippets=False, **kw),
        "related": lambda **kw: engine.related(paper_id="seed-17", **kw),
        "recommend": lambda **kw: engine.recommend(["seed-03", "seed-17"], ["seed-21"], **kw),
    }


@pytest.mark.parametrize("mode", MODES)
def test_scores_per_mode_are_ordered_and_in_their_range(sample_engine, mode):
    for call in _calls(sample_engine).values():
        got = [h.score for h in call(limit=20, mode=mode)]
        assert got == sorted(got, reverse=True)
        low = -1.0 if mode == "dense" else 0.0
        assert all(low <= s <= 1.0 for s in got)


def test_dense_scores_are_cosines(sample_engine):
    vector = sample_engine.encoder.encode(["lightweight OCR system"], "query")[0]
    hits = sample_engine.search("lightweight OCR system", limit=5, mode="dense", snippets=False)
    stored = sample_engine.store.embeddings_for(_ids(hits))
    for hit in hits:
        assert hit.score == pytest.approx(float(stored[hit.paper.paper_id] @ vector), abs=1e-5)


@pytest.mark.parametrize("mode", ("lexical", "hybrid"))
def test_a_good_match_outscores_a_poor_one_across_queries(sample_engine, mode):
    """The point of calibration: the best hit of a weak query no longer scores like that of a strong one."""
    strong = sample_engine.search("PP-OCRv3 ultra lightweight OCR system text detection recognition",
                                  limit=1, mode=mode, snippets=False)[0]
    weak = sample_engine.search("wind turbine protein", limit=1, mode=mode, snippets=False)[0]
    assert strong.score > weak.score
    assert weak.score < 0.99


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("entry", ("search", "related", "recommend"))
def test_min_score_cuts_the_list_and_pages_agree(sample_engine, mode, entry):
    call = _calls(sample_engine)[entry]
    full = call(limit=20, mode=mode)
    threshold = full[4].score - 1e-9  # at least five hits reach it
    cut = call(limit=20, mode=mode, min_score=threshold)
    assert _ids(cut) == [h.paper.paper_id for h in full if h.score >= threshold]
    assert len(cut) >= 5 and all(h.score >= threshold for h in cut)
    # Pages of the cut list: the same hits, no overlap, and the page the cut ends on is the last.
    pages, offset = [], 0
    while True:
        page = call(limit=2, offset=offset, mode=mode, min_score=threshold)
        pages += page
        if page.last:
            break
        offset += 2
        assert offset <= 20
    assert _ids(pages) == _ids(cut)
    assert not call(limit=len(cut), mode=mode).last  # without a threshold nothing is cut


def test_min_score_out_of_range_is_an_invalid_query(sample_engine):
    for bad in (1.5, -2.0, float("nan"), True, "0.5"):
        with pytest.raises(InvalidQuery, match="min_score"):
            sample_engine.search("OCR", min_score=bad)
    with pytest.raises(InvalidQuery, match="min_score"):
        sample_engine.recommend(["seed-03"], min_score=9)


def test_router_cuts_cosines_like_the_single_index(sample_index_dir, sample_engine, tmp_path, embedder):
    from indexer.split import split_index

    targets = [tmp_path / "shard-0", tmp_path / "shard-1"]
    split_index(sample_index_dir, targets)
    router = ShardRouter.open_local(targets, encoder=embedder)
    try:
        want = sample_engine.search("object detection", limit=20, mode="dense", min_score=0.3, snippets=False)
        got = router.search("object detection", limit=20, min_score=0.3, snippets=False)
        assert _ids(got) == _ids(want) and got.last
        assert _ids(router.related("seed-19", limit=3, offset=1, min_score=0.3)) == \
            _ids(sample_engine.related("seed-19", limit=3, offset=1, mode="dense", min_score=0.3))
        with pytest.raises(InvalidQuery, match="min_score"):
            router.recommend(["seed-19"], min_score=3)
    finally:
        router.close()


# --- the API and the CLI --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(sample_index_dir, embedder):
    with TestClient(create_app(Settings(index_dir=sample_index_dir), embedder=embedder)) as test_client:
        yield test_client


def test_api_takes_min_score_on_every_ranking_route(client, sample_engine):
    full = client.get("/search", params={"q": "lightweight OCR system", "limit": 20}).json()["results"]
    threshold = full[2]["score"]
    page = client.get("/search", params={"q": "lightweight OCR system", "limit": 3, "min_score": threshold}).json()
    assert [r["score"] >= threshold for r in page["results"]] == [True] * len(page["results"])
    assert page["next_offset"] is None or len(page["results"]) == 3
    kept = [r["paper_id"] for r in full if r["score"] >= threshold]
    if len(kept) == 3:
        assert page["next_offset"] is None  # the cut ended the list on a full page
    routes = [
        client.get("/papers/seed-17/related", params={"min_score": 0.99, "mode": "dense"}),
        client.post("/related", json={"text": "lightweight OCR", "min_score": 0.99}),
        client.post("/recommend", json={"positive": ["seed-03"], "min_score": 0.99}),
    ]
    for response in routes:
        assert response.status_code == 200, response.text
        body = response.json()
        assert all(r["score"] >= 0.99 for r in body["results"]) and body["next_offset"] is None
    for response in (client.get("/search", params={"q": "OCR", "min_score": 1.5}),
                     client.get("/papers/seed-17/related", params={"min_score": -3}),
                     client.post("/related", json={"text": "OCR", "min_score": "0.5"}),
                     client.post("/recommend", json={"positive": ["seed-03"], "min_score": True})):
        assert response.status_code == 422, response.text
        assert "min_score" in response.text


def test_cli_takes_min_score(sample_index_dir, capsys):
    index = ["--index", str(sample_index_dir)]
    assert main(["search", "lightweight OCR", "--min-score", "0.3", "--mode", "dense", "--json", *index]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r["score"] >= 0.3 for r in rows)
    assert main(["related", "seed-17", "--min-score", "0.99", "--json", *index]) == 0
    assert main(["recommend", "-p", "seed-03", "--min-score", "0.5", "--json", *index]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "OCR", "--min-score", "2", *index])
    assert exit_info.value.code == 2
    assert "--min-score" in capsys.readouterr().err
