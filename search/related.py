"""Related papers and recommendations with lexical evidence: more-like-this terms fused with the vectors.

The dense side is what `related` and `recommend` always did: the cosine of the stored (or
encoded) vector, or of the Rocchio vector for recommendations. The lexical side asks BM25 for
papers sharing the sources' most distinctive terms, chosen the way Elasticsearch's
more-like-this query chooses them: each term of the source texts scored by term frequency times
inverse document frequency (here BM25's own idf over the index's analyzer and statistics), very
common and unseen terms dropped, the best few kept. Hybrid fuses the two rankings.

Every choice below was measured on csfcube-dev (docs/quality.md, "Related work and
recommendations"); nothing else was tuned on.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from models.query import Filters
from search import checks, fusion, rank, scores
from search.lexical import query_terms

if TYPE_CHECKING:
    from search.engine import SearchEngine

Ranking = tuple[np.ndarray, np.ndarray]

# Candidates fused from each side (more when a page reaches deeper), as hybrid search does.
RELATED_DEPTH = 100
# More-like-this term selection (Elasticsearch's defaults are 25 terms, min_term_freq 2 and
# min_doc_freq 5; an abstract is too short for min_term_freq 2). On csfcube-dev 10, 25, 40 and 60
# terms gave hybrid nDCG@10 0.597-0.600 (noise on 21 queries); 40 is lexically best among them
# (0.480) and keeps the BM25 query bounded when several liked papers pool their terms.
MLT_MAX_TERMS = 40
MLT_MIN_TERM_FREQ = 1
MLT_MIN_DOC_FREQ = 2
# A term in more than this share of the papers says nothing about relatedness.
MLT_MAX_DOC_SHARE = 0.5
# Fusion: plain reciprocal rank fusion. Weighted RRF (dense 1.5, 2) and convex combinations
# (alpha 0.3-0.7) measured no better on csfcube-dev (docs/quality.md).
FUSION_K = 60.0
DENSE_WEIGHT = 1.0


def distinctive_terms(texts_terms: list[list[str]], doc_freqs: Callable[[list[str]], tuple[int, dict[str, int]]],
                      max_terms: int = MLT_MAX_TERMS, min_term_freq: int = MLT_MIN_TERM_FREQ,
                      min_doc_freq: int = MLT_MIN_DOC_FREQ) -> dict[str, float]:
    """The sources' most distinctive terms, term -> tf * idf, best first (more-like-this).

    Args:
        texts_terms: the analysed terms of each source text (a paper's title + abstract).
        doc_freqs: `LexicalSearcher.doc_freqs`, the index's (paper count, term -> document frequency).
    A source paper is itself in the index, so min_doc_freq counts it: 2 keeps terms shared with
    at least one other paper.
    """
    tf = Counter(term for terms in texts_terms for term in terms)
    if not tf:
        return {}
    total, df = doc_freqs(list(tf))
    scored = []
    for term, freq in tf.items():
        docs = df.get(term, 0)
        if freq < min_term_freq or docs < min_doc_freq or docs > MLT_MAX_DOC_SHARE * total:
            continue
        idf = math.log(1.0 + (total - docs + 0.5) / (docs + 0.5))  # BM25's idf, as the index scores
        scored.append((freq * idf, term))
    scored.sort(key=lambda item: (-item[0], item[1]))  # ties by term, so the choice is deterministic
    return {term: score for score, term in scored[:max_terms]}


def as_boosts(weights: dict[str, float]) -> dict[str, float]:
    """Term boosts for the BM25 query: each term's weight relative to the best term's."""
    if not weights:
        return {}
    top = max(weights.values())
    return {term: weight / top for term, weight in weights.items()}


def without(ranking: Ranking, exclude: set[int]) -> Ranking:
    """A ranking without the excluded rowids, order kept."""
    return rank.clean(*ranking, exclude)


def fuse(dense: Ranking, lexical: Ranking, k: float = FUSION_K, dense_weight: float = DENSE_WEIGHT) -> Ranking:
    """Reciprocal rank fusion of the dense and lexical rankings (dense weighted by `dense_weight`)."""
    if len(lexical[0]) == 0:
        return dense
    if len(dense[0]) == 0:
        return lexical
    return fusion.rrf([dense, lexical], k=k, weights=[dense_weight, 1.0])


def rank_for(engine: SearchEngine, mode: str, depth: int, vector: np.ndarray | None, texts: list[str],
             filters: Filters | None, exclude: set[int]) -> Ranking:
    """The engine's ranking for related/recommend: dense from `vector`, lexical from `texts`.

    Dense mode is exactly the engine's dense ranking (filters, then exclusions), scored by cosine.
    The lexical side takes the same filters and exclusions: it fetches as many more as there are
    excluded papers, so excluding never shortens a page. Lexical and hybrid hits get calibrated
    scores (search/scores.py); the order stays the BM25 or RRF order.
    """
    if mode == "dense":
        return engine._dense(vector, depth, filters, exclude)
    active = filters is not None and filters.active()
    allowed = engine.store.filter_rowids(checks.checked_filters(filters, engine.settings)) if active else None
    texts_terms = [query_terms(text) for text in texts]
    weights = distinctive_terms(texts_terms, engine._lexical.doc_freqs)
    boosts = as_boosts(weights)
    # A term's weight is tf * idf: its idf is at hand without asking the index again.
    tf = Counter(term for terms in texts_terms for term in terms)
    attainable = scores.attainable_bm25({term: weight / tf[term] for term, weight in weights.items()}, boosts)

    def lexical(k: int) -> Ranking:
        return without(engine._lexical.top(boosts, k + len(exclude), allowed), exclude)

    def dense(k: int) -> Ranking:
        return engine._dense(vector, k, filters, exclude, allowed=allowed)

    if mode == "lexical":
        rowids, bm25 = lexical(depth)
        return rowids, scores.lexical(bm25, attainable, scores.RELATED_LEXICAL)
    evidence = fused_evidence(engine, vector, dense(max(depth, RELATED_DEPTH)), lexical(max(depth, RELATED_DEPTH)),
                              attainable, depth)
    return evidence.rowids, scores.hybrid(evidence, scores.RELATED_HYBRID)


def fused_evidence(engine: SearchEngine, vector: np.ndarray, dense: Ranking, lexical: Ranking,
                   attainable: float, depth: int) -> scores.Evidence:
    """The RRF order of the two sides, with the BM25 scores and the exact cosines of the dense
    candidates and of the lexical-only ones among the first `depth` (RRF needs no cosine, and only
    hits down to the page are shown or cut; their running-minimum scores depend on nothing below)."""
    rowids = fuse(dense, lexical)[0]
    cosines = dict(zip(*(side.tolist() for side in dense), strict=True))
    extra = np.setdiff1d(rowids[:depth], dense[0])
    if len(extra):
        cosines.update(zip(*(side.tolist() for side in engine._cosines(extra, vector)), strict=True))
    return scores.Evidence(rowids, cosines, dict(zip(*(side.tolist() for side in lexical), strict=True)), attainable)
