"""The float16 flat index: the same answers as flat on the sample corpus, in half the bytes."""

from __future__ import annotations

import numpy as np

from api.cli import main
from indexer import vectors
from indexer.check import check_index
from indexer.store import IndexStore
from models.config import Settings
from models.query import Filters
from search.engine import SearchEngine

QUERIES = ("protein structure prediction", "image recognition with deep networks", "reinforcement learning",
           "climate models", "graph neural networks for molecules")


def _top_ids(directory, embedder, **search) -> list[list[str]]:
    engine = SearchEngine.open(Settings(index_dir=directory), encoder=embedder)
    try:
        return [[h.paper.paper_id for h in engine.search(q, limit=10, mode="dense", snippets=False, **search)]
                for q in QUERIES]
    finally:
        engine.close()


def test_flat16_search_matches_flat_top10_on_the_sample(sample_index_dir, fresh_index_dir, embedder):
    # The CLI offers the kind because the registry has it; rebuilding re-embeds nothing.
    assert main(["rebuild", "--index", str(fresh_index_dir), "--index-type", "flat16", "--quiet"]) == 0
    store = IndexStore.open(fresh_index_dir)
    try:
        index, _ = store.load_vector_index()
        assert index.name == "flat16" and store.vector_file_problem is None  # read back from its file
    finally:
        store.close()
    assert _top_ids(fresh_index_dir, embedder) == _top_ids(sample_index_dir, embedder)
    filters = Filters(year_from=2019)
    assert _top_ids(fresh_index_dir, embedder, filters=filters) == _top_ids(sample_index_dir, embedder,
                                                                            filters=filters)
    assert check_index(fresh_index_dir).ok  # fp16 rounding is not mistaken for other vectors


def test_flat16_file_is_about_half_of_flat():
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(3000, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    ids = np.arange(1, len(matrix) + 1, dtype=np.int64)
    flat = vectors.build_index("flat", 384, ids, matrix)
    half = vectors.build_index("flat16", 384, ids, matrix)
    ratio = len(half.serialize()) / len(flat.serialize())
    assert 0.45 < ratio < 0.55, ratio
    # Exact up to fp16 rounding: the same top 10 for almost every query, scores within 1e-3.
    queries = matrix[:50]
    fetch = None  # both hold full vectors; nothing is fetched from the store
    same = 0
    for query in queries:
        exact_ids, exact_scores = flat.search(query.reshape(1, -1), 10, fetch)
        ids16, scores16 = half.search(query.reshape(1, -1), 10, fetch)
        same += set(ids16.tolist()) == set(exact_ids.tolist())
        assert np.abs(np.sort(scores16) - np.sort(exact_scores)).max() < 1e-3
    assert same >= 48


def test_flat16_edits_in_place_and_reads_back_as_flat16(tmp_path):
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(200, 32)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    index = vectors.build_index("flat16", 32, np.arange(1, 201), matrix)
    assert index.apply_changes(np.array([1, 2, 3]), np.array([500]), matrix[:1])
    assert sorted(index.live_ids().tolist()) == [*range(4, 201), 500]
    path = tmp_path / "saved"
    path.write_bytes(index.serialize())
    loaded = vectors.read_index(path)
    assert loaded.name == "flat16" and loaded.live_count() == 198
    assert loaded.count_differing(np.array([500]), matrix[:1]) == 0
