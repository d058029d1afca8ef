"""Snippets: the abstract sentences that best match a query, matched words wrapped in <mark>.

The output is HTML in which <mark> and </mark> are the only markup: every piece of abstract text
is escaped first, so an abstract containing "<script>" shows as text. Words match when they
reduce to the same index term as a query word (same analyzer as the BM25 index), so "folding"
marks "folded" and stop words never light up.
"""

from __future__ import annotations

import codecs
import html
import re

from indexer.lexical import term_of

# Longest snippet, in characters of abstract text (before escaping and marks).
MAX_CHARS = 300
# Sentence ends: . ! ? followed by space and something that starts a sentence. Abbreviations
# like "e.g. the" stay inside a sentence because a lower-case word follows. (The stop itself is
# matched rather than looked behind for: the regex engine then skips to the next stop at C speed.)
_SENTENCE_END = re.compile(r"[.!?]\s+(?=[\"'(\[]?[A-Z0-9])")
_ELLIPSIS = "…"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences in `text`."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start() + 1))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _word_bytes_error(error: UnicodeEncodeError) -> tuple[str, int]:
    """Beyond Latin-1, one byte per character: a letter or digit becomes one (ª), anything else a gap."""
    return "".join("ª" if c.isalnum() else " " for c in error.object[error.start:error.end]), error.end


codecs.register_error("papersearch-words", _word_bytes_error)
# Latin-1 bytes -> the text's shape, one byte per character: ASCII letters lower-cased, digits kept,
# a non-ASCII letter or digit becomes _OTHER_LETTER, and everything else (the tokenizer's word
# breaks, "_" included, as [^\W_] has it) a space.
_OTHER_LETTER = b"\x80"
_SHAPE = bytes(
    (b | 0x20 if chr(b).isalpha() else b) if b < 128 and chr(b).isalnum()
    else (_OTHER_LETTER[0] if b >= 128 and chr(b).isalnum() else 0x20)
    for b in range(256))


def _shape(text: str) -> bytes:
    """`text` as one byte per character (see _SHAPE): words are the runs of non-space bytes."""
    return text.encode("latin-1", "papersearch-words").translate(_SHAPE)


def _word_prefixes(terms: set[str]) -> set[str]:
    """What every ASCII word reducing to one of `terms` starts with, lower-cased.

    The English (Porter2) stemmer keeps a word's start and rewrites at most the last letter of what
    it keeps (cells -> cell, happy -> happi, possibility -> possibl; its suffix replacements end in
    "e", which a later step drops or keeps as that one letter: curator -> curate), never the first
    two, all but one case: a letter and "ying" (dying -> die, vying -> vie). Checked on the 229,221
    distinct ASCII words with a term in the SciFact, arXiv, Cranfield and CSFCube texts: 224,275 keep
    every letter of their term, 4,938 all but the last, 8 are "ying". The longer the prefix the fewer
    words to look up (each costs an analyzer call the first time): a one-letter one would catch "a",
    "and", "the" in every abstract. A term with other letters can only come from a word with them,
    and every such word is looked up anyway.
    """
    prefixes = {t[:max(2, len(t) - 1)] for t in terms}
    return prefixes | {t[0] + "y" for t in terms if len(t) == 3 and t.endswith("ie")}


