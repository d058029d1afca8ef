"""What a hit's score means: one home for turning raw evidence into the score a caller sees.

- **dense**: the cosine of the query (or source paper, or Rocchio) vector and the paper's, in [-1, 1].
- **lexical** and **hybrid**: an estimate, in [0, 1], of the chance that the paper is relevant,
  from a logistic map of evidence that means the same on every query: the raw cosine, BM25 divided
  by the query's maximum attainable BM25 (so it no longer grows with the number and rarity of the
  query's terms), and where the paper stands in its own list (BM25 / the list's best, the cosine
  min-max scaled over the candidates). Search maps were fitted on SciFact train, related and
  recommend maps on csfcube-dev related (docs/quality.md, "Scores"); nothing else was fitted on.

The ranking is not changed by any of this (it stays the fusion that measured best on nDCG@10);
the shown score is made non-increasing down the list (a running minimum, which depends only on
the hits above, so every page of one ranking agrees), and so `min_score` cuts a prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# tantivy's BM25 k1: a term's contribution tends to idf * (k1 + 1) as its frequency grows.
BM25_K1 = 1.2
# A caller's min_score must lie in the range every mode's scores share (cosines reach -1).
MIN_SCORE_RANGE = (-1.0, 1.0)


@dataclass(frozen=True)
class Logistic:
    """p = 1 / (1 + exp(-(intercept + sum of weight * feature))); a weight left 0 ignores its feature."""

    intercept: float
    cosine: float = 0.0             # the raw cosine
    bm25_attainable: float = 0.0    # BM25 / the query's maximum attainable BM25
    bm25_best: float = 0.0          # BM25 / the best BM25 in the query's list
    cosine_in_list: float = 0.0     # cosine min-max scaled over the query's candidates

    def __call__(self, cosine, bm25_attainable, bm25_best, cosine_in_list) -> np.ndarray:
        logit = (self.intercept + self.cosine * cosine + self.bm25_attainable * bm25_attainable
                 + self.bm25_best * bm25_best + self.cosine_in_list * cosine_in_list)
        return 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype=np.float64)))


# Fitted by benchmarks/score_auc.py --fit (Newton's method, light L2) on every query's top-100 hits.
SEARCH_HYBRID = Logistic(-14.2439, cosine=0.0400, bm25_attainable=2.8837, bm25_best=4.5404, cosine_in_list=8.9725)
SEARCH_LEXICAL = Logistic(-11.1218, bm25_attainable=5.6346, bm25_best=8.4147)
RELATED_HYBRID = Logistic(-7.7902, cosine=9.2998, bm25_attainable=6.1346, bm25_best=0.7713, cosine_in_list=0.9077)
RELATED_LEXICAL = Logistic(-3.0566, bm25_attainable=9.8937, bm25_best=1.7678)
MAPS = {("search", "hybrid"): SEARCH_HYBRID, ("search", "lexical"): SEARCH_LEXICAL,
        ("related", "hybrid"): RELATED_HYBRID, ("related", "lexical"): RELATED_LEXICAL}


def attainable_bm25(idf: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """The most BM25 a paper could score on a query of term -> weight (count or boost)."""
    return (BM25_K1 + 1.0) * sum(weight * idf.get(term, 0.0) for term, weight in weights.items())


def non_increasing(scores: np.ndarray) -> np.ndarray:
    """Each score capped by every score above it, so a threshold cuts a prefix."""
    return np.minimum.accumulate(np.asarray(scores, dtype=np.float64)) if len(scores) else np.zeros(0)


def lexical(bm25: np.ndarray, attainable: float, model: Logistic) -> np.ndarray:
    """Calibrated scores of a BM25 ranking (best first)."""
    bm25 = np.asarray(bm25, dtype=np.float64)
    if len(bm25) == 0:
        return bm25
    best = max(float(bm25[0]), 1e-9)
    return non_increasing(model(0.0, bm25 / max(attainable, 1e-9), bm25 / best, 0.0))


@dataclass(frozen=True)
class Evidence:
    """What a fused ranking knows about its hits: the order and each side's raw scores.

    cosines: rowid -> exact cosine for every candidate of the fusion (its range scales
        `cosine_in_list`); bm25: rowid -> BM25 for the lexical candidates (any other paper has 0);
        attainable: `attainable_bm25` of the query.
    """

    rowids: np.ndarray
    cosines: Mapping[int, float]
    bm25: Mapping[int, float]
    attainable: float

    def features(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cosine, BM25 / attainable, BM25 / the list's best, cosine min-max in the list), per hit."""
        ids = self.rowids.tolist()
        low, high = (min(self.cosines.values()), max(self.cosines.values())) if self.cosines else (0.0, 0.0)
        # A row the vector index lost since the lexical side saw it counts as the worst candidate.
        cos = np.array([self.cosines.get(r, low) for r in ids], dtype=np.float64)
        bm = np.array([self.bm25.get(r, 0.0) for r in ids], dtype=np.float64)
        best = max(max(self.bm25.values(), default=0.0), 1e-9)
        in_list = (cos - low) / (high - low) if high > low else np.ones_like(cos)
        return cos, bm / max(self.attainable, 1e-9), bm / best, in_list


def hybrid(evidence: Evidence, model: Logistic) -> np.ndarray:
    """Calibrated scores of a fused ranking, in its order (best first)."""
    if len(evidence.rowids) == 0:
        return np.zeros(0)
    return non_increasing(model(*evidence.features()))


def cut(scores: np.ndarray, min_score: float | None) -> int:
    """How many leading hits of a non-increasing score list reach `min_score` (all when None)."""
    if min_score is None:
        return len(scores)
    below = np.flatnonzero(np.asarray(scores) < min_score)
    return int(below[0]) if len(below) else len(scores)
