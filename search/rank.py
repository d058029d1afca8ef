"""Pure ranking helpers over (rowids, scores) pairs and query vectors: no I/O, no model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.errors import InvalidQuery, PaperNotFound

# FAISS marks "no result" with id -1.
_NO_RESULT = -1


class HitPage(list):
    """A page of hits that also knows whether it is the last one because a `min_score` cut ended the
    list there (the API's `next_offset` is then null even when the page is full)."""

    def __init__(self, hits=(), last: bool = False):
        super().__init__(hits)
        self.last = last


def clean(rowids: np.ndarray, scores: np.ndarray, exclude: set[int] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
    """Drop FAISS padding (-1), excluded ids and repeated ids, keeping the order."""
    keep_ids, keep_scores, seen = [], [], set(exclude)
    for rowid, score in zip(rowids.tolist(), scores.tolist(), strict=True):
        if rowid == _NO_RESULT or rowid in seen:
            continue
        seen.add(rowid)
        keep_ids.append(rowid)
        keep_scores.append(score)
    return np.array(keep_ids, dtype=np.int64), np.array(keep_scores, dtype=np.float32)


def page(rowids: np.ndarray, scores: np.ndarray, limit: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The slice [offset, offset + limit) of a ranking."""
    return rowids[offset:offset + limit], scores[offset:offset + limit]


def recommendation_query(positive: list[str], negative: list[str],
                         vectors_of: Callable[[list[str]], dict[str, np.ndarray]],
                         extra_positive: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """The Rocchio query vector for liked and disliked paper ids, and every id given (to exclude).

    `vectors_of(ids)` returns the stored vector of each id it knows; `extra_positive` holds liked
    vectors of papers that are not in the index (a library's unmatched entries). Raises
    InvalidQuery without a liked paper and PaperNotFound naming every unknown id.
    """
    extra = np.zeros((0, 1), np.float32) if extra_positive is None else np.asarray(extra_positive, np.float32)
    if not positive and not len(extra):
        raise InvalidQuery("Recommendations need at least one liked (positive) paper id.")
    wanted = list(dict.fromkeys([*positive, *negative]))
    stored = vectors_of(wanted)
    missing = [pid for pid in wanted if pid not in stored]
    if missing:
        raise PaperNotFound(missing)
    liked = [stored[p] for p in positive] + list(extra)
    query = rocchio(np.stack(liked),
                    np.stack([stored[p] for p in negative]) if negative else np.zeros((0, 1)))
    return query, wanted


def rocchio(positive: np.ndarray, negative: np.ndarray, negative_weight: float = 0.5) -> np.ndarray:
    """One query vector from liked and disliked papers: mean(liked) - w * mean(disliked), unit length."""
    query = positive.mean(axis=0)
    if len(negative):
        query = query - negative_weight * negative.mean(axis=0)
    norm = np.linalg.norm(query)
    return (query / norm if norm > 0 else query).astype(np.float32)
