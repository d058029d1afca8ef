"""Ranking metrics as BEIR computes them (pytrec_eval): pure functions over ranked ids and grades.

nDCG@10 uses the judged grade as the gain (linear, so graded collections such as Cranfield count
by grade); Recall@100 and MRR@10 count documents judged > 0.
"""

from __future__ import annotations

import math

__all__ = ["ndcg_at_k", "recall_at_k", "mrr_at_k", "score_run"]


def ndcg_at_k(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain with gain = grade (pytrec_eval's convention)."""
    dcg = sum(max(grades.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / best if best > 0 else 0.0


def recall_at_k(ranked: list[str], grades: dict[str, int], k: int = 100) -> float:
    """Share of the relevant documents (grade > 0) found in the top k."""
    relevant = {doc for doc, g in grades.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document within the top k, else 0."""
    for i, doc in enumerate(ranked[:k]):
        if grades.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score_run(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the judged queries (a query with no run scores 0)."""
    n = len(qrels) or 1
    return {
        "ndcg_at_10": sum(ndcg_at_k(run.get(q, []), g) for q, g in qrels.items()) / n,
        "recall_at_100": sum(recall_at_k(run.get(q, []), g) for q, g in qrels.items()) / n,
        "mrr_at_10": sum(mrr_at_k(run.get(q, []), g) for q, g in qrels.items()) / n,
    }
