"""Sharded search: a router that asks N shards for their top-k and merges the answers.

An index larger than one machine's RAM is split by paper id into shard indexes
(`indexer/split.py`), each served on its own machine (Ray Serve in `api/ray_serve.py`, or any
process holding a `SearchEngine`). The router encodes the query once, sends the vector to every
shard, and merges. With exact (flat) shards the merged top-k equals the single index's: the
global top k is always inside the union of the shards' top k.

Sharded search is dense: cosine scores mean the same on every shard. BM25 scores do not (each
shard has its own term statistics), so lexical and hybrid ranking stay single-index features.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from models.config import Settings
from models.embedder import Embedder
from models.errors import IndexModelMismatch, InvalidInput, PaperNotFound
from models.paper import Hit
from models.query import Filters
from search import checks, rank
from search.engine import SearchEngine


class Shard(Protocol):
    """What the router needs from one shard, wherever it runs."""

    def search_vector(self, vector: np.ndarray, k: int, filters: Filters | None,
                      exclude_ids: list[str]) -> list[Hit]: ...

    def vectors(self, paper_ids: list[str]) -> dict[str, np.ndarray]: ...


def merge_top(shard_hits: Sequence[Sequence[Hit]], limit: int, offset: int = 0) -> list[Hit]:
    """One ranking from the shards' rankings: by score, best first, then paper id; ranks renumbered.

    A paper id seen on two shards (it should not be) counts once, at its best score.
    """
    best: dict[str, Hit] = {}
    for hits in shard_hits:
        for hit in hits:
            kept = best.get(hit.paper.paper_id)
            if kept is None or hit.score > kept.score:
                best[hit.paper.paper_id] = hit
    ordered = sorted(best.values(), key=lambda h: (-h.score, h.paper.paper_id))
    page = ordered[offset:offset + limit]
    return [replace(hit, rank=offset + number) for number, hit in enumerate(page, start=1)]


class LocalShard:
    """A shard answered in this process by a SearchEngine over one shard directory."""

    def __init__(self, engine: SearchEngine):
        self.engine = engine

    def search_vector(self, vector, k, filters, exclude_ids):
        return self.engine.search_vector(vector, k, filters, exclude_ids)

    def vectors(self, paper_ids):
        return self.engine.store.embeddings_for(list(paper_ids))


class ShardRouter:
    """search / related / recommend over N shards, with the same signatures as SearchEngine."""

    def __init__(self, shards: Sequence[Shard], encoder: Embedder, settings: Settings | None = None):
        if not shards:
            raise InvalidInput("A shard router needs at least one shard.")
        self.shards = list(shards)
        self.encoder = encoder
        self.settings = settings or Settings()
        self._pool = ThreadPoolExecutor(max_workers=len(self.shards), thread_name_prefix="shard")

    @classmethod
    def open_local(cls, directories: Sequence[str | Path], encoder: Embedder | None = None,
                   settings: Settings | None = None) -> ShardRouter:
        """A router over shard directories opened in this process (tests, one big machine)."""
        settings = settings or Settings()
        engines = [SearchEngine.open(replace(settings, index_dir=Path(d)), encoder=encoder) for d in directories]
        models = {(e.store.model.fingerprint, e.store.model.dimension) for e in engines}
        if len(models) > 1:
            raise IndexModelMismatch(f"The shards in {', '.join(map(str, directories))} were built with different "
                                     "models; rebuild them with one model.")
        return cls([LocalShard(e) for e in engines], encoder or engines[0].encoder, settings)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        for shard in self.shards:
            if isinstance(shard, LocalShard):
                shard.engine.close()

    # --- the three entry points -----------------------------------------------------------------

    def search(self, query: str, limit: int = 10, offset: int = 0, filters: Filters | None = None) -> list[Hit]:
        """Papers ranked by similarity to a free-text query, over all shards."""
        text = checks.checked_query(query, self.settings)
        checks.check_page(limit, offset, self.settings)
        vector = self.encoder.encode([text], "query")[0]
        return self._fan_out(vector, limit, offset, filters, [])

    def related(self, paper_id: str, limit: int = 10, offset: int = 0, filters: Filters | None = None) -> list[Hit]:
        """Papers most similar to a stored paper (on whichever shard holds it), never the paper itself."""
        checks.check_page(limit, offset, self.settings)
        vector = self._vectors([paper_id])[paper_id]
        return self._fan_out(vector, limit, offset, filters, [paper_id])

    def recommend(self, positive: list[str], negative: list[str] = (), limit: int = 10, offset: int = 0,
                  filters: Filters | None = None) -> list[Hit]:
        """Papers like the liked ones and unlike the disliked ones; never any of the inputs."""
        checks.check_page(limit, offset, self.settings)
        query, wanted = rank.recommendation_query(positive, negative, self._vectors)
        return self._fan_out(query, limit, offset, filters, wanted)

    # --- internals ------------------------------------------------------------------------------

    def _fan_out(self, vector: np.ndarray, limit: int, offset: int, filters: Filters | None,
                 exclude_ids: list[str]) -> list[Hit]:
        # Every shard returns its own top (offset + limit): the page may come from any of them.
        jobs = [self._pool.submit(s.search_vector, vector, limit + offset, filters, exclude_ids)
                for s in self.shards]
        return merge_top([job.result() for job in jobs], limit, offset)

    def _vectors(self, paper_ids: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for part in self._pool.map(lambda s: s.vectors(paper_ids), self.shards):
            found.update(part)
        missing = [pid for pid in paper_ids if pid not in found]
        if missing:
            raise PaperNotFound(missing)
        return found
