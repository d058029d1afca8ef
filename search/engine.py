"""SearchEngine: search, related and recommend over one index directory.

Every method reduces to "a query vector + filters + exclusions" and goes through `_dense`, which
returns (rowids, scores); papers are looked up only for the page that is returned.
"""

from __future__ import annotations

import threading
from pathlib import Path

import faiss
import numpy as np

from indexer import vectors
from indexer.store import Filters, IndexStore
from models.config import Settings
from models.embedder import Embedder
from models.errors import InvalidQuery, PaperNotFound
from models.paper import Hit
from search import rank

MODES = ("dense",)


class SearchEngine:
    """Read-only access to one index: the store, its FAISS index and a query encoder."""

    def __init__(self, store: IndexStore, query_encoder: Embedder, settings: Settings):
        self.store = store
        self.settings = settings
        self.encoder = query_encoder
        self._lock = threading.Lock()
        self._index, self.generation = store.load_vector_index()

    @classmethod
    def open(cls, settings: Settings, encoder: Embedder | None = None) -> SearchEngine:
        """Open the index in `settings.index_dir` with the model it was built with."""
        store = IndexStore.open(Path(settings.index_dir))
        recorded = store.model
        if encoder is None:
            encoder = Embedder(settings.model or recorded.name, threads=settings.threads)
        store.check_model(encoder.info)  # another --model, or the model's files changed
        return cls(store, encoder, settings)

    def close(self) -> None:
        self.store.close()

    # --- freshness ------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Pick up writes made since this engine loaded; True if anything changed."""
        current = self.store.generation
        if current == self.generation:
            return False
        index, generation = self.store.load_vector_index()
        with self._lock:
            self._index, self.generation = index, generation
        return True

    @property
    def index_kind(self) -> str:
        return vectors.index_kind(self._index)

    # --- the three entry points -----------------------------------------------------------------

    def search(self, query: str, limit: int = 10, offset: int = 0, filters: Filters | None = None,
               mode: str = "dense") -> list[Hit]:
        """Papers ranked by similarity to a free-text query."""
        text = self._check_query(query)
        self._check_page(limit, offset)
        if mode not in MODES:
            raise InvalidQuery(f"Unknown mode {mode!r}; choose one of: {', '.join(MODES)}.")
        vector = self.encoder.encode([text], "query")[0]
        return self._hits(*self._dense(vector, limit + offset, filters), limit, offset)

    def related(self, paper_id: str | None = None, text: str | None = None, limit: int = 10,
                offset: int = 0, filters: Filters | None = None) -> list[Hit]:
        """Papers most similar to a stored paper, or to a pasted abstract; never the paper itself."""
        self._check_page(limit, offset)
        if (paper_id is None) == (text is None):
            raise InvalidQuery("Give either a paper id or a text for related papers, not both or neither.")
        exclude: set[int] = set()
        if paper_id is not None:
            stored = self.store.embeddings_for([paper_id])
            if paper_id not in stored:
                raise PaperNotFound(paper_id)
            vector = stored[paper_id]
            exclude = set(self.store.rowids_for([paper_id]).values())
        else:
            vector = self.encoder.encode([self._check_query(text)], "document")[0]
        return self._hits(*self._dense(vector, limit + offset, filters, exclude), limit, offset)

    def recommend(self, positive: list[str], negative: list[str] = (), limit: int = 10, offset: int = 0,
                  filters: Filters | None = None) -> list[Hit]:
        """Papers like the liked ones and unlike the disliked ones; never any of the inputs."""
        self._check_page(limit, offset)
        if not positive:
            raise InvalidQuery("Recommendations need at least one liked (positive) paper id.")
        wanted = list(dict.fromkeys([*positive, *negative]))
        stored = self.store.embeddings_for(wanted)
        missing = [pid for pid in wanted if pid not in stored]
        if missing:
            raise PaperNotFound(missing)
        query = rank.rocchio(np.stack([stored[p] for p in positive]),
                             np.stack([stored[p] for p in negative]) if negative else np.zeros((0, 1)))
        exclude = set(self.store.rowids_for(wanted).values())
        return self._hits(*self._dense(query, limit + offset, filters, exclude), limit, offset)

    def search_vector(self, vector: np.ndarray, k: int = 10, filters: Filters | None = None,
                      exclude_ids: list[str] = ()) -> list[Hit]:
        """The k papers nearest to a ready query vector, never `exclude_ids` (a shard answering a router)."""
        if not 1 <= k <= self.settings.max_limit + 10_000:
            raise InvalidQuery(f"k must be between 1 and {self.settings.max_limit + 10_000}, got {k}.")
        exclude = set(self.store.rowids_for(list(exclude_ids)).values())
        return self._hits(*self._dense(np.asarray(vector, dtype=np.float32), k, filters, exclude), k, 0)

    # --- internals ------------------------------------------------------------------------------

    def _check_query(self, query: str | None) -> str:
        text = (query or "").strip()
        if not text:
            raise InvalidQuery("The query is empty: type a few words, such as 'lightweight OCR'.")
        if len(text) > self.settings.max_query_chars:
            raise InvalidQuery(f"The query is {len(text)} characters long; the limit is "
                               f"{self.settings.max_query_chars}. Shorten it.")
        return text

    def _check_page(self, limit: int, offset: int) -> None:
        if not 1 <= limit <= self.settings.max_limit:
            raise InvalidQuery(f"limit must be between 1 and {self.settings.max_limit}, got {limit}.")
        if not 0 <= offset <= 10_000:
            raise InvalidQuery(f"offset must be between 0 and 10000, got {offset}.")

    def _dense(self, vector: np.ndarray, k: int, filters: Filters | None,
               exclude: set[int] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (rowids, scores) by cosine, restricted to papers passing `filters`.

        Filters select candidate rows first (in SQLite) and FAISS scores only those, so a filter
        never returns fewer than k papers when k papers match.
        """
        with self._lock:
            index = self._index
        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        allowed = self.store.filter_rowids(filters) if filters and filters.active() else None
        if allowed is not None:
            allowed = np.setdiff1d(allowed, np.fromiter(exclude, dtype=np.int64))
            if len(allowed) == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            if vectors.index_kind(index) == "ivfpq":
                return vectors.search_refined(index, query, k, self.store.embeddings_by_rowid, allowed)
            return self._exact_subset(index, query, allowed, k)
        fetch = min(k + len(exclude), index.ntotal)
        if fetch == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if vectors.index_kind(index) == "ivfpq":  # compressed codes: re-score candidates exactly
            return rank.clean(*vectors.search_refined(index, query, fetch, self.store.embeddings_by_rowid), exclude)
        scores, rowids = index.search(query, fetch)
        return rank.clean(rowids[0], scores[0], exclude)

    @staticmethod
    def _exact_subset(index: faiss.Index, query: np.ndarray, allowed: np.ndarray,
                      k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k among `allowed` rows, whatever the index structure."""
        matrix = index.reconstruct_batch(allowed) if vectors.index_kind(index) == "hnsw" else None
        if matrix is None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            scores, rowids = index.search(query, min(k, len(allowed)), params=params)
            return rank.clean(rowids[0], scores[0])
        scores = matrix @ query[0]
        top = np.argsort(-scores, kind="stable")[:k]
        return allowed[top], scores[top]

    def _hits(self, rowids: np.ndarray, scores: np.ndarray, limit: int, offset: int) -> list[Hit]:
        rowids, scores = rank.page(rowids, scores, limit, offset)
        papers = self.store.papers_by_rowid(rowids)
        hits = []
        for rowid, score in zip(rowids.tolist(), scores.tolist()):
            paper = papers.get(rowid)
            if paper is not None:  # deleted after the FAISS snapshot was taken
                hits.append(Hit(paper=paper, score=score, rank=offset + len(hits) + 1))
        return hits
