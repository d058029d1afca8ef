"""The compressed IVF-PQ structure: chosen by size, trained on a sample, refined exactly from the store.

Ranking arithmetic is checked on clustered synthetic vectors against a numpy brute-force oracle (a
storage test, so no model is needed); the write path is checked on the real sample index.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from indexer import vectors
from indexer.build import IndexWriter, index_file
from indexer.store import IndexStore, Upsert, layout
from indexer.vectors import ivfpq
from models.config import Settings
from models.embedder import ModelInfo
from models.paper import Paper
from models.query import Filters
from search.engine import SearchEngine

DIM = 64
COUNT = 6_000


def clustered_vectors(count: int, dim: int, seed: int = 7) -> np.ndarray:
    """Unit vectors around 60 random centres, like topics in an embedding space."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((60, dim))
    points = centres[rng.integers(0, 60, count)] + 0.6 * rng.standard_normal((count, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)


class _NoEncoder:
    """Queries here are stored papers (related/recommend), so nothing is ever encoded."""

    def encode(self, texts, role):
        raise AssertionError("these tests never encode text")


@pytest.fixture(scope="module")
def synthetic_ivfpq(tmp_path_factory):
    """A real index directory of COUNT synthetic papers with an IVF-PQ vector index."""
    directory = tmp_path_factory.mktemp("ivfpq")
    matrix = clustered_vectors(COUNT, DIM)
    store = IndexStore.create(directory, ModelInfo("synthetic", "synthetic-fp", DIM))
    upserts = [Upsert(Paper(paper_id=f"p{i}", title=f"paper {i}", year=2000 + i % 20), f"h{i}", matrix[i])
               for i in range(COUNT)]
    store.write(upserts)
    store.set_index_type("ivfpq")
    index = store.build_vector_index()
    store.save_vector_index(index, store.generation)
    store.close()
    return directory, matrix.astype(np.float16).astype(np.float32)  # as stored (indexer/store/codec.py)


@pytest.fixture
def synthetic_engine(synthetic_ivfpq):
    directory, _ = synthetic_ivfpq
    engine = SearchEngine(IndexStore.open(directory), _NoEncoder(), Settings(index_dir=directory))
    yield engine
    engine.close()


def oracle_top(matrix: np.ndarray, query: np.ndarray, k: int, exclude: set[int] = frozenset(),
               allowed: np.ndarray | None = None) -> list[int]:
    """Row numbers of the exact top-k by inner product."""
    scores = matrix @ query
    order = [int(i) for i in np.argsort(-scores, kind="stable")
             if int(i) not in exclude and (allowed is None or allowed[i])]
    return order[:k]


# --- choosing the structure ----------------------------------------------------------------------


def test_auto_switches_to_ivfpq_at_the_threshold():
    assert vectors.resolve_index_type("auto", vectors.AUTO_IVFPQ_THRESHOLD - 1) == "hnsw"
    assert vectors.resolve_index_type("auto", vectors.AUTO_IVFPQ_THRESHOLD) == "ivfpq"
    assert vectors.resolve_index_type("ivfpq", 10) == "ivfpq"


@pytest.mark.parametrize("count", [1, 24, 300, 5_183, 1_000_000, 200_000_000])
def test_shape_is_trainable_and_compact(count):
    kind = vectors.new_index("ivfpq", 384, count)
    assert kind.name == "ivfpq" and kind.needs_training
    index = kind.faiss
    assert not index.is_trained
    assert index.nlist == 1 or count >= 39 * index.nlist  # FAISS' minimum points per list
    assert index.nlist & (index.nlist - 1) == 0
    assert 384 % index.pq.M == 0 and index.pq.M == 48  # one byte per 8 dimensions
    assert (1 << index.pq.nbits) <= max(count, 2)  # enough points for every PQ centroid
    assert 1 <= index.nprobe <= index.nlist


def test_growing_past_the_trained_shape_asks_for_a_rebuild(synthetic_ivfpq):
    directory, _ = synthetic_ivfpq
    store = IndexStore.open(directory)
    index, _ = store.load_vector_index()
    store.close()
    assert index.fits(COUNT)
    assert not index.fits(COUNT * 8)
    added = clustered_vectors(COUNT * 7, DIM, seed=1)
    assert index.apply_changes(np.zeros(0, np.int64), np.arange(10**6, 10**6 + len(added)), added) is False


# --- searching ------------------------------------------------------------------------------------


def test_loaded_from_file_as_ivfpq(synthetic_ivfpq, synthetic_engine):
    directory, _ = synthetic_ivfpq
    assert synthetic_engine.index_kind == "ivfpq"
    assert layout.vector_files(directory)
    assert synthetic_engine._index.ntotal == COUNT
    # The saved file is used as is: rebuilding would retrain the lists (minutes at 1M papers).
    assert synthetic_engine.store.vector_file_problem is None
    assert sorted(synthetic_engine._index.live_ids().tolist()) == synthetic_engine.store.all_rowids().tolist()


def test_related_scores_are_exact_and_recall_is_high(synthetic_ivfpq, synthetic_engine):
    _, matrix = synthetic_ivfpq
    rng = np.random.default_rng(3)
    found = 0
    for row in rng.choice(COUNT, 40, replace=False):
        hits = synthetic_engine.related(f"p{row}", limit=10, mode="dense")
        assert f"p{row}" not in [h.paper.paper_id for h in hits]
        got = [int(h.paper.paper_id[1:]) for h in hits]
        # Refinement re-scores from the stored vectors: scores are exact, not PQ estimates.
        np.testing.assert_allclose([h.score for h in hits], matrix[got] @ matrix[row], atol=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        found += len(set(got) & set(oracle_top(matrix, matrix[row], 10, exclude={int(row)})))
    assert found / (40 * 10) >= 0.9


def test_small_filtered_set_is_scored_exactly(synthetic_ivfpq, synthetic_engine):
    _, matrix = synthetic_ivfpq
    years = 2000 + np.arange(COUNT) % 20
    for row in (5, 1234, 4321):
        hits = synthetic_engine.related(f"p{row}", limit=10, filters=Filters(year_from=2015, year_to=2016))
        expected = oracle_top(matrix, matrix[row], 10, exclude={row}, allowed=(years >= 2015) & (years <= 2016))
        assert [int(h.paper.paper_id[1:]) for h in hits] == expected


def test_large_filtered_set_goes_through_the_lists(synthetic_ivfpq, synthetic_engine, monkeypatch):
    monkeypatch.setattr(ivfpq, "IVFPQ_EXACT_SUBSET_LIMIT", 100)
    _, matrix = synthetic_ivfpq
    years = 2000 + np.arange(COUNT) % 20
    found = 0
    for row in range(0, COUNT, 300):
        hits = synthetic_engine.related(f"p{row}", limit=10, filters=Filters(year_from=2010))
        got = [int(h.paper.paper_id[1:]) for h in hits]
        assert all(years[g] >= 2010 for g in got)
        found += len(set(got) & set(oracle_top(matrix, matrix[row], 10, exclude={row}, allowed=years >= 2010)))
    assert found / (20 * 10) >= 0.85


def test_recommend_uses_the_refined_path(synthetic_ivfpq, synthetic_engine):
    _, matrix = synthetic_ivfpq
    hits = synthetic_engine.recommend(["p10", "p11"], limit=5, mode="dense")
    query = matrix[[10, 11]].mean(axis=0)
    query /= np.linalg.norm(query)
    got = [int(h.paper.paper_id[1:]) for h in hits]
    np.testing.assert_allclose([h.score for h in hits], matrix[got] @ query, atol=1e-5)
    assert not {10, 11} & set(got)


# --- the write path on real papers -------------------------------------------------------------------


def test_sample_corpus_as_ivfpq(fresh_index_dir, embedder):
    settings = Settings(index_dir=fresh_index_dir, index_type="ivfpq")
    with IndexWriter(settings, embedder=embedder):
        pass  # switching the type rebuilds the vector index from the stored embeddings
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    try:
        assert engine.index_kind == "ivfpq"
        titles = [h.paper.title for h in engine.search("protein structure prediction", limit=3)]
        assert any("Fold" in t for t in titles)
        first = engine.search("protein structure prediction", limit=1)[0].paper.paper_id
    finally:
        engine.close()
    with IndexWriter(settings, embedder=embedder) as writer:
        deleted, _ = writer.delete([first])
    assert deleted == [first]
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    try:
        assert engine.index_kind == "ivfpq"
        assert first not in [h.paper.paper_id for h in engine.search("protein structure prediction", limit=5)]
    finally:
        engine.close()


def test_index_file_with_ivfpq_matches_flat_ranking(tmp_path, embedder, sample_engine):
    """On 24 papers every list is probed, so refined IVF-PQ must rank exactly like flat search."""
    from tests.conftest import SAMPLE

    index_file(Settings(index_dir=tmp_path / "ivf", index_type="ivfpq"), SAMPLE, embedder=embedder)
    engine = SearchEngine.open(Settings(index_dir=tmp_path / "ivf"), encoder=embedder)
    try:
        for query in ("lightweight OCR", "protein folding", "large language model training"):
            got = engine.search(query, limit=10)
            want = sample_engine.search(query, limit=10)
            assert [h.paper.paper_id for h in got] == [h.paper.paper_id for h in want]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-5)
    finally:
        engine.close()


class ToyEncoder:
    """Deterministic unit vectors from a hash of the text: for storage tests, never for relevance."""

    name = "toy"
    fingerprint = "toy-encoder-0001"
    dimension = 32

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self.fingerprint, self.dimension)

    def encode(self, texts, role, batch_size=None):
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(self.dimension) for t in texts]
        matrix = np.array(rows, dtype=np.float32).reshape(len(texts), self.dimension)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_bulk_load_builds_the_ivfpq_index_once(tmp_path, monkeypatch):
    """Growing through several trained shapes must not retrain after every batch, only at flush."""
    path = tmp_path / "papers.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "title": f"Paper number {i}"}) + "\n" for i in range(1_200)))
    calls = []
    original = IndexStore.build_vector_index
    monkeypatch.setattr(IndexStore, "build_vector_index", lambda self: calls.append(self.count()) or original(self))
    report = index_file(Settings(index_dir=tmp_path / "i", index_type="ivfpq"), path, embedder=ToyEncoder())
    assert report.indexed == 1_200
    assert [count for count in calls if count] == [1_200]  # (plus an empty one when the writer opens)
    store = IndexStore.open(tmp_path / "i")
    try:
        index, _ = store.load_vector_index()
        assert index.name == "ivfpq" and index.ntotal == 1_200 and index.fits(1_200)
    finally:
        store.close()


