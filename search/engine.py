"""SearchEngine: search, related and recommend over one index directory.

Every ranker returns (rowids, scores): `_dense` (a query vector + filters + exclusions), the
lexical BM25 searcher, and their fusion for `hybrid` search. Papers are looked up only for the
page that is returned.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from indexer import vectors
from indexer.store import IndexStore, layout, onnx_export_dir
from models.config import Settings
from models.embedder import Embedder, model_fingerprint
from models.errors import IndexNotBuilt, InvalidInput, InvalidQuery, ModelLoadError, PaperNotFound
from models.paper import Hit, Paper, embed_text
from models.query import DEFAULT_MODE, RELATED_DEFAULT_MODE, Filters
from search import checks, fusion, highlight, rank, scores, versions
from search import facets as facet_counts
from search import related as related_ranking
from search.lexical import LexicalSearcher, query_terms
from search.library import LibraryMatch, match_library

# Hybrid search fuses this many candidates from each side (more when a page reaches deeper).
HYBRID_DEPTH = 100
# Weight of the dense side in the convex combination; chosen on SciFact train (docs/quality.md):
# 0.45-0.6 are within 0.002 nDCG@10 of each other there.
HYBRID_ALPHA = 0.5

# onnxruntime threads per query encoding unless `settings.threads` says otherwise. Two halve a
# lone query's latency (6.7 -> 4.5 ms for MiniLM); with more requests than cores they cost
# little throughput because no pool spins (hybrid over HTTP at 100k: p50 14 -> 11.7 ms at
# concurrency 1, 118 -> 117 QPS at 8; docs/performance.md).
QUERY_ENCODER_THREADS = min(2, os.cpu_count() or 1)

log = logging.getLogger("papersearch")


def open_query_encoder(settings: Settings, store: IndexStore):
    """The query encoder for an index: its ONNX export when present, else sentence-transformers.

    The ONNX path imports neither torch nor sentence-transformers, which is what keeps a CLI
    search well under two seconds. Queries use the fp32 export (the same vectors as
    sentence-transformers) unless `settings.backend` asks for "onnx-int8".
    """
    recorded = store.model
    # Without --model the export folder named by the index's own fingerprint is the model that
    # built it; with --model the named files are hashed (no torch) so a mismatch is still caught.
    fingerprint = model_fingerprint(settings.model) if settings.model else recorded.fingerprint
    folder = onnx_export_dir(store.directory, fingerprint)
    variant = "onnx-int8" if settings.backend == "onnx-int8" else "onnx"
    from models import onnx_encoder

    threads = settings.threads or QUERY_ENCODER_THREADS
    if onnx_encoder.is_exported(folder, variant):
        try:
            return onnx_encoder.OnnxEmbedder(folder, variant, threads=threads).load()
        except ModelLoadError as exc:
            reason = str(exc)
    else:
        reason = f"the index has no {variant} export in {folder}"
    # Never exported here: a search writes nothing, and a read-only index could not take it.
    where = "" if layout.is_writable(store.directory) else " on a writable copy (this one is read-only here)"
    log.warning("note: %s; queries use sentence-transformers, which starts slower. Run 'papersearch rebuild "
                "--index %s' (or any 'papersearch index' run on it)%s to make the export.", reason, store.directory,
                where)
    return Embedder(settings.model or recorded.name, threads=threads)


class SearchEngine:
    """Read-only access to one index: the store, its FAISS index and a query encoder."""

    def __init__(self, store: IndexStore, query_encoder: Embedder, settings: Settings):
        self.store = store
        self.settings = settings
        self.encoder = query_encoder
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._index, self.generation = store.load_vector_index()
        self._lexical = LexicalSearcher(store)

    @classmethod
    def open(cls, settings: Settings, encoder: Embedder | None = None) -> SearchEngine:
        """Open the index in `settings.index_dir` with the model it was built with."""
        store = IndexStore.open(Path(settings.index_dir))
        # One OpenMP thread per search unless told otherwise: FAISS splits even a single query's
        # scan across its pool, and on two busy cores the pool's spin-waiting cost 10+ ms of CPU
        # per query on a 5k index that one thread scans in 0.2 ms. Requests run in parallel instead.
        vectors.set_threads(settings.threads or 1)
        try:
            if encoder is None:
                encoder = open_query_encoder(settings, store)
            store.check_model(encoder.info)  # another --model, or the model's files changed
            return cls(store, encoder, settings)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self._lexical.close()
        self.store.close()

    # --- freshness ------------------------------------------------------------------------------

    def refresh(self, wait: bool = False, in_place: bool = False) -> bool:
        """Pick up writes made since this engine loaded (by this or another process).

        Cheap when nothing changed (one SELECT), so callers may call it before every request.
        Returns True if this call loaded a newer generation. While one thread reloads, others
        keep serving the previous snapshot instead of waiting; pass `wait=True` after a write of
        your own to be sure the next search sees it. `in_place` changes the loaded vector index
        itself instead of a copy: only for a caller that has stopped every search meanwhile.
        """
        if self.store.generation == self.generation:
            return False
        if not self._refresh_lock.acquire(blocking=wait):
            return False
        try:
            if self.store.generation == self.generation:  # another thread loaded it meanwhile
                return False
            # From this engine's own index, changing a copy by the rows written since: a small
            # write costs a small refresh, and searches keep reading the old index meanwhile.
            index, generation = self.store.load_vector_index(current=self._index, in_place=in_place)
            self._lexical.refresh()
            with self._lock:
                changed = generation != self.generation
                self._index, self.generation = index, generation
            return changed
        finally:
            self._refresh_lock.release()

    @property
    def index_kind(self) -> str:
        return self._index.name

    # --- the three entry points -----------------------------------------------------------------

    def search(self, query: str, limit: int = 10, offset: int = 0, filters: Filters | None = None,
               mode: str = DEFAULT_MODE, snippets: bool = True, min_score: float | None = None) -> list[Hit]:
        """Papers ranked by relevance to a free-text query.

        Args:
            mode: "dense" (embedding similarity), "lexical" (BM25) or "hybrid" (both, fused).
            snippets: attach each hit's best-matching abstract sentences, terms in <mark>.
            min_score: end the list at the first hit scoring below this (search/scores.py says
                what a score means in each mode).
        """
        return self.search_with_facets(query, limit, offset, filters, mode, snippets, min_score=min_score)[0]

    def search_with_facets(self, query: str, limit: int = 10, offset: int = 0, filters: Filters | None = None,
                           mode: str = DEFAULT_MODE, snippets: bool = True, facets: Sequence[str] = (),
                           sort: str = "relevance", min_score: float | None = None,
                           ) -> tuple[list[Hit], dict[str, list[dict]]]:
        """`search`, plus counts by `facets` (search/facets.py) over the candidates the ranking
        considered, and `sort="date"` (newest first among those candidates)."""
        text = checks.checked_query(query, self.settings)
        checks.check_page(limit, offset, self.settings)
        checks.check_mode(mode)
        facets = facet_counts.checked_facets(facets)
        facet_counts.check_sort(sort)
        min_score = checks.checked_min_score(min_score)
        terms = query_terms(text)
        active = filters is not None and filters.active()
        allowed = self.store.filter_rowids(checks.checked_filters(filters, self.settings)) if active else None
        # One idf lookup serves the calibrated score and the snippets.
        idf = self._lexical.idf(terms) if snippets or mode != "dense" else {}
        vector = self.encoder.encode([text], "query")[0] if mode != "lexical" else None
        # Facets count, and a date sort orders, at least FACET_DEPTH candidates in every mode.
        floor = facet_counts.FACET_DEPTH if facet_counts.needs_candidates(facets, sort) else 0
        counts = None

        def ranking(depth: int) -> tuple[np.ndarray, np.ndarray]:
            nonlocal counts
            depth = max(depth, floor)
            if mode == "lexical":
                rowids, bm25 = self._lexical.top(terms, depth, allowed)
                found = rowids, scores.lexical(bm25, _attainable(idf, terms), scores.SEARCH_LEXICAL)
            elif mode == "dense":
                found = self._dense(vector, depth, filters, allowed=allowed)
            else:
                evidence = self._hybrid_evidence(vector, terms, max(depth, HYBRID_DEPTH), filters, allowed,
                                                 _attainable(idf, terms))
                found = evidence.rowids, scores.hybrid(evidence, scores.SEARCH_HYBRID)
            # The threshold first: a date sort reorders only the hits that pass it.
            kept = scores.cut(found[1], min_score)
            rowids, scored, counts = facet_counts.apply(self.store, found[0][:kept], found[1][:kept], facets, sort)
            return rowids, scored

        hits = self._page(ranking, limit, offset, filters, min_score=min_score)
        if snippets:
            marker = highlight.Highlighter(terms, idf)  # the query's part of the work, done once
            hits[:] = [replace(h, snippet=marker.snippet(h.paper.abstract)) for h in hits]
        return hits, counts

    def related(self, paper_id: str | None = None, text: str | None = None, limit: int = 10,
                offset: int = 0, filters: Filters | None = None, mode: str = RELATED_DEFAULT_MODE,
                min_score: float | None = None) -> list[Hit]:
        """Papers most similar to a stored paper, or to a pasted abstract; never the paper itself.

        Args:
            mode: "dense" (the paper's vector), "lexical" (BM25 over its most distinctive terms)
                or "hybrid" (both, fused; search/related.py).
            min_score: end the list at the first hit scoring below this, as in `search`.
        """
        checks.check_page(limit, offset, self.settings)
        min_score = checks.checked_min_score(min_score)
        if (paper_id is None) == (text is None):
            raise InvalidQuery("Give either a paper id or a text for related papers, not both or neither.")
        checks.check_mode(mode)
        exclude: set[int] = set()
        if paper_id is not None:
            stored = self.store.embeddings_for([paper_id])
            if paper_id not in stored:
                raise PaperNotFound(paper_id)
            vector = stored[paper_id]
            exclude = set(self.store.rowids_for([paper_id]).values())
            sources = list(self.store.get_papers([paper_id]).values()) if mode != "dense" else []
            texts = [embed_text(paper) for paper in sources]
        else:
            texts = [checks.checked_query(text, self.settings)]
            vector = self.encoder.encode(texts, "document")[0] if mode != "lexical" else None
        return self._page(lambda depth: related_ranking.rank_for(self, mode, depth, vector, texts, filters, exclude),
                          limit, offset, filters, inputs=[paper_id] if paper_id is not None else [],
                          min_score=min_score)

    def recommend(self, positive: list[str], negative: list[str] = (), limit: int = 10, offset: int = 0,
                  filters: Filters | None = None, mode: str = RELATED_DEFAULT_MODE,
                  unindexed: list[Paper] = (), min_score: float | None = None) -> list[Hit]:
        """Papers like the liked ones and unlike the disliked ones; never any of the inputs.

        Args:
            mode: "dense" (the Rocchio vector), "lexical" (BM25 over the liked papers' most
                distinctive terms) or "hybrid" (both, fused).
            unindexed: liked papers that are not in the index, embedded from their own text.
            min_score: end the list at the first hit scoring below this, as in `search`.
        """
        checks.check_page(limit, offset, self.settings)
        min_score = checks.checked_min_score(min_score)
        checks.check_mode(mode)
        own_texts = [embed_text(paper) for paper in unindexed]
        extra = self.encoder.encode(own_texts, "document") if own_texts else None
        query, wanted = rank.recommendation_query(positive, negative, self.store.embeddings_for, extra)
        exclude = set(self.store.rowids_for(wanted).values())
        texts = [embed_text(paper) for paper in self.store.get_papers(positive).values()] if mode != "dense" else []
        texts += own_texts if mode != "dense" else []
        return self._page(lambda depth: related_ranking.rank_for(self, mode, depth, query, texts, filters, exclude),
                          limit, offset, filters, inputs=wanted, min_score=min_score)

    def recommend_library(self, entries: list[Paper], negative: list[str] = (), limit: int = 10, offset: int = 0,
                          filters: Filters | None = None, mode: str = RELATED_DEFAULT_MODE,
                          min_score: float | None = None) -> tuple[list[Hit], LibraryMatch]:
        """Papers most like a reference library's entries that the library does not hold.

        Entries found in the index (search/library.py) are liked papers; the others are liked
        through their own title and abstract. Raises InvalidInput for a library with no entry.
        """
        if not entries:
            raise InvalidInput("The library has no entry to recommend from: none is in the index and none "
                               "has a title or abstract of its own.")
        match = match_library(self, entries)
        hits = self.recommend(list(dict.fromkeys(match.matched.values())), negative, limit, offset, filters, mode,
                              unindexed=match.unmatched, min_score=min_score)
        return hits, match

    def search_vector(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None,
                      exclude_ids: list[str] = ()) -> list[Hit]:
        """The k papers nearest to a ready query vector, never `exclude_ids` (a shard answering a router)."""
        deepest = self.settings.max_limit + self.settings.max_offset
        if not 1 <= k <= deepest:
            raise InvalidQuery(f"k must be between 1 and {deepest}, got {k}.")
        exclude = set(self.store.rowids_for(list(exclude_ids)).values())
        return self._hits(*self._dense(np.asarray(vector, dtype=np.float32), k, filters, exclude), k, 0)

    # --- internals ------------------------------------------------------------------------------

    def _hybrid_evidence(self, vector: np.ndarray, terms: list[str], depth: int, filters: Filters | None,
                         allowed: np.ndarray | None, attainable: float | None = None) -> scores.Evidence:
        """Dense and BM25 candidates fused by a convex combination of normalised scores; each hit is
        then scored by the calibrated map (search/scores.py) with the query's `attainable` BM25.

        Papers found only lexically get their exact cosine too, so the dense side is scored over
        the whole candidate set; BM25 keeps 0 (no match) as its floor.
        """
        dense_ids, dense_scores = self._dense(vector, depth, filters, allowed=allowed)
        lexical = self._lexical.top(terms, depth, allowed)
        extra = np.setdiff1d(lexical[0], dense_ids)
        if len(extra):
            extra, cosines = self._cosines(extra, vector)
            dense_ids = np.concatenate([dense_ids, extra])
            dense_scores = np.concatenate([dense_scores, cosines])
        rowids = fusion.convex((dense_ids, dense_scores), lexical, HYBRID_ALPHA)[0] if len(lexical[0]) else dense_ids
        return scores.Evidence(rowids, dict(zip(dense_ids.tolist(), dense_scores.tolist(), strict=True)),
                               dict(zip(*(side.tolist() for side in lexical), strict=True)),
                               _attainable(self._lexical.idf(terms), terms) if attainable is None else attainable)

    def _cosines(self, rowids: np.ndarray, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cosine of `vector` with the stored vectors of `rowids` (rows the index lacks are dropped)."""
        with self._lock:
            index = self._index
        return index.cosines(rowids, vector, self.store.embeddings_by_rowid)

    def _dense(self, vector: np.ndarray, k: int, filters: Filters | None,
               exclude: set[int] = frozenset(), allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (rowids, scores) by cosine, restricted to papers passing `filters`.

        Filters select candidate rows first (in SQLite) and FAISS scores only those, so a filter
        never returns fewer than k papers when k papers match. `allowed` passes rows already
        selected for `filters`, so they are not queried twice.
        """
        with self._lock:
            index = self._index
        if index.ntotal == 0:
            raise IndexNotBuilt(f"The index in {self.store.directory} holds no papers yet - add some with "
                                f"'papersearch index papers.jsonl --index {self.store.directory}'.")
        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        if allowed is None and filters and filters.active():
            allowed = self.store.filter_rowids(checks.checked_filters(filters, self.settings))
        if allowed is not None:
            allowed = np.setdiff1d(allowed, np.fromiter(exclude, dtype=np.int64))
            if len(allowed) == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            return rank.clean(*index.search(query, k, self.store.embeddings_by_rowid, allowed))
        fetch = min(k + len(exclude), index.ntotal)
        if fetch == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return rank.clean(*index.search(query, fetch, self.store.embeddings_by_rowid), exclude)

    def _page(self, ranking: Callable[[int], tuple[np.ndarray, np.ndarray]], limit: int, offset: int,
              filters: Filters | None, inputs: list[str] = (), min_score: float | None = None) -> rank.HitPage:
        """A page of `ranking(depth)` with one hit per work, or every version when the filters ask,
        cut at `min_score` (its `last` says when the cut ends the list on this page).

        Collapsing versions shortens the ranking, so it is fetched deeper until the page is full
        or the ranking ends (search/versions.py says why pages stay consistent).
        """
        if filters is not None and filters.all_versions:
            page = self._hits(*ranking(_depth(limit, offset, min_score)), limit, offset, min_score)
            return rank.HitPage(versions.with_versions(self.store, page), last=page.last)
        deepest = self.settings.max_limit + self.settings.max_offset
        # The first ranking is as deep as the page alone (a hybrid fusion's result depends on its
        # depth, so a collapse-free page ranks exactly as without versions); deeper only if needed.
        fetch = min(_depth(limit, offset, min_score), deepest)
        while True:
            rowids, scored = ranking(fetch)
            kept = scores.cut(scored, min_score)
            ended = kept < len(rowids) or len(rowids) < fetch  # nothing more above the cut, or no more at all
            # Group only as deep as the page needs: a ranking may return more than asked (hybrid
            # fuses 100 candidates), and grouping reads every paper it is given.
            take = min(kept, fetch)
            while True:
                # One work past the page tells whether there is a next page at all.
                hits, more = versions.one_per_work(self.store, rowids[:take], scored[:take], limit + 1, offset,
                                                   inputs)
                if more or take >= kept or (min_score is None and len(hits) >= limit):
                    break
                take = min(take * 2, kept)
            # Full: the page (plus, with a threshold, the one work that says whether more follow).
            full = len(hits) > limit if min_score is not None else len(hits) >= limit
            if full or ended or fetch >= deepest:
                return rank.HitPage(hits[:limit], last=min_score is not None and not more)
            fetch = min(max(fetch * versions.FETCH_SLACK, kept), deepest)

    def _hits(self, rowids: np.ndarray, scored: np.ndarray, limit: int, offset: int,
              min_score: float | None = None) -> rank.HitPage:
        kept = scores.cut(scored, min_score)
        hits = rank.HitPage(last=min_score is not None and kept <= offset + limit)
        rowids, scored = rank.page(rowids[:kept], scored[:kept], limit, offset)
        papers = self.store.papers_by_rowid(rowids)
        for rowid, score in zip(rowids.tolist(), scored.tolist(), strict=True):
            paper = papers.get(rowid)
            if paper is not None:  # deleted after the FAISS snapshot was taken
                hits.append(Hit(paper=paper, score=score, rank=offset + len(hits) + 1))
        return hits


def _attainable(idf: dict[str, float], terms: list[str]) -> float:
    """The most BM25 a paper could score on the query `terms` (a repeat counts twice)."""
    return scores.attainable_bm25(idf, Counter(terms))


def _depth(limit: int, offset: int, min_score: float | None) -> int:
    """How deep to rank for a page: one more with a threshold, to know whether the cut ends the list."""
    return limit + offset + (min_score is not None)
