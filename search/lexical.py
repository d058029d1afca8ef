"""The read side of the lexical index: BM25 top-k over the tantivy index, filters applied exactly.

User text is never parsed as query syntax: it goes through the index's own analyzer and the
query is built from the resulting terms (an OR of term queries), so quotes, AND, NEAR, *, -
and unbalanced parentheses are just characters that the tokenizer drops.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Mapping

import numpy as np
import tantivy

from indexer import lexical
from indexer.store import IndexStore, layout, lexical_path

_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.float32))
# With a filter, fetch more than wanted (scaled by how selective the filter is) and grow by this
# factor until enough allowed rows are found or the matches run out. Exact, since each fetch is a
# prefix of the same ranking. Measured at 100k abstracts: a top-10,000 fetch costs 2-10 ms.
_FILTER_OVERFETCH = 4
# Terms whose document frequency a searcher remembers before starting afresh (a few MB at most).
_DOC_FREQ_CACHE = 200_000

log = logging.getLogger("papersearch")


def _stale_reason(state: dict | None, store_generation: int) -> str | None:
    """Why the on-disk lexical index cannot serve the store's current generation, or None."""
    if state is None:
        return "missing"
    if state.get("analyzer") != lexical.ANALYZER_VERSION:
        return "made by another analyzer version"
    generation = state.get("generation")
    if not isinstance(generation, int) or not 0 <= store_generation - generation <= 1:
        return f"stale (generation {generation}, records at {store_generation})"
    return None


def query_terms(text: str) -> list[str]:
    """The analysed terms of a query, in order, repeats kept."""
    return lexical.analyze(text)


