"""Vector index by size: auto picks flat or HNSW, HNSW keeps its defaults on disk, rebuilds never
re-embed, and the recall/nDCG arithmetic the benchmarks print is right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.measure import ndcg_at_k, recall_at_k
from indexer import vectors
from indexer.build import IndexWriter
from indexer.store import IndexStore
from indexer.vectors import hnsw
from models.config import Settings


def test_auto_is_exact_below_the_threshold_and_hnsw_from_it():
    assert vectors.resolve_index_type("auto", vectors.AUTO_HNSW_THRESHOLD - 1) == "flat"
    assert vectors.resolve_index_type("auto", vectors.AUTO_HNSW_THRESHOLD) == "hnsw"
    assert vectors.resolve_index_type("hnsw", 10) == "hnsw"  # the user's choice wins at any size
    assert vectors.resolve_index_type("flat", 10 * vectors.AUTO_HNSW_THRESHOLD) == "flat"


class _NoEncoding:
    """The sample model's identity with an encode that must never run."""

    def __init__(self, embedder):
        self.name, self.fingerprint, self.dimension, self.info = (embedder.name, embedder.fingerprint,
                                                                  embedder.dimension, embedder.info)

    def encode(self, texts, role, batch_size=None):
        raise AssertionError("switching the vector index must not re-embed anything")


def test_switching_to_hnsw_rebuilds_from_stored_vectors_with_the_default_depth(fresh_index_dir, embedder):
    import faiss

    before = IndexStore.open(fresh_index_dir)
    count, generation = before.count(), before.generation
    before.close()
    with IndexWriter(Settings(index_dir=fresh_index_dir, index_type="hnsw"), embedder=_NoEncoding(embedder)):
        pass
    store = IndexStore.open(fresh_index_dir)
    try:
        index, loaded_generation = store.load_vector_index()
        assert index.name == "hnsw" and index.ntotal == count
        assert loaded_generation == generation
        # efSearch is saved in the file: an index read back searches as deep as the defaults say.
        assert faiss.downcast_index(index.faiss.index).hnsw.efSearch == hnsw.HNSW_EF_SEARCH
    finally:
        store.close()


def test_hnsw_defaults_reach_recall_098_against_exact():
    rng = np.random.default_rng(7)
    # Loosely clustered unit vectors (60 topics, wide spread): hard enough that efSearch 32 stays
    # near 0.96 here, so the test fails if the defaults lose depth; efSearch 128 reaches 0.997.
    centres = rng.normal(size=(60, 384)).astype(np.float32)
    matrix = centres[rng.integers(0, 60, 6000)] + 2.5 * rng.normal(size=(6000, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    queries, base = matrix[:200], matrix[200:]
    ids = np.arange(len(base), dtype=np.int64) + 1
    exact = vectors.build_index("flat", 384, ids, base).faiss.search(queries, 10)[1]
    approx = vectors.build_index("hnsw", 384, ids, base).faiss.search(queries, 10)[1]
    assert recall_at_k(approx, exact) >= 0.98


def test_recall_counts_shared_ids_per_query():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    approx = np.array([[4, 3, 2, 1], [5, 6, 9, 10]])
    assert recall_at_k(approx, exact, k=4) == pytest.approx((1.0 + 0.5) / 2)
    assert recall_at_k(exact, exact, k=2) == 1.0


def test_ndcg_matches_a_hand_computed_ranking():
    qrels = {"q1": {"a": 1, "b": 1}, "q2": {"c": 2}}
    ranked = {"q1": ["x", "a", "b"], "q2": ["c"]}
    q1 = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, qrels) == pytest.approx((q1 + 1.0) / 2)
    assert ndcg_at_k({"q1": ["x"]}, {"q1": {"a": 1}}) == 0.0  # a query with no hit counts as 0
