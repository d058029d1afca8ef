"""Do scores mean the same on every query? Pooled AUC of hybrid search scores on a judged BEIR set.

Every query's top-100 hybrid hits, judged and unjudged, are pooled; a hit is positive when the
query's judgments grade it > 0. The AUC is the chance that a random positive outscores a random
negative from any query, so a score that means the same on every query scores high. Three
scorings of the same hits are compared: the calibrated score the engine returns
(search/scores.py), the raw cosine, and the per-query min-max convex score hybrid search used
before (the top hit of every query at 1.0). `--fit` refits the search maps' coefficients on the
given split (SciFact train is what search/scores.py holds).

    python -m benchmarks.score_auc ../shared/data/scifact --split test --cache /tmp/evalcache
    python -m benchmarks.score_auc ../shared/data/scifact --split train --fit --cache /tmp/evalcache
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from api.evaluate import load_beir, open_dataset_engine
from models.config import Settings
from search import fusion, scores
from search.engine import HYBRID_ALPHA, HYBRID_DEPTH
from search.lexical import query_terms


def pooled_auc(values: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC of `values` for `positive` against the rest, ties counted half."""
    values = np.asarray(values, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):  # average rank over each run of ties
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def collect(engine, queries: dict[str, str], qrels: dict[str, dict[str, int]]) -> dict[str, np.ndarray]:
    """Per pooled hit: the features, the three scorings and the label."""
    columns: dict[str, list] = {name: [] for name in
                                ("cosine", "bm25_attainable", "bm25_best", "cosine_in_list",
                                 "calibrated", "per_hit", "min_max", "relevant")}
    for qid, text in queries.items():
        vector = engine.encoder.encode([text], "query")[0]
        terms = query_terms(text)
        evidence = engine._hybrid_evidence(vector, terms, HYBRID_DEPTH, None, None)
        top = scores.Evidence(evidence.rowids[:HYBRID_DEPTH], evidence.cosines, evidence.bm25, evidence.attainable)
        features = top.features()
        for name, values in zip(("cosine", "bm25_attainable", "bm25_best", "cosine_in_list"), features, strict=True):
            columns[name] += values.tolist()
        columns["calibrated"] += scores.hybrid(top, scores.SEARCH_HYBRID).tolist()
        columns["per_hit"] += scores.SEARCH_HYBRID(*features).tolist()
        dense = (np.array(list(evidence.cosines), dtype=np.int64), np.array(list(evidence.cosines.values())))
        lexical = (np.array(list(evidence.bm25), dtype=np.int64), np.array(list(evidence.bm25.values())))
        fused = dict(zip(*(side.tolist() for side in fusion.convex(dense, lexical, HYBRID_ALPHA)), strict=True)) \
            if len(lexical[0]) else dict(zip(*(side.tolist() for side in dense), strict=True))
        columns["min_max"] += [fused[r] for r in top.rowids.tolist()]
        papers = engine.store.papers_by_rowid(top.rowids)
        grades = qrels[qid]
        columns["relevant"] += [grades.get(papers[r].paper_id, 0) > 0 if r in papers else False
                                for r in top.rowids.tolist()]
    return {name: np.array(values) for name, values in columns.items()}


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """(intercept, weights...) of a logistic regression by Newton's method on standardised features."""
    mean, spread = features.mean(0), features.std(0) + 1e-9
    z = np.hstack([(features - mean) / spread, np.ones((len(features), 1))])
    w = np.zeros(z.shape[1])
    y = labels.astype(np.float64)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        hessian = z.T @ (z * (p * (1 - p) + 1e-9)[:, None]) + l2 * np.eye(len(w))
        w -= np.linalg.solve(hessian, z.T @ (p - y) + l2 * w)
    weights = w[:-1] / spread
    return np.concatenate([[w[-1] - float((w[:-1] * mean / spread).sum())], weights])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.score_auc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--cache", type=Path, default=None, help="eval index cache (as `papersearch eval --cache`)")
    parser.add_argument("--fit", action="store_true", help="also print the search maps refitted on this split")
    args = parser.parse_args(argv)
    dataset = load_beir(args.dataset_dir, args.split)
    settings = Settings.from_env(**({"eval_cache_dir": args.cache} if args.cache else {}))
    engine, _, index_dir = open_dataset_engine(dataset, settings, None, HYBRID_DEPTH)
    try:
        pool = collect(engine, dataset.queries, dataset.qrels)
    finally:
        engine.close()
    relevant = pool["relevant"].astype(bool)
    print(f"# pooled AUC, {dataset.name} {args.split}: {len(dataset.queries)} queries, top {HYBRID_DEPTH} hybrid "
          f"hits each, {len(relevant)} hits, {int(relevant.sum())} relevant ({index_dir})")
    print("| scoring | pooled AUC |\n|---|---:|")
    for name, label in (("min_max", "min-max convex (before)"), ("cosine", "raw cosine"),
                        ("per_hit", "calibrated map per hit, before the running minimum"),
                        ("calibrated", "calibrated, as returned (search/scores.py)")):
        print(f"| {label} | {pooled_auc(pool[name], relevant):.4f} |")
    if args.fit:
        names = ("cosine", "bm25_attainable", "bm25_best", "cosine_in_list")
        hybrid = fit_logistic(np.stack([pool[n] for n in names], 1), relevant)
        print(f"SEARCH_HYBRID = Logistic({hybrid[0]:.4f}, "
              + ", ".join(f"{n}={v:.4f}" for n, v in zip(names, hybrid[1:], strict=True)) + ")")
        print("(SEARCH_LEXICAL is fitted the same way on the lexical-mode lists: bm25_attainable, bm25_best)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
