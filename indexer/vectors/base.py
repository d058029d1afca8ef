"""The interface every vector index kind implements, and what most of them share.

A kind wraps one FAISS structure that holds the stored vectors under their SQLite row ids.
Vectors are L2-normalised, so inner product is cosine. Everything outside `indexer/vectors/`
talks to an index through these methods and never asks which kind it has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import faiss
import numpy as np

# (found rowids, their full stored vectors) for the rowids asked; rows deleted meanwhile are left out.
FetchVectors = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def empty_result() -> tuple[np.ndarray, np.ndarray]:
    """No rowids, no scores."""
    return np.zeros(0, np.int64), np.zeros(0, np.float32)


def exact_top(query: np.ndarray, rowids: np.ndarray, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `matrix` with the highest inner product with `query` (one vector), best first."""
    if len(rowids) == 0:
        return empty_result()
    scores = matrix @ query
    top = np.argsort(-scores, kind="stable")[:k]
    return np.asarray(rowids, dtype=np.int64)[top], scores[top].astype(np.float32)


class VectorIndex:
    """One kind of vector index. Subclasses set `name` and implement `create` and `matches`.

    The defaults suit an exact index inside an IndexIDMap2 (flat): ids in its id map, vectors
    read back with `reconstruct`, removals in place.
    """

    name: ClassVar[str]
    # How far a vector read back may differ from the stored float32 one and still be "the same".
    tolerance: ClassVar[float] = 1e-5
    # False when the index keeps only compressed codes, so there is no vector to compare.
    holds_vectors: ClassVar[bool] = True
    # False when the structure is nothing but the stored vectors (flat): it is then built from
    # SQLite on every open instead of being saved, so each vector is kept on disk once.
    persisted: ClassVar[bool] = True

    def __init__(self, index: faiss.Index):
        self.faiss = index

    # --- construction --------------------------------------------------------------------------

    @classmethod
    def create(cls, dimension: int, count: int = 0) -> VectorIndex:
        """An empty index sized for about `count` vectors (train it first if `needs_training`)."""
        raise NotImplementedError

    @classmethod
    def matches(cls, index: faiss.Index) -> bool:
        """Whether a FAISS structure read from a file is one this kind makes."""
        raise NotImplementedError

    @property
    def needs_training(self) -> bool:
        return not self.faiss.is_trained

    def training_size(self, count: int) -> int:
        """How many sample vectors `train` wants for an index meant to hold `count` vectors."""
        return 0

    def train(self, sample: np.ndarray) -> None:
        """Learn what the structure needs from a sample of stored vectors (nothing, by default)."""

    def fits(self, count: int) -> bool:
        """Whether the index still suits `count` vectors; False means rebuild it from the store."""
        return True

    def prefers_rebuild(self) -> bool:
        """Whether a fresh structure would now serve better (checked before a snapshot is saved)."""
        return not self.fits(self.live_count())

    def set_search_depth(self) -> None:
        """Apply the current defaults for how far a search looks (FAISS saves them in the file)."""

    # --- changes -------------------------------------------------------------------------------

    def copy(self) -> VectorIndex:
        """An independent copy, to change while searches go on reading this one."""
        return type(self)(faiss.clone_index(self.faiss))

    def add(self, rowids: np.ndarray, matrix: np.ndarray) -> None:
        self.faiss.add_with_ids(np.ascontiguousarray(matrix, dtype=np.float32), np.asarray(rowids, dtype=np.int64))

    def remove(self, rowids: np.ndarray) -> bool:
        """Remove rows in place; False (nothing changed) when a rebuild would serve better."""
        self.faiss.remove_ids(np.asarray(rowids, dtype=np.int64))
        return True

    def apply_changes(self, removed: np.ndarray, added_ids: np.ndarray, added_vectors: np.ndarray) -> bool:
        """Remove and add rows in place. Returns False when the index must be rebuilt instead."""
        if not self.fits(self.ntotal - len(removed) + len(added_ids)):
            return False
        if len(removed) and not self.remove(np.asarray(removed, dtype=np.int64)):
            return False
        if len(added_ids):
            self.add(added_ids, added_vectors)
        return True

    # --- reading -------------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        """Rows the structure holds, including any it no longer returns."""
        return self.faiss.ntotal

    @property
    def dimension(self) -> int:
        return self.faiss.d

    def live_ids(self) -> np.ndarray:
        """The ids of the rows the index returns, in storage order."""
        return faiss.vector_to_array(self.faiss.id_map)

    def live_count(self) -> int:
        """How many rows the index can return."""
        return self.faiss.ntotal

    def search(self, query: np.ndarray, k: int, fetch_vectors: FetchVectors,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rowids, scores) of the k rows nearest to `query` (shape (1, d)), best first.

        With `allowed`, only those rows may be returned. FAISS's padding (-1) may remain.
        """
        if allowed is None:
            scores, rowids = self.faiss.search(query, k)
            return rowids[0], scores[0]
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        scores, rowids = self.faiss.search(query, min(k, len(allowed)), params=params)
        return rowids[0], scores[0]

    def cosines(self, rowids: np.ndarray, vector: np.ndarray,
                fetch_vectors: FetchVectors) -> tuple[np.ndarray, np.ndarray]:
        """Cosine of `vector` with the rows `rowids` (rows the index lacks are dropped)."""
        kept, rows = [], []
        for rowid in rowids.tolist():
            try:
                rows.append(self.faiss.reconstruct(rowid))
            except RuntimeError:  # deleted since the caller's ids were read
                continue
            kept.append(rowid)
        if not kept:
            return empty_result()
        return np.array(kept, dtype=np.int64), (np.stack(rows) @ vector).astype(np.float32)

    def count_differing(self, rowids: np.ndarray, matrix: np.ndarray) -> int:
        """How many of `rowids` hold other vectors than `matrix` (the stored ones), beyond rounding."""
        if not self.holds_vectors:
            return 0
        held = self.faiss.reconstruct_batch(rowids)
        return int((np.abs(held - matrix).max(axis=1) > self.tolerance).sum())

    def serialize(self) -> bytes:
        """The bytes of the FAISS file."""
        return faiss.serialize_index(self.faiss).tobytes()