def test_check_passes_and_repair_works_on_an_ivfpq_index(fresh_index_dir, embedder):
    from indexer.check import check_index, repair_index

    with IndexWriter(Settings(index_dir=fresh_index_dir, index_type="ivfpq"), embedder=embedder):
        pass
    report = check_index(fresh_index_dir)
    assert report.ok, report.problems  # compressed codes are not compared with the stored vectors
    layout.vector_files(fresh_index_dir)[0].unlink()
    assert not check_index(fresh_index_dir).ok
    repair_index(fresh_index_dir)
    assert check_index(fresh_index_dir).ok


def test_an_ivfpq_file_searches_at_the_current_defaults(synthetic_ivfpq, tmp_path):
    import shutil

    directory = tmp_path / "old"
    shutil.copytree(synthetic_ivfpq[0], directory)
    index = vectors.read_index(layout.vector_files(directory)[0])
    expected = index.faiss.nprobe
    index.faiss.nprobe = 1  # as written under older defaults (FAISS keeps nprobe in the file)
    store = IndexStore.open(directory, writable=True)
    try:
        store.save_vector_index(index, store.generation)
        loaded, _ = store.load_vector_index()
        assert store.vector_file_problem is None and loaded.faiss.nprobe == expected > 1
    finally:
        store.close()


def test_hybrid_on_ivfpq_scores_lexical_only_papers_exactly(fresh_index_dir, embedder):
    with IndexWriter(Settings(index_dir=fresh_index_dir, index_type="ivfpq"), embedder=embedder):
        pass
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    try:
        vector = embedder.encode(["lightweight OCR"], "query")[0]
        rowids = engine.store.all_rowids()
        kept, cosines = engine._cosines(rowids, vector)
        _, stored = engine.store.embeddings_by_rowid(kept)
        assert sorted(kept.tolist()) == rowids.tolist()  # codes in RAM, exact vectors from SQLite
        assert np.allclose(cosines, stored @ vector, atol=1e-6)
    finally:
        engine.close()
