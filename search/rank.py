"""Pure ranking helpers over (rowids, scores) pairs: no I/O, no model."""

from __future__ import annotations

import numpy as np

# FAISS marks "no result" with id -1.
_NO_RESULT = -1


def clean(rowids: np.ndarray, scores: np.ndarray, exclude: set[int] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
    """Drop FAISS padding (-1), excluded ids and repeated ids, keeping the order."""
    keep_ids, keep_scores, seen = [], [], set(exclude)
    for rowid, score in zip(rowids.tolist(), scores.tolist()):
        if rowid == _NO_RESULT or rowid in seen:
            continue
        seen.add(rowid)
        keep_ids.append(rowid)
        keep_scores.append(score)
    return np.array(keep_ids, dtype=np.int64), np.array(keep_scores, dtype=np.float32)


def page(rowids: np.ndarray, scores: np.ndarray, limit: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The slice [offset, offset + limit) of a ranking."""
    return rowids[offset:offset + limit], scores[offset:offset + limit]


def rocchio(positive: np.ndarray, negative: np.ndarray, negative_weight: float = 0.5) -> np.ndarray:
    """One query vector from liked and disliked papers: mean(liked) - w * mean(disliked), unit length."""
    query = positive.mean(axis=0)
    if len(negative):
        query = query - negative_weight * negative.mean(axis=0)
    norm = np.linalg.norm(query)
    return (query / norm if norm > 0 else query).astype(np.float32)
