"""Serve a sharded index on Ray Serve: one deployment per shard, and a router that merges them.

    HTTP ──> ShardRouterServer (encodes the query once; replicas: stateless, scale freely)
                 ├──> ShardServer "shard-0"  (a SearchEngine over shard 0's directory)
                 ├──> ShardServer "shard-1"
                 └──> ...

Each shard server holds one shard's FAISS index and SQLite file and answers by vector, so only
the router loads the model. Shards are placed by Ray: on a cluster, give each shard's replicas
`num_cpus`/memory so they land on machines that can hold that shard in RAM, with the shard
directories on each of them (or on shared storage). This module needs the `ray` extra.

Routes (JSON): GET /search?q=...&limit=&offset=&year_from=&year_to=&category=&author=,
GET /related?paper_id=..., GET /health. Errors: {"error": message, "status": code}.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from models.config import Settings
from models.embedder import Embedder
from models.errors import IndexModelMismatch, InvalidInput, PaperNotFound, PaperSearchError
from models.query import Filters
from search.engine import SearchEngine
from search.shards import ShardRouter

_STATUS = {PaperNotFound: 404, InvalidInput: 400}


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class ShardServer:
    """One shard: a SearchEngine answering by vector (the model is never loaded here)."""

    def __init__(self, index_dir: str):
        self.engine = SearchEngine.open(Settings(index_dir=Path(index_dir)))

    def search_vector(self, vector: np.ndarray, k: int, filters: Filters | None, exclude_ids: list[str]):
        return self.engine.search_vector(vector, k, filters, exclude_ids)

    def vectors(self, paper_ids: list[str]) -> dict[str, np.ndarray]:
        return self.engine.store.embeddings_for(list(paper_ids))

    def model_fingerprint(self) -> str:
        return self.engine.store.model.fingerprint


class ServeShard:
    """The router's view of a ShardServer deployment (implements search.shards.Shard)."""

    def __init__(self, handle):
        self.handle = handle

    def search_vector(self, vector, k, filters, exclude_ids):
        return self.handle.search_vector.remote(np.asarray(vector), k, filters, list(exclude_ids)).result()

    def vectors(self, paper_ids):
        return self.handle.vectors.remote(list(paper_ids)).result()


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class ShardRouterServer:
    """The HTTP ingress: encodes queries and merges the shards' top-k (search.shards.ShardRouter)."""

    def __init__(self, shard_handles: list, model: str | None = None):
        encoder = Embedder(model) if model else Embedder()  # loads its weights on the first query
        self.router = ShardRouter([ServeShard(handle) for handle in shard_handles], encoder)
        self._handles = shard_handles
        self._checked = False
        self._lock = threading.Lock()

    def _check_models(self) -> None:
        """Refuse to merge shards built with another model (once; handles block, so not in __init__,
        which Serve runs inside its event loop)."""
        with self._lock:
            if self._checked:
                return
            fingerprints = {handle.model_fingerprint.remote().result() for handle in self._handles}
            expected = self.router.encoder.fingerprint
            if fingerprints != {expected}:
                raise IndexModelMismatch(
                    f"The shards were built with model fingerprint(s) {sorted(fingerprints)}, not with "
                    f"{self.router.encoder.name!r} ({expected}); start the router with the shards' model.")
            self._checked = True

    def __call__(self, request: Request) -> JSONResponse:
        params = request.query_params
        try:
            route = request.url.path.rstrip("/").rsplit("/", 1)[-1]
            if route == "health":
                return JSONResponse({"status": "ok", "shards": len(self.router.shards)})
            self._check_models()
            limit, offset = int(params.get("limit", 10)), int(params.get("offset", 0))
            filters = Filters(year_from=_int(params.get("year_from")), year_to=_int(params.get("year_to")),
                              category=params.get("category"), author=params.get("author"))
            if route == "search":
                hits = self.router.search(params.get("q", ""), limit, offset, filters)
            elif route == "related":
                hits = self.router.related(params.get("paper_id", ""), limit, offset, filters)
            else:
                return JSONResponse({"error": f"No route {request.url.path!r}; try /search?q=...", "status": 404},
                                    status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": f"Bad parameter: {exc}", "status": 400}, status_code=400)
        except PaperSearchError as exc:
            status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
            return JSONResponse({"error": str(exc), "status": status}, status_code=status)
        return JSONResponse({"results": [hit.to_dict() for hit in hits]})


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def build_app(shard_dirs: list[str | Path], model: str | None = None, shard_replicas: int = 1,
              router_replicas: int = 1):
    """The Serve application: one ShardServer deployment per shard directory behind a router."""
    shards = [ShardServer.options(name=f"shard-{number}", num_replicas=shard_replicas).bind(str(Path(d).resolve()))
              for number, d in enumerate(shard_dirs)]
    return ShardRouterServer.options(num_replicas=router_replicas).bind(shards, model)


def run(shard_dirs: list[str | Path], host: str = "127.0.0.1", port: int = 8000, model: str | None = None,
        shard_replicas: int = 1, router_replicas: int = 1, blocking: bool = True):
    """Start Serve (on the connected Ray) with the sharded app at http://host:port/. Returns its handle."""
    serve.start(http_options={"host": host, "port": port})
    return serve.run(build_app(shard_dirs, model, shard_replicas, router_replicas), name="papersearch-shards",
                     route_prefix="/", blocking=blocking)
