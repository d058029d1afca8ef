"""Searching: the sample-corpus expectations, filters against a brute-force oracle, related, recommend."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.store import IndexStore
from models.errors import InvalidQuery, PaperNotFound
from models.paper import embed_text
from models.query import Filters

OCR_PAPERS = {"seed-17", "seed-03", "seed-10"}  # PP-OCRv2, PP-OCRv3, PaddleOCR 3.0


def _ids(hits):
    return [h.paper.paper_id for h in hits]


def test_lightweight_ocr_ranks_the_three_ocr_papers_first(sample_engine):
    hits = sample_engine.search("lightweight OCR", limit=5, mode="dense")
    assert set(_ids(hits)[:3]) == OCR_PAPERS
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))


def test_protein_folding_finds_helixfold(sample_engine):
    assert "seed-01" in _ids(sample_engine.search("protein structure prediction", limit=3, mode="dense"))


def test_related_of_pp_ocrv3_ranks_pp_ocrv2_first_and_never_itself(sample_engine):
    hits = sample_engine.related("seed-03", limit=23)
    assert _ids(hits)[0] == "seed-17"
    assert "seed-03" not in _ids(hits) and len(hits) == 23


def test_related_to_a_pasted_abstract(sample_engine):
    text = ("We present a compact text detection and recognition pipeline for scanned receipts that "
            "runs on mobile CPUs in real time.")
    assert set(_ids(sample_engine.related(text=text, limit=3))) & OCR_PAPERS


def test_recommend_never_returns_inputs_and_follows_likes(sample_engine):
    hits = sample_engine.recommend(["seed-03", "seed-17"], ["seed-09"], limit=10)
    ids = _ids(hits)
    assert not {"seed-03", "seed-17", "seed-09"} & set(ids)
    assert ids[0] == "seed-10"  # PaddleOCR 3.0, the remaining OCR system paper


def test_unknown_ids_and_empty_queries_are_clear_errors(sample_engine):
    with pytest.raises(PaperNotFound, match="nope"):
        sample_engine.related("nope")
    with pytest.raises(PaperNotFound, match="'x1', 'x2'"):
        sample_engine.recommend(["seed-03", "x1"], ["x2"])
    for query in ("", "   \n\t"):
        with pytest.raises(InvalidQuery, match="empty"):
            sample_engine.search(query)
    with pytest.raises(InvalidQuery, match="limit"):
        sample_engine.search("ocr", limit=0)
    with pytest.raises(InvalidQuery, match="characters long"):
        sample_engine.search("x" * 100_000)


def _oracle(engine, vector, filters, k, exclude=()):
    """Brute force over every stored paper: filter in Python, score with numpy."""
    store: IndexStore = engine.store
    rows = []
    for _rowid, paper in store.iter_papers():
        if paper.paper_id in exclude:
            continue
        if filters.year_from is not None and (paper.year is None or paper.year < filters.year_from):
            continue
        if filters.year_to is not None and (paper.year is None or paper.year > filters.year_to):
            continue
        if filters.category and not any(c.lower() == filters.category.lower() or
                                         c.lower().startswith(filters.category.lower() + ".")
                                         for c in paper.categories):
            continue
        if filters.author and not any(filters.author.lower() in a.lower() for a in paper.authors):
            continue
        rows.append((paper.paper_id, float(store.embeddings_for([paper.paper_id])[paper.paper_id] @ vector)))
    rows.sort(key=lambda r: -r[1])
    return rows[:k]


@pytest.mark.parametrize("filters", [
    Filters(year_from=2022),
    Filters(year_to=2021, category="cs.CV"),
    Filters(category="cs"),
    Filters(author="cheng cui"),
    Filters(author="WU", year_from=2021, year_to=2022),
    Filters(category="cs.DC"),
])
def test_filters_match_a_brute_force_oracle(sample_engine, embedder, filters):
    query = "efficient training of large models"
    vector = embedder.encode([query], "query")[0]
    for k in (3, 10):
        expected = _oracle(sample_engine, vector, filters, k)
        hits = sample_engine.search(query, limit=k, filters=filters, mode="dense")
        assert len(hits) == len(expected), "a filter must return k papers when k papers match"
        assert _ids(hits) == [pid for pid, _ in expected]
        assert np.allclose([h.score for h in hits], [s for _, s in expected], atol=1e-4)


def test_filtered_related_excludes_the_paper(sample_engine):
    filters = Filters(category="cs.CV")
    hits = sample_engine.related("seed-03", limit=20, filters=filters)
    assert "seed-03" not in _ids(hits)
    assert all("cs.CV" in h.paper.categories for h in hits)


def test_filter_matching_nothing_returns_nothing(sample_engine):
    assert sample_engine.search("ocr", filters=Filters(year_from=2100), mode="dense") == []


def test_paging_is_stable_and_non_overlapping(sample_engine):
    whole = _ids(sample_engine.search("document parsing", limit=12, mode="dense"))
    pages = [_ids(sample_engine.search("document parsing", limit=4, offset=o, mode="dense")) for o in (0, 4, 8)]
    assert sum(pages, []) == whole


def test_scores_are_cosine_similarities(sample_engine, embedder):
    hit = sample_engine.search("ERNIE language model", limit=1, mode="dense")[0]
    doc = embedder.encode([embed_text(hit.paper)], "document")[0]
    query = embedder.encode(["ERNIE language model"], "query")[0]
    assert hit.score == pytest.approx(float(doc @ query), abs=1e-4)
