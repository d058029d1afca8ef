"""Snippets equal what the plain definition gives: split every sentence, look up every word's index
term, score every sentence. search/highlight.py skips most of that work for speed (word starts
found by bytes.find, sentence ends looked for only around matches); these tests catch any output
that the shortcuts change, over real abstracts and many queries."""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.ingest import read_papers
from indexer.lexical import term_of
from search.highlight import MAX_CHARS, Highlighter, _clip, _render, _sentence_score, _word_prefixes, snippet
from search.lexical import query_terms
from tests.conftest import SAMPLE, shared_dataset
from tests.test_highlight import HARD_WORDS, _every_matching_word, _first_lines

# The sentence end as first written: a stop looked behind for, every end found from the start.
_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def reference_snippet(abstract: str, terms: list[str], weights: dict[str, float] | None = None,
                      max_chars: int = MAX_CHARS) -> str | None:
    """What a snippet is, computed the slow and obvious way (the escaping, scoring and clipping
    helpers are shared: the speed-ups did not touch them)."""
    if not abstract or not abstract.strip():
        return None
    weights = weights or {}
    cuts = [0] + [x for m in _END.finditer(abstract) for x in (m.start(), m.end())] + [len(abstract)]
    sentences = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=True) if abstract[a:b].strip()]
    matches = _every_matching_word(abstract, set(terms))
    scored = []
    for order, (a, b) in enumerate(sentences):
        found = [m for m in matches if a <= m[0] < b]
        scored.append((_sentence_score(found, weights), -order, a, b, found))
    best = [s for s in sorted(scored, reverse=True) if s[0] > 0] or [scored[0]]
    chosen, used = [], 0
    for _, minus_order, a, b, found in best:
        if not chosen or used + (b - a) <= max_chars:
            chosen.append((-minus_order, a, b, found))
            used += b - a
            if used >= max_chars * 0.6:
                break
    pieces, previous, clipped = [], None, False
    for order, a, b, found in sorted(chosen):
        left, right = _clip(abstract, a, b, found, max_chars)
        if pieces:
            pieces.append(" " if order == previous + 1 and left == a and not clipped else " … ")
        elif left > 0:
            pieces.append("… ")
        pieces.append(_render(abstract, left, right, found))
        previous, clipped = order, right < b
    return "".join(pieces) + (" …" if clipped else "")


def _idf(abstracts: list[str]) -> dict[str, float]:
    df = Counter(term for text in abstracts for term in set(query_terms(text)))
    return {term: math.log(1 + (len(abstracts) - n + 0.5) / (n + 0.5)) for term, n in df.items()}


def _assert_same_as_reference(abstracts: list[str], queries: list[str], per_query: int) -> int:
    """Each query against abstracts sharing a term with it (as a search's hits do) and a few
    others, with IDF weights, no weights and a short budget. Returns how many snippets matched."""
    by_term: dict[str, list[int]] = {}
    for i, text in enumerate(abstracts):
        for term in set(query_terms(text)):
            by_term.setdefault(term, []).append(i)
    idf, pick, checked = _idf(abstracts), random.Random(18), 0
    for n, query in enumerate(queries):
        terms = query_terms(query)
        sharing = sorted({i for t in terms for i in by_term.get(t, [])})
        chosen = pick.sample(sharing, min(per_query, len(sharing))) + pick.sample(range(len(abstracts)), 2)
        weights, budget = [(idf, MAX_CHARS), (None, MAX_CHARS), (idf, 90)][n % 3]
        marker = Highlighter(terms, weights, budget)
        for i in chosen:
            expected = reference_snippet(abstracts[i], terms, weights, budget)
            assert marker.snippet(abstracts[i]) == expected, (query, abstracts[i][:80])
            checked += expected is not None and "<mark>" in expected
    return checked


def test_sample_corpus_snippets_equal_the_reference():
    papers = [item.paper for item in read_papers(SAMPLE) if hasattr(item, "paper")]
    abstracts = [p.abstract for p in papers]
    # Titles and pieces of abstracts as queries: real words in real inflections.
    queries = [p.title for p in papers] + [" ".join(a.split()[k:k + 3]) for a in abstracts for k in (0, 7, 20)]
    assert _assert_same_as_reference(abstracts, queries, per_query=8) > 100


def test_scifact_snippets_equal_the_reference():
    scifact = shared_dataset("scifact")
    abstracts = [json.loads(line)["text"] for line in _first_lines(scifact / "corpus.jsonl.gz", 1500)]
    queries = [json.loads(line)["text"] for line in _first_lines(scifact / "queries.jsonl.gz", 400)]
    assert _assert_same_as_reference(abstracts, queries, per_query=8) > 2000


# Sentence ends that are not (e.g., 5.3, "?)"), ends in other spacing, accents, scripts, an
# upper-casing that changes length, words joined by "_" and markup that must stay text.
_PIECES = HARD_WORDS + ["folded", "Proteins", "fold", "e.g.", "5.3", "A.", "end.", "Why?", "(Yes!)", "\"Quoted\".",
                        "\u00e9t\u00e9", "\u03b1-helix", "\u00df", "<b>", "&", "\n", "\t", "  ", "\u2009", "1.", "..."]


@given(st.lists(st.sampled_from(_PIECES), max_size=60),
       st.lists(st.sampled_from(HARD_WORDS + ["fold", "helix", "ete", "end", "why", "quoted", "b"]),
                min_size=1, max_size=4),
       st.sampled_from(["none", "empty", "zero", "idf"]), st.sampled_from([MAX_CHARS, 40, 12]))
@settings(max_examples=400, deadline=None)
def test_generated_snippets_equal_the_reference(pieces, query, weighting, budget):
    text = " ".join(pieces)
    terms = query_terms(" ".join(query))
    # Zero weights leave matched sentences unscored: the opening is shown, its matches marked.
    weights = {"none": None, "empty": {}, "zero": {t: 0.0 for t in terms},
               "idf": {t: 1.0 + len(t) for t in terms}}[weighting]
    assert snippet(text, terms, weights, budget) == reference_snippet(text, terms, weights, budget)


@pytest.mark.slow
def test_every_real_word_starts_with_a_prefix_of_its_term():
    """The claim the word search rests on (search/highlight._word_prefixes), over every distinct
    ASCII word of SciFact and the arXiv abstracts."""
    words = set()
    for path in (shared_dataset("scifact") / "corpus.jsonl.gz",
                 shared_dataset("arxiv-daily-2025-2026") / "papers.jsonl.gz"):
        for line in _first_lines(path, 200_000):
            record = json.loads(line)
            text = " ".join(str(record.get(k) or "") for k in ("title", "text", "abstract"))
            words.update(re.findall(r"[^\W_]+", text))
    broken = [w for w in words if w.isascii() and (term := term_of(w)) is not None
              and not w.lower().startswith(tuple(_word_prefixes({term})))]
    assert len(words) > 100_000 and broken == []