class LexicalSearcher:
    """BM25 search over one index directory's lexical index."""

    def __init__(self, store: IndexStore):
        self.store = store
        self._lock = threading.Lock()
        self._warned: str | None = None  # the problem last reported, so a server logs it once
        self._copy: lexical.ReadOnlyCopy | None = None  # what the index was opened from, on a read-only index
        self._index, self._generation = self._load()
        self._schema = self._index.schema
        self._freqs: tuple = (None, 0, {})  # (the index they were read from, its paper count, term -> papers)

    def _load(self) -> tuple[tantivy.Index, int | None]:
        """The on-disk index and the generation its sidecar names, or an in-memory copy when the
        one on disk cannot serve. Never writes: repairs belong to the writer (`check --repair`).

        A writer commits the lexical index right after each SQLite commit, so one generation behind
        is a write in flight, served as is (`_current_index` catches up on the next query); further
        behind, missing, unreadable or made by another analyzer means a crash or an older release.
        """
        directory = self.store.directory
        state = lexical.recorded_state(directory)
        problem = _stale_reason(state, self.store.generation)
        if problem is None:
            try:
                index, copy = lexical.open_for_reading(lexical_path(directory))
                self._replace_copy(copy)
                return index, state.get("generation")
            except (OSError, ValueError) as exc:
                problem = f"unreadable ({str(exc)[:80]})"
        if self._warned != problem:
            self._warned = problem
            where = ("where the index is writable" if self.store.writable or layout.is_writable(directory)
                     else "on a writable copy (this one is read-only here)")
            log.warning("note: the lexical (BM25) index in %s is %s; searching an in-memory copy built from "
                        "the records, nothing is written. Run 'papersearch check --repair --index %s' %s to "
                        "rebuild it on disk.", directory, problem, directory, where)
        generation = self.store.generation
        self._replace_copy(None)
        return lexical.build_in_memory(self.store), generation

    def _replace_copy(self, copy: lexical.ReadOnlyCopy | None) -> None:
        previous, self._copy = self._copy, copy
        if previous is not None:
            previous.close()

    def close(self) -> None:
        """Remove the private copy of a read-only index, if one was made."""
        self._replace_copy(None)

    def refresh(self) -> None:
        """Pick up the writer's latest commit (called when the store generation changed)."""
        loaded = self._load()
        with self._lock:
            self._index, self._generation = loaded

    def _current_index(self) -> tantivy.Index:
        """The index to search, reloaded first if a writer has committed since it was loaded.

        The engine refreshes when the store generation changes, which can land between SQLite's
        commit and tantivy's; this catches up on the next query instead of the next write.
        """
        with self._lock:
            index, generation = self._index, self._generation
        if generation != self.store.generation:
            state = lexical.recorded_state(self.store.directory)
            if state is not None and state.get("generation") != generation:
                self.refresh()
                with self._lock:
                    index = self._index
        return index

    def top(self, terms: list[str] | Mapping[str, float], k: int,
            allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rowids, BM25 scores) of the k best papers, only among `allowed` rowids when given.

        `terms` is a query's terms (a repeat counts twice) or a mapping of term -> boost.
        """
        if not terms or k <= 0 or (allowed is not None and len(allowed) == 0):
            return _EMPTY
        searcher = self._current_index().searcher()
        total = searcher.num_docs
        if total == 0:
            return _EMPTY
        query = self._or_query(terms)
        fetch = k
        if allowed is not None:
            # Expect one allowed paper per total/len(allowed) hits; start at twice that.
            fetch = max(k * _FILTER_OVERFETCH, int(2 * k * total / len(allowed)))
        fetch = min(fetch, total)
        while True:
            result = searcher.search(query, limit=fetch, count=False)
            hits = result.hits
            rowids = np.array(searcher.fast_field_values(lexical.ROWID_FIELD, [a for _, a in hits]), dtype=np.int64)
            scores = np.array([score for score, _ in hits], dtype=np.float32)
            if allowed is not None:
                keep = np.isin(rowids, allowed)
                rowids, scores = rowids[keep], scores[keep]
            if len(rowids) >= k or len(hits) < fetch or fetch >= total:
                return rowids[:k], scores[:k]
            fetch = min(fetch * _FILTER_OVERFETCH, total)

    def idf(self, terms: list[str]) -> dict[str, float]:
        """term -> BM25's inverse document frequency (rare terms weigh more in snippets)."""
        searcher = self._current_index().searcher()
        total = searcher.num_docs
        out = {}
        for term in set(terms):
            df = searcher.doc_freq(lexical.TEXT_FIELD, term)
            out[term] = math.log(1.0 + (total - df + 0.5) / (df + 0.5))
        return out

    def doc_freqs(self, terms: list[str]) -> tuple[int, dict[str, int]]:
        """(papers in the index, term -> how many papers hold it), for term selection.

        Remembered per loaded index: more-like-this asks for every distinct term of its source
        papers (hundreds for a recommendation), and one tantivy call per term was the largest
        cost of hybrid related at 100k papers (docs/quality.md).
        """
        index = self._current_index()
        with self._lock:
            if self._freqs[0] is not index or len(self._freqs[2]) > _DOC_FREQ_CACHE:
                searcher = index.searcher()
                self._freqs = (index, searcher.num_docs, {})
            _, total, known = self._freqs
        wanted = set(terms)
        missing = [term for term in wanted if term not in known]
        if missing:
            searcher = index.searcher()
            known.update({term: searcher.doc_freq(lexical.TEXT_FIELD, term) for term in missing})
        return total, {term: known[term] for term in wanted}

    def _or_query(self, terms: list[str] | Mapping[str, float]) -> tantivy.Query:
        """OR of term queries; a term repeated in the query counts that many times (as Lucene's
        bag-of-words query does), a mapping gives each term its boost."""
        clauses = []
        boosts = terms if isinstance(terms, Mapping) else Counter(terms)
        for term, count in boosts.items():
            query = tantivy.Query.term_query(self._schema, lexical.TEXT_FIELD, term)
            if count != 1:
                query = tantivy.Query.boost_query(query, float(count))
            clauses.append((tantivy.Occur.Should, query))
        return tantivy.Query.boolean_query(clauses)
