"""Snippets: the abstract sentences that best match a query, matched words wrapped in <mark>.

The output is HTML in which <mark> and </mark> are the only markup: every piece of abstract text
is escaped first, so an abstract containing "<script>" shows as text. Words match when they
reduce to the same index term as a query word (same analyzer as the BM25 index), so "folding"
marks "folded" and stop words never light up.
"""

from __future__ import annotations

import bisect
import html
import re

from indexer.lexical import term_of

# Longest snippet, in characters of abstract text (before escaping and marks).
MAX_CHARS = 300
# Sentence ends: . ! ? followed by space and something that starts a sentence. Abbreviations
# like "e.g. the" stay inside a sentence because a lower-case word follows.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
# The same word boundaries as the index's tokenizer: runs of letters and digits.
_WORD = re.compile(r"[^\W_]+")
# A word holding at least one non-ASCII letter (matched from the word's start).
_NON_ASCII_WORD = re.compile(r"(?<![^\W_])[^\W_]*[^\W_\x00-\x7f][^\W_]*")
_ELLIPSIS = "…"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences in `text`."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _matches(text: str, terms: set[str]) -> list[tuple[int, int, str]]:
    """(start, end, term) of the words of `text` whose index term is a query term, in order."""
    found = []
    for word in _candidate_words(text, terms):
        term = term_of(word.group())
        if term is not None and term in terms:
            found.append((word.start(), word.end(), term))
    return found


def _candidate_words(text: str, terms: set[str]):
    """Word matches of `text` that may reduce to one of `terms` (a superset; term_of decides).

    Looking up every word's term is most of a snippet's cost. The English (Porter2) stemmer
    rewrites at most the last two letters of what it keeps of a word (possibility -> possibl,
    happy -> happi, dying -> die; checked on 170,000 distinct ASCII words of SciFact and arXiv
    abstracts), so of the ASCII words only those starting with a term minus two letters can
    match, and str.find locates them far faster than a regex walks every word. Words with
    accents (which the index folds to ASCII) are all candidates.
    """
    lowered = text.lower()
    if len(lowered) != len(text):  # a rare letter whose lower case is longer: keep it simple
        yield from _WORD.finditer(text)
        return
    starts = set()
    for prefix in {t[:max(1, len(t) - 2)] for t in terms}:
        at = lowered.find(prefix)
        while at != -1:
            if at == 0 or not lowered[at - 1].isalnum():
                starts.add(at)
            at = lowered.find(prefix, at + 1)
    if not text.isascii():
        starts.update(word.start() for word in _NON_ASCII_WORD.finditer(text))
    for at in sorted(starts):
        word = _WORD.match(text, at)
        if word is not None:
            yield word


def _sentence_score(matches: list[tuple[int, int, str]], weights: dict[str, float]) -> float:
    """Distinct matched terms by weight, plus a little for repeats."""
    distinct = {term for _, _, term in matches}
    return sum(weights.get(t, 1.0) for t in distinct) + 0.1 * (len(matches) - len(distinct))


def _render(text: str, start: int, end: int, matches: list[tuple[int, int, str]]) -> str:
    """Escaped text[start:end] with the matched words in <mark>."""
    out, cursor = [], start
    for a, b, _ in matches:
        if a < start or b > end:
            continue
        out.append(html.escape(text[cursor:a], quote=False))
        out.append(f"<mark>{html.escape(text[a:b], quote=False)}</mark>")
        cursor = b
    out.append(html.escape(text[cursor:end], quote=False))
    return "".join(out)


def _clip(text: str, start: int, end: int, matches: list[tuple[int, int, str]], budget: int) -> tuple[int, int]:
    """A window of at most `budget` characters inside [start, end), around the first match."""
    if end - start <= budget:
        return start, end
    anchor = matches[0][0] if matches else start
    left = max(start, min(anchor - budget // 4, end - budget))
    right = min(end, left + budget)
    # Do not cut words in half.
    while left > start and text[left - 1].isalnum():
        left += 1
    while right < end and right > left and text[right].isalnum():
        right -= 1
    return left, right


def snippet(abstract: str, query_terms: list[str], weights: dict[str, float] | None = None,
            max_chars: int = MAX_CHARS) -> str | None:
    """The best-matching sentences of `abstract` as safe HTML with <mark>ed words.

    Args:
        abstract: the paper's abstract (plain text).
        query_terms: the query's index terms (search.lexical.query_terms).
        weights: optional term -> importance (such as IDF); rare terms pick the sentence.
    Returns:
        HTML text of at most about `max_chars` characters, or None for an empty abstract.
        With no matching word the abstract's opening is returned, unmarked.
    """
    if not abstract or not abstract.strip():
        return None
    terms, weights = set(query_terms), weights or {}
    sentences = split_sentences(abstract)
    matches = _matches(abstract, terms)
    starts = [m[0] for m in matches]
    scored = []
    for order, (a, b) in enumerate(sentences):
        found = matches[bisect.bisect_left(starts, a):bisect.bisect_left(starts, b)]
        scored.append((_sentence_score(found, weights), -order, a, b, found))
    best = sorted((s for s in scored if s[0] > 0), reverse=True)
    if not best:
        best = [scored[0]]  # nothing matched (a dense-only hit): show how the abstract opens
    chosen, used = [], 0
    for _, order, a, b, found in best:
        if chosen and used + (b - a) > max_chars:
            continue
        chosen.append((-order, a, b, found))
        used += b - a
        if used >= max_chars * 0.6:
            break
    return _join(abstract, sorted(chosen), max_chars)


def _join(text: str, chosen: list[tuple[int, int, int, list]], max_chars: int) -> str:
    """Render the chosen sentences in abstract order; "…" marks every gap in the text."""
    pieces: list[str] = []
    previous, clipped = None, False
    for index, a, b, found in chosen:
        left, right = _clip(text, a, b, found, max_chars)
        if pieces:
            adjacent = index == previous + 1 and left == a and not clipped
            pieces.append(" " if adjacent else f" {_ELLIPSIS} ")
        elif left > 0:
            pieces.append(f"{_ELLIPSIS} ")
        pieces.append(_render(text, left, right, found))
        previous, clipped = index, right < b
    if clipped:
        pieces.append(f" {_ELLIPSIS}")
    return "".join(pieces)
