"""Sharded search: a router that asks N shards for their top-k and merges the answers.

An index larger than one machine's RAM is split by paper id into shard indexes
(`indexer/split.py`), each served on its own machine (Ray Serve in `api/ray_serve.py`, or any
process holding a `SearchEngine`). The router encodes the query once, sends the vector to every
shard, and merges. With exact (flat) shards the merged top-k equals the single index's: the
global top k is always inside the union of the shards' top k.

The router has the engine's signatures (search, related, recommend, `store.get_papers`,
`store.manifest`), so the HTTP app (`api/app.py`) serves it like a single index (see
`api/shard_service.py`). Sharded search is dense: cosine scores mean the same on every shard.
BM25 scores do not (each shard has its own term statistics), so lexical and hybrid ranking stay
single-index features and the router refuses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from indexer import vectors
from models.config import Settings
from models.errors import IndexModelMismatch, InvalidInput, InvalidQuery, PaperNotFound
from models.paper import Hit, Paper
from models.query import Filters
from search import checks, highlight, rank, scores
from search.engine import SearchEngine
from search.lexical import query_terms

# The only ranking a router offers (see the module docstring).
MODES = ("dense",)


class Shard(Protocol):
    """What the router needs from one shard, wherever it runs."""

    def search_vector(self, vector: np.ndarray, k: int, filters: Filters | None,
                      exclude_ids: list[str]) -> list[Hit]: ...

    def vectors(self, paper_ids: list[str]) -> dict[str, np.ndarray]: ...

    def papers(self, paper_ids: list[str]) -> dict[str, Paper]: ...

    def manifest(self) -> dict: ...

    def size_on_disk(self) -> int: ...


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

    def papers(self, paper_ids):
        return self.engine.store.get_papers(list(paper_ids))

    def manifest(self):
        return self.engine.store.manifest()

    def size_on_disk(self):
        return self.engine.store.size_on_disk()


class ShardRouter:
    """search / related / recommend over N shards, with the same signatures as SearchEngine."""

    modes = MODES
    default_mode = MODES[0]

    def __init__(self, shards: Sequence[Shard], encoder, settings: Settings | None = None):
        """`encoder` encodes queries (the shards' ONNX export via `search.engine.open_query_encoder`)."""
        if not shards:
            raise InvalidInput("A shard router needs at least one shard.")
        self.shards = list(shards)
        self.encoder = encoder
        self.settings = settings or Settings()
        self.store = ShardedStore(self)
        self._pool = ThreadPoolExecutor(max_workers=len(self.shards), thread_name_prefix="shard")

    @classmethod
    def open_local(cls, directories: Sequence[str | Path], encoder=None,
                   settings: Settings | None = None) -> ShardRouter:
        """A router over shard directories opened in this process (tests, one big machine)."""
        settings = settings or Settings()
        engines: list[SearchEngine] = []
        try:
            for directory in directories:
                engines.append(SearchEngine.open(replace(settings, index_dir=Path(directory)), encoder=encoder))
            router = cls([LocalShard(e) for e in engines], encoder or engines[0].encoder, settings)
            router.check_models()
        except BaseException:
            for engine in engines:
                engine.close()
            raise
        return router

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        for shard in self.shards:
            if isinstance(shard, LocalShard):
                shard.engine.close()

    def check_models(self) -> None:
        """IndexModelMismatch unless every shard was built with the router's query model."""
        manifests = self._each(lambda shard: shard.manifest())
        fingerprints = {m["model"]["fingerprint"] for m in manifests}
        if fingerprints != {self.encoder.fingerprint}:
            raise IndexModelMismatch(
                f"The shards were built with model fingerprint(s) {sorted(fingerprints)}, not with the router's "
                f"{self.encoder.name!r} ({self.encoder.fingerprint}); rebuild the shards with one model, or "
                "start the router with theirs.")

    @property
    def generation(self) -> int:
        """Grows whenever any shard is written to (the sum of the shards' generations)."""
        return self.store.manifest()["generation"]

    # --- the three entry points -----------------------------------------------------------------

    def search(self, query: str, limit: int = 10, offset: int = 0, filters: Filters | None = None,
               mode: str = "dense", snippets: bool = True, min_score: float | None = None) -> list[Hit]:
        """Papers ranked by similarity to a free-text query, over all shards (dense ranking only).

        `min_score` ends the list at the first cosine below it, as on one index.
        """
        text = checks.checked_query(query, self.settings)
        checks.check_page(limit, offset, self.settings)
        _check_mode(mode)
        min_score = checks.checked_min_score(min_score)
        vector = self.encoder.encode([text], "query")[0]
        hits = self._fan_out(vector, limit, offset, filters, [], min_score)
        if snippets:
            marker = highlight.Highlighter(query_terms(text))
            hits[:] = [replace(h, snippet=marker.snippet(h.paper.abstract)) for h in hits]
        return hits

    def related(self, paper_id: str | None = None, text: str | None = None, limit: int = 10, offset: int = 0,
                filters: Filters | None = None, mode: str = "dense", min_score: float | None = None) -> list[Hit]:
        """Papers most similar to a stored paper (on whichever shard holds it) or to a pasted abstract;
        never the paper itself (dense ranking only)."""
        checks.check_page(limit, offset, self.settings)
        _check_mode(mode)
        min_score = checks.checked_min_score(min_score)
        if (paper_id is None) == (text is None):
            raise InvalidQuery("Give either a paper id or a text for related papers, not both or neither.")
        if paper_id is not None:
            return self._fan_out(self._vectors([paper_id])[paper_id], limit, offset, filters, [paper_id], min_score)
        vector = self.encoder.encode([checks.checked_query(text, self.settings)], "document")[0]
        return self._fan_out(vector, limit, offset, filters, [], min_score)

    def recommend(self, positive: list[str], negative: list[str] = (), limit: int = 10, offset: int = 0,
                  filters: Filters | None = None, mode: str = "dense", min_score: float | None = None) -> list[Hit]:
        """Papers like the liked ones and unlike the disliked ones; never any of the inputs (dense only)."""
        checks.check_page(limit, offset, self.settings)
        _check_mode(mode)
        min_score = checks.checked_min_score(min_score)
        query, wanted = rank.recommendation_query(positive, negative, self._vectors)
        return self._fan_out(query, limit, offset, filters, wanted, min_score)

    # --- internals ------------------------------------------------------------------------------

    def _each(self, call) -> list:
        """`call(shard)` for every shard, side by side, in shard order."""
        return list(self._pool.map(call, self.shards))

    def _fan_out(self, vector: np.ndarray, limit: int, offset: int, filters: Filters | None,
                 exclude_ids: list[str], min_score: float | None = None) -> rank.HitPage:
        """The merged page; with `min_score`, cut at the first cosine below it (one hit deeper is
        fetched, so a cut that ends the list marks the page as the last)."""
        # Every shard returns its own top (offset + limit): the page may come from any of them.
        deepest = self.settings.max_limit + self.settings.max_offset
        depth = min(limit + offset + (min_score is not None), deepest)
        merged = merge_top(self._each(lambda s: s.search_vector(vector, depth, filters, exclude_ids)), depth)
        kept = scores.cut(np.array([hit.score for hit in merged]), min_score)
        return rank.HitPage(merged[offset:min(kept, offset + limit)],
                            last=min_score is not None and kept <= offset + limit)

    def _vectors(self, paper_ids: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for part in self._each(lambda s: s.vectors(paper_ids)):
            found.update(part)
        missing = [pid for pid in paper_ids if pid not in found]
        if missing:
            raise PaperNotFound(missing)
        return found


class ShardedStore:
    """The part of IndexStore's read side that the HTTP app asks for, answered by all shards together."""

    def __init__(self, router: ShardRouter):
        self._router = router

    def get_papers(self, paper_ids: Iterable[str]) -> dict[str, Paper]:
        wanted = list(paper_ids)
        found: dict[str, Paper] = {}
        for part in self._router._each(lambda s: s.papers(wanted)):
            found.update(part)
        return found

    def manifest(self) -> dict:
        """One manifest for the whole: papers and generations summed; the shards' model and index type."""
        manifests = self._router._each(lambda s: s.manifest())
        first = manifests[0]
        kinds = {vectors.resolve_index_type(m["index_type"], m["papers"]) for m in manifests}
        return {**first, "papers": sum(m["papers"] for m in manifests),
                "generation": sum(m["generation"] for m in manifests),
                # Shards of one split share their setting; each resolves "auto" by its own size.
                "index_type": kinds.pop() if len(kinds) == 1 else first["index_type"]}

    def count(self) -> int:
        return self.manifest()["papers"]

    def size_on_disk(self) -> int:
        return sum(self._router._each(lambda s: s.size_on_disk()))


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InvalidQuery(f"Mode {mode!r} is not available over shards: BM25 scores differ from shard to "
                           "shard, so sharded search ranks by embeddings only (mode 'dense').")
