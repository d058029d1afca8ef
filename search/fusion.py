"""Pure fusion functions: combine ranked (rowids, scores) lists into one ranking. No I/O.

Two families, both blind to the raw score scales (cosine in [-1, 1] against unbounded BM25):
- reciprocal rank fusion, which uses only ranks;
- a convex combination of per-query normalised scores, where a paper missing from one list gets
  that list's floor (0 after normalisation).
Parameters are chosen on training data (docs/quality.md); the defaults below are those choices.
"""

from __future__ import annotations

import numpy as np

Ranking = tuple[np.ndarray, np.ndarray]  # (rowids, scores), best first

# Classic RRF constant (Cormack et al. 2009).
RRF_K = 60.0


def _order(ids: list[int], fused: dict[int, float]) -> Ranking:
    """Rowids by fused score, best first; ties keep the order in which ids were first seen."""
    order = sorted(range(len(ids)), key=lambda i: -fused[ids[i]])
    rowids = np.array([ids[i] for i in order], dtype=np.int64)
    return rowids, np.array([fused[r] for r in rowids.tolist()], dtype=np.float32)


def rrf(rankings: list[Ranking], k: float = RRF_K, weights: list[float] | None = None) -> Ranking:
    """Reciprocal rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    seen: list[int] = []
    for (rowids, _), weight in zip(rankings, weights, strict=True):
        for rank, rowid in enumerate(rowids.tolist(), start=1):
            if rowid not in fused:
                fused[rowid] = 0.0
                seen.append(rowid)
            fused[rowid] += weight / (k + rank)
    return _order(seen, fused)


def min_max(scores: np.ndarray, floor: float | None = None) -> np.ndarray:
    """Scale scores to [0, 1] by the list's (or a given) minimum and the list's maximum."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return scores
    low = float(scores.min()) if floor is None else floor
    span = float(scores.max()) - low
    if span <= 0:
        return np.ones_like(scores)
    return np.clip((scores - low) / span, 0.0, 1.0)


def convex(dense: Ranking, lexical: Ranking, alpha: float, dense_floor: float | None = None,
           lexical_floor: float | None = 0.0) -> Ranking:
    """alpha * norm(dense) + (1 - alpha) * norm(lexical), each min-max normalised per query.

    Args:
        alpha: weight of the dense side, in [0, 1].
        dense_floor, lexical_floor: the score that maps to 0 (None: the list's own minimum).
            BM25's natural floor is 0 (no term matched); cosine has none worth using, so the
            dense list's own minimum serves.
    A paper absent from a list scores 0 on that side.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    fused: dict[int, float] = {}
    seen: list[int] = []
    for (rowids, scores), weight, floor in ((dense, alpha, dense_floor), (lexical, 1.0 - alpha, lexical_floor)):
        for rowid, value in zip(rowids.tolist(), min_max(scores, floor).tolist(), strict=True):
            if rowid not in fused:
                fused[rowid] = 0.0
                seen.append(rowid)
            fused[rowid] += weight * value
    return _order(seen, fused)
