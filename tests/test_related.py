"""Related and recommend in every mode: term selection, fusion, exclusions, filters, paging, the
dense mode against a brute-force oracle, the API and CLI `mode`, and `eval --task related|recommend`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from api.eval_tasks import recommendation_splits
from api.evaluate import evaluate
from indexer.store import IndexStore
from models.config import Settings
from models.errors import InvalidInput, InvalidQuery
from models.query import RELATED_DEFAULT_MODE, Filters
from search import related
from search.rank import rocchio

MODES = ("dense", "lexical", "hybrid")


def _ids(hits):
    return [h.paper.paper_id for h in hits]


# --- pure parts -----------------------------------------------------------------------------------


def test_distinctive_terms_rank_by_tf_idf_and_drop_common_and_unseen_terms():
    df = {"protein": 3, "fold": 10, "the": 90, "zzz": 0, "alpha": 1, "structur": 20}

    def doc_freqs(terms):
        return 100, {t: df[t] for t in terms}

    terms = [["protein", "protein", "fold", "the", "zzz", "alpha", "structur"], ["fold"]]
    chosen = related.distinctive_terms(terms, doc_freqs, max_terms=3)
    # "the" is in 90% of papers, "zzz" and "alpha" in fewer than 2: none says what is related.
    assert list(chosen) == ["protein", "fold", "structur"]  # 2 * idf(3) > 2 * idf(10) > idf(20)
    assert related.as_boosts(chosen)["protein"] == 1.0
    assert related.distinctive_terms([[]], doc_freqs) == {}


def test_fuse_is_weighted_reciprocal_rank_fusion():
    dense = (np.array([1, 2, 3]), np.array([0.9, 0.8, 0.7], dtype=np.float32))
    lexical = (np.array([3, 4]), np.array([12.0, 5.0], dtype=np.float32))
    rowids, scores = related.fuse(dense, lexical, k=60, dense_weight=1.0)
    assert rowids.tolist() == [3, 1, 2, 4]  # 3 is on both lists
    assert scores[0] == pytest.approx(1 / 63 + 1 / 61)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.float32))
    assert related.fuse(dense, empty) is dense
    assert related.fuse(empty, lexical) is lexical


# --- the engine -----------------------------------------------------------------------------------


def _stored_vectors(engine):
    store = IndexStore.open(engine.store.directory)
    try:
        ids = [p.paper_id for _, p in store.iter_papers()]
        stored = store.embeddings_for(ids)
        return ids, np.stack([stored[i] for i in ids])
    finally:
        store.close()


def test_dense_mode_is_the_plain_cosine_ranking(sample_engine):
    ids, matrix = _stored_vectors(sample_engine)
    source = ids.index("seed-03")
    cosines = matrix @ matrix[source]
    order = [i for i in np.argsort(-cosines, kind="stable") if i != source][:10]
    hits = sample_engine.related("seed-03", limit=10, mode="dense")
    assert _ids(hits) == [ids[i] for i in order]
    assert np.allclose([h.score for h in hits], cosines[order], atol=1e-5)
    liked, disliked = ["seed-03", "seed-17"], ["seed-09"]
    query = rocchio(matrix[[ids.index(p) for p in liked]], matrix[[ids.index(p) for p in disliked]])
    cosines = matrix @ query
    order = [i for i in np.argsort(-cosines, kind="stable") if ids[i] not in {*liked, *disliked}][:10]
    hits = sample_engine.recommend(liked, disliked, limit=10, mode="dense")
    assert _ids(hits) == [ids[i] for i in order]
    assert np.allclose([h.score for h in hits], cosines[order], atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_finds_the_sibling_paper_and_never_the_sources(sample_engine, mode):
    hits = sample_engine.related("seed-03", limit=10, mode=mode)  # PP-OCRv3
    assert _ids(hits)[0] == "seed-17"  # PP-OCRv2
    assert "seed-03" not in _ids(hits)
    text = "An ultra lightweight OCR system: text detection and text recognition on mobile CPUs."
    assert set(_ids(sample_engine.related(text=text, limit=3, mode=mode))) & {"seed-03", "seed-17", "seed-10"}
    hits = sample_engine.recommend(["seed-03", "seed-17"], ["seed-09"], limit=23, mode=mode)
    assert not {"seed-03", "seed-17", "seed-09"} & set(_ids(hits))
    assert "seed-10" in _ids(hits)[:3]  # PaddleOCR 3.0, the remaining OCR system paper


@pytest.mark.parametrize("mode", ("lexical", "hybrid"))
def test_filters_apply_to_every_side(sample_engine, mode):
    filters = Filters(year_from=2025)
    hits = sample_engine.related("seed-03", limit=20, filters=filters, mode=mode)
    assert hits and all(h.paper.year >= 2025 for h in hits)
    hits = sample_engine.recommend(["seed-10", "seed-11"], limit=20, filters=filters, mode=mode)
    assert hits and all(h.paper.year >= 2025 for h in hits)
    assert not {"seed-10", "seed-11"} & set(_ids(hits))
    assert sample_engine.related("seed-03", filters=Filters(year_from=2100), mode=mode) == []


@pytest.mark.parametrize("mode", MODES)
def test_pages_never_overlap_and_match_one_long_list(sample_engine, mode):
    whole = _ids(sample_engine.related("seed-03", limit=15, mode=mode))
    pages = [_ids(sample_engine.related("seed-03", limit=5, offset=offset, mode=mode)) for offset in (0, 5, 10)]
    assert sum(pages, []) == whole
    assert len(set(whole)) == len(whole)
    whole = _ids(sample_engine.recommend(["seed-01"], limit=12, mode=mode))
    pages = [_ids(sample_engine.recommend(["seed-01"], limit=4, offset=offset, mode=mode)) for offset in (0, 4, 8)]
    assert sum(pages, []) == whole


def test_unknown_mode_is_an_invalid_query(sample_engine):
    with pytest.raises(InvalidQuery, match="Unknown mode 'bm25'"):
        sample_engine.related("seed-03", mode="bm25")
    with pytest.raises(InvalidQuery, match="Unknown mode"):
        sample_engine.recommend(["seed-03"], mode="fancy")


# --- API and CLI ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(sample_index_dir, embedder):
    with TestClient(create_app(Settings(index_dir=sample_index_dir), embedder=embedder)) as client:
        yield client


def test_api_takes_mode_on_every_related_route(client, sample_engine):
    for mode in MODES:
        body = client.get("/papers/seed-03/related", params={"mode": mode, "limit": 5}).json()
        assert [h["paper_id"] for h in body["results"]] == _ids(sample_engine.related("seed-03", limit=5, mode=mode))
        text = "lightweight OCR for mobile devices"
        body = client.post("/related", json={"text": text, "mode": mode, "limit": 5}).json()
        assert [h["paper_id"] for h in body["results"]] == _ids(sample_engine.related(text=text, limit=5, mode=mode))
        body = client.post("/recommend", json={"positive": ["seed-03"], "mode": mode, "limit": 5}).json()
        assert [h["paper_id"] for h in body["results"]] == _ids(sample_engine.recommend(["seed-03"], limit=5,
                                                                                         mode=mode))
    default = client.get("/papers/seed-03/related").json()["results"]
    assert [h["paper_id"] for h in default] == _ids(sample_engine.related("seed-03", mode=RELATED_DEFAULT_MODE))
    assert client.get("/papers/seed-03/related", params={"mode": "bm25"}).status_code == 422
    assert client.post("/recommend", json={"positive": ["seed-03"], "mode": "bm25"}).status_code == 422


def test_cli_takes_mode(sample_index_dir, sample_engine, capsys):
    assert main(["related", "seed-03", "--index", str(sample_index_dir), "--mode", "lexical", "--json",
                 "--limit", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line)["paper_id"] for line in lines] == _ids(sample_engine.related("seed-03", limit=3,
                                                                                         mode="lexical"))
    assert main(["recommend", "-p", "seed-03", "--index", str(sample_index_dir), "--mode", "dense", "--json",
                 "--limit", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line)["paper_id"] for line in lines] == _ids(sample_engine.recommend(["seed-03"], limit=3,
                                                                                           mode="dense"))


# --- eval --task related / recommend --------------------------------------------------------------

# Three topics, each a few near-paraphrases, so every mode ranks a topic's papers above the others.
CORPUS = {
    "fold-1": ("Protein structure prediction", "We predict protein tertiary structure from amino acid "
               "sequences with a deep attention network trained on the Protein Data Bank."),
    "fold-2": ("Deep learning for protein structure prediction", "An attention network predicts the "
               "tertiary structure of proteins from their amino acid sequences."),
    "fold-3": ("Protein folding with attention networks", "Amino acid sequences in, protein tertiary "
               "structure out: a deep attention network for structure prediction."),
    "wind-1": ("Wind power forecasting", "A dataset of turbine wind power output and weather for "
               "short-term wind power forecasting."),
    "wind-2": ("Short-term forecasting of wind farm power", "We forecast wind turbine power output "
               "from weather measurements with gradient boosted trees."),
    "ocr-1": ("Lightweight OCR", "A lightweight optical character recognition system that detects and "
              "recognises text in images on mobile phones."),
    "ocr-2": ("Text recognition on mobile devices", "Optical character recognition of text in photos, "
              "small enough for mobile phones."),
    "chef-1": ("Sourdough bread baking", "How hydration and fermentation time change the crumb of sourdough."),
}
QUERIES = [("q-fold", "fold-1"), ("q-wind", "wind-1"), ("q-ocr", "ocr-1")]
QRELS = ["q-fold\tfold-2\t2", "q-fold\tfold-3\t1", "q-fold\tchef-1\t0", "q-wind\twind-2\t1",
         "q-ocr\tocr-2\t3", "q-ocr\tocr-1\t1"]  # ocr-1 is the query paper: never returned, so never found


def write_paper_set(folder):
    folder.mkdir(parents=True)
    (folder / "qrels").mkdir()
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, (title, text) in CORPUS.items():
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for qid, paper_id in QUERIES:
            title, text = CORPUS[paper_id]
            out.write(json.dumps({"_id": qid, "text": f"{title}. {text}", "metadata": {"paper_id": paper_id}}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(QRELS) + "\n")
    return folder


def test_eval_related_scores_each_query_papers_ranking(tmp_path, embedder):
    folder = write_paper_set(tmp_path / "papers")
    reports = evaluate(folder, Settings(eval_cache_dir=tmp_path / "cache"), modes=MODES, embedder=embedder,
                       task="related")
    assert [r.mode for r in reports] == list(MODES)
    for report in reports:
        assert report.queries == 3 and report.extra == {"task": "related"}
        # q-fold: fold-2 and fold-3 fill ranks 1-2 (ideal, either order gives at least the figure
        # below); q-wind: wind-2 at rank 1; q-ocr: ocr-2 at rank 1, ocr-1 (itself) never returned.
        ocr_ideal = 3 + 1 / np.log2(3)
        fold_worst = (1 + 2 / np.log2(3)) / (2 + 1 / np.log2(3))
        assert report.ndcg_at_10 >= (fold_worst + 1 + 3 / ocr_ideal) / 3 - 1e-9, report
        assert report.recall_at_100 == pytest.approx((1 + 1 + 0.5) / 3)
        assert report.mrr_at_10 == 1.0


def test_eval_recommend_likes_half_and_scores_the_rest(tmp_path, embedder):
    qrels = {"q": {"d": 1, "a": 2, "c": 1, "b": 0, "e": 3}, "one": {"a": 1, "z": 0}}
    assert recommendation_splits(qrels) == {"q": (["a", "d"], {"b": 0, "c": 1, "e": 3})}
    folder = write_paper_set(tmp_path / "papers")
    (folder / "qrels" / "test.tsv").write_text("q-fold\tfold-1\t1\nq-fold\tfold-2\t1\nq-fold\tfold-3\t2\n"
                                               "q-wind\twind-1\t1\n")
    reports = evaluate(folder, Settings(eval_cache_dir=tmp_path / "cache"), modes=MODES, embedder=embedder,
                       task="recommend")
    for report in reports:
        assert report.queries == 1  # q-wind has one relevant paper: nothing to hold out
        assert report.ndcg_at_10 == 1.0 and report.recall_at_100 == 1.0  # liked fold-1, fold-3; fold-2 first


def test_eval_task_command_and_its_errors(tmp_path, capsys, monkeypatch):
    folder = write_paper_set(tmp_path / "papers")
    monkeypatch.setenv("PAPERSEARCH_CACHE", str(tmp_path / "cache"))
    assert main(["eval", str(folder), "--task", "related", "--mode", "dense", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "dense" and report["extra"] == {"task": "related"}
    assert main(["eval", str(folder), "--task", "related"]) == 0
    assert "task related" in capsys.readouterr().out
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("corpus.jsonl", "qrels"):
        (plain / name).symlink_to(folder / name)
    (plain / "queries.jsonl").write_text("\n".join(json.dumps({"_id": q, "text": "x"}) for q, _ in QUERIES))
    with pytest.raises(InvalidInput, match="name no paper"):
        evaluate(plain, Settings(eval_cache_dir=tmp_path / "cache"), task="related")


def test_remembered_document_frequencies_follow_writes(fresh_index_dir, embedder):
    """More-like-this reads term statistics from a per-index cache; a write must not leave them stale."""
    from indexer.build import add_papers, delete_papers
    from models.paper import Paper
    from search.engine import SearchEngine

    settings = Settings(index_dir=fresh_index_dir)
    engine = SearchEngine.open(settings, encoder=embedder)
    try:
        total, before = engine._lexical.doc_freqs(["ocr", "zyxwvut"])
        assert before["zyxwvut"] == 0
        add_papers(settings, [Paper("new-1", "Zyxwvut OCR", "An OCR system named zyxwvut.")], embedder=embedder)
        engine.refresh(wait=True)
        assert engine._lexical.doc_freqs(["ocr", "zyxwvut"]) == (total + 1, {"ocr": before["ocr"] + 1, "zyxwvut": 1})
        delete_papers(settings, ["new-1"])
        engine.refresh(wait=True)
        assert engine._lexical.doc_freqs(["zyxwvut"])[1] == {"zyxwvut": 0}
    finally:
        engine.close()