class Highlighter:
    """Snippets for one query: what depends only on the query is worked out once, not per hit."""

    def __init__(self, query_terms: list[str], weights: dict[str, float] | None = None,
                 max_chars: int = MAX_CHARS):
        self.terms, self.weights, self.max_chars = set(query_terms), weights or {}, max_chars
        prefixes = sorted(p for p in _word_prefixes(self.terms) if p.isascii())
        # A prefix that starts with another one finds nothing more: the word starts stay distinct.
        kept = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
        self._needles = [b" " + p.encode("ascii") for p in kept]

    def matches(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, term) of the words of `text` whose index term is a query term, in order.

        Looking up every word's term was most of a snippet's cost. Here bytes.find on a
        one-byte-per-character copy finds the starts of the words that may match (a superset;
        term_of decides), and no Python code visits the other words. (One regex for all the
        prefixes scans a little faster, but compiling it costs more than a page of hits.)
        """
        padded = b" " + _shape(text) + b" "  # padded[i + 1] is text[i]; a word starts after a space
        starts = []
        for needle in self._needles:
            at = padded.find(needle)
            while at != -1:
                starts.append(at)
                at = padded.find(needle, at + len(needle))
        if _OTHER_LETTER in padded:
            starts = set(starts)
            at = padded.find(_OTHER_LETTER)
            while at != -1:  # a word with accents or other scripts (the index folds accents): a candidate
                starts.add(padded.rfind(b" ", 0, at))
                at = padded.find(_OTHER_LETTER, padded.find(b" ", at))
        found, terms = [], self.terms
        for start in sorted(starts):
            end = padded.find(b" ", start + 1) - 1
            term = term_of(text[start:end])
            if term in terms:
                found.append((start, end, term))
        return found

    def snippet(self, abstract: str) -> str | None:
        """The best-matching sentences of `abstract` (see the module's `snippet`)."""
        if not abstract or not abstract.strip():
            return None
        matches = self.matches(abstract)
        # Sentences in abstract order are sentences by start; the earlier one wins a tie.
        best = sorted(((_sentence_score(found, self.weights), -a, a, b, found)
                       for a, b, found in _sentences_with_matches(abstract, matches)), reverse=True)
        best = [s for s in best if s[0] > 0]
        if not best:  # nothing matched (a dense-only hit): show how the abstract opens
            end = _sentence_end(abstract, 0)
            best = [(0.0, 0, 0, end, [m for m in matches if m[0] < end])]
        chosen, used = [], 0
        for _, _, a, b, found in best:
            if chosen and used + (b - a) > self.max_chars:
                continue
            chosen.append((a, b, found))
            used += b - a
            if used >= self.max_chars * 0.6:
                break
        return _join(abstract, sorted(chosen), self.max_chars)


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


def _matches(text: str, terms: set[str]) -> list[tuple[int, int, str]]:
    """(start, end, term) of the words of `text` whose index term is one of `terms`, in order."""
    return Highlighter(list(terms)).matches(text)


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
        For many abstracts and one query, `Highlighter(query_terms, weights).snippet` does the same.
    """
    return Highlighter(query_terms, weights, max_chars).snippet(abstract)


def _sentences_with_matches(text: str, matches: list[tuple[int, int, str]]) -> list[tuple[int, int, list]]:
    """(start, end, its matches) of the sentences holding a match, in order. Sentence ends are
    looked for around the matches only: most of an abstract is never scanned."""
    out, first = [], 0
    while first < len(matches):
        start, end = _sentence_start(text, matches[first][0]), _sentence_end(text, matches[first][0])
        last = first + 1
        while last < len(matches) and matches[last][0] < end:
            last += 1
        out.append((start, end, matches[first:last]))
        first = last
    return out


def _sentence_end(text: str, at: int) -> int:
    """Where the sentence holding character `at` ends (after its stop)."""
    end_match = _SENTENCE_END.search(text, at)
    return len(text) if end_match is None else end_match.start() + 1


def _sentence_start(text: str, at: int) -> int:
    """Where the sentence holding the word starting at `at` starts: after the last sentence end
    before it. (Ends never overlap, so a stop that ends a sentence read backwards does so forwards.)"""
    stop = at
    while True:
        stop = max(text.rfind(".", 0, stop), text.rfind("!", 0, stop), text.rfind("?", 0, stop))
        if stop == -1:
            return 0
        end_match = _SENTENCE_END.match(text, stop)
        if end_match is not None:
            return end_match.end()


def _join(text: str, chosen: list[tuple[int, int, list]], max_chars: int) -> str:
    """Render the chosen sentences in abstract order; "…" marks every gap in the text."""
    pieces: list[str] = []
    previous_end, clipped = 0, False
    for a, b, found in chosen:
        left, right = _clip(text, a, b, found, max_chars)
        if pieces:
            # Only the space of one sentence end lies between a sentence and the next.
            adjacent = not text[previous_end:a].strip() and left == a and not clipped
            pieces.append(" " if adjacent else f" {_ELLIPSIS} ")
        elif left > 0:
            pieces.append(f"{_ELLIPSIS} ")
        pieces.append(_render(text, left, right, found))
        previous_end, clipped = b, right < b
    if clipped:
        pieces.append(f" {_ELLIPSIS}")
    return "".join(pieces)
