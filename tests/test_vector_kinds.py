"""The contract every vector index kind keeps, run over every kind the registry finds.

A new kind in indexer/vectors/ is tested here without listing it anywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from indexer import vectors

DIM = 32
COUNT = 400


def _unit(rows: int, seed: int) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(size=(rows, DIM)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


MATRIX = _unit(COUNT, 1)
ROWIDS = np.arange(10, 10 + COUNT, dtype=np.int64)  # not 0-based, like SQLite row ids


def _fetch(rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The store's side of a refined search: full vectors for the rows that exist."""
    rowids = np.asarray(rowids, dtype=np.int64)
    rowids = rowids[np.isin(rowids, ROWIDS)]
    return rowids, MATRIX[rowids - 10]


def test_every_concrete_kind_is_offered_and_auto_resolves_to_one():
    assert vectors.INDEX_TYPES == (vectors.AUTO, *vectors.kind_names())
    assert {"flat", "hnsw", "ivfpq"} <= set(vectors.kind_names())
    for count in (0, vectors.AUTO_HNSW_THRESHOLD, vectors.AUTO_IVFPQ_THRESHOLD):
        assert vectors.resolve_index_type(vectors.AUTO, count) in vectors.kind_names()
    with pytest.raises(ValueError, match="unknown index type"):
        vectors.resolve_index_type("nope", 1)


@pytest.mark.parametrize("name", vectors.kind_names())
def test_a_kind_finds_a_stored_vector_first_and_keeps_to_the_allow_list(name):
    index = vectors.build_index(name, DIM, ROWIDS, MATRIX)
    assert index.name == name and index.dimension == DIM and index.live_count() == COUNT
    assert sorted(index.live_ids().tolist()) == ROWIDS.tolist()
    query = MATRIX[7:8]
    rowids, scores = index.search(query, 5, _fetch)
    assert rowids[0] == ROWIDS[7] and scores[0] == pytest.approx(1.0, abs=2e-2)
    allowed = ROWIDS[100:140]
    rowids, _ = index.search(query, 10, _fetch, allowed)
    kept = rowids[rowids >= 0]
    assert len(kept) == 10 and set(kept.tolist()) <= set(allowed.tolist())
    kept, cosines = index.cosines(ROWIDS[:3], MATRIX[0], _fetch)
    assert kept.tolist() == ROWIDS[:3].tolist() and cosines[0] == pytest.approx(1.0, abs=2e-2)


@pytest.mark.parametrize("name", vectors.kind_names())
def test_a_kind_removes_adds_and_reads_back_as_itself(name, tmp_path):
    index = vectors.build_index(name, DIM, ROWIDS, MATRIX)
    extra = _unit(1, 2)
    if index.apply_changes(ROWIDS[:2], np.array([999]), extra):
        live = set(index.live_ids().tolist())
        assert ROWIDS[0] not in live and 999 in live and index.live_count() == COUNT - 1
    path = tmp_path / "saved"
    path.write_bytes(index.serialize())
    loaded = vectors.read_index(path)
    assert type(loaded) is type(index) and loaded.live_count() == index.live_count()
    if loaded.holds_vectors:
        assert loaded.count_differing(ROWIDS[5:9], MATRIX[5:9]) == 0
        assert loaded.count_differing(ROWIDS[5:9], MATRIX[9:13]) == 4
