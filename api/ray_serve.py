"""Serve a sharded index on Ray Serve: one deployment per shard, and the HTTP app over a router.

    HTTP ──> ShardRouterServer (the app of api/app.py over a ShardRouter; replicas scale freely)
                 ├──> ShardServer "shard-0"  (a SearchEngine over shard 0's directory)
                 ├──> ShardServer "shard-1"
                 └──> ...

The ingress serves the same FastAPI app as `papersearch serve` (`create_app` with a
`ShardService`), so routes, schemas, the error shape and the error-to-status mapping are the
single-index server's: GET /search, /papers/{id}, /papers/{id}/related, /health, /stats and POST
/related, /recommend. Search is dense only, and writes answer 403 `read_only`
(api/shard_service.py says why).

Each shard server holds one shard's FAISS index and SQLite file and answers by vector. The router
encodes each query once with the shards' ONNX export (`search.engine.open_query_encoder`, as the
single-index server does), read from the first shard directory: router replicas need that
directory on their machine (shared storage, or a copy). Shards are placed by Ray: on a
cluster, give each shard's replicas `num_cpus`/memory so they land on machines that can hold that
shard in RAM, with the shard directories on each of them (or on shared storage). This module needs
the `ray` extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ray import serve

from api.shard_service import ShardService
from indexer.store import IndexStore
from models.config import Settings
from models.query import Filters
from search.engine import SearchEngine, open_query_encoder
from search.shards import ShardRouter


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class ShardServer:
    """One shard: a SearchEngine answering by vector."""

    def __init__(self, index_dir: str):
        self.engine = SearchEngine.open(Settings(index_dir=Path(index_dir)))

    def search_vector(self, vector: np.ndarray, k: int, filters: Filters | None, exclude_ids: list[str]):
        return self.engine.search_vector(vector, k, filters, exclude_ids)

    def vectors(self, paper_ids: list[str]) -> dict[str, np.ndarray]:
        return self.engine.store.embeddings_for(list(paper_ids))

    def papers(self, paper_ids: list[str]):
        return self.engine.store.get_papers(list(paper_ids))

    def manifest(self) -> dict:
        return self.engine.store.manifest()

    def size_on_disk(self) -> int:
        return self.engine.store.size_on_disk()


class ServeShard:
    """The router's view of a ShardServer deployment (implements search.shards.Shard)."""

    def __init__(self, handle):
        self.handle = handle

    def search_vector(self, vector, k, filters, exclude_ids):
        return self.handle.search_vector.remote(np.asarray(vector), k, filters, list(exclude_ids)).result()

    def vectors(self, paper_ids):
        return self.handle.vectors.remote(list(paper_ids)).result()

    def papers(self, paper_ids):
        return self.handle.papers.remote(list(paper_ids)).result()

    def manifest(self):
        return self.handle.manifest.remote().result()

    def size_on_disk(self):
        return self.handle.size_on_disk.remote().result()


def _open_router(shard_handles: list, first_shard_dir: str, settings: Settings) -> ShardRouter:
    store = IndexStore.open(first_shard_dir)
    try:
        encoder = open_query_encoder(settings, store)
    finally:
        store.close()
    return ShardRouter([ServeShard(handle) for handle in shard_handles], encoder, settings)


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
@serve.ingress()
class ShardRouterServer:
    """The HTTP ingress: api/app.py's app over a ShardRouter whose shards are ShardServer deployments."""

    def __init__(self, shard_handles: list, first_shard_dir: str, model: str | None = None):
        self.settings = Settings.from_env(model=model)  # limits (max_limit, ...) as `serve` reads them
        # The router opens on the first request (in a worker thread): handles block, and Serve runs
        # __init__ inside its event loop.
        self.service = ShardService(self.settings, lambda: _open_router(shard_handles, first_shard_dir,
                                                                        self.settings),
                                    description=f"{len(shard_handles)} shards")

    def __serve_build_asgi_app__(self):
        from api.app import create_app

        return create_app(self.settings, service=self.service)


def build_app(shard_dirs: list[str | Path], model: str | None = None, shard_replicas: int = 1,
              router_replicas: int = 1):
    """The Serve application: one ShardServer deployment per shard directory behind a router."""
    resolved = [str(Path(d).resolve()) for d in shard_dirs]
    shards = [ShardServer.options(name=f"shard-{number}", num_replicas=shard_replicas).bind(directory)
              for number, directory in enumerate(resolved)]
    return ShardRouterServer.options(num_replicas=router_replicas).bind(shards, resolved[0], model)


def run(shard_dirs: list[str | Path], host: str = "127.0.0.1", port: int = 8000, model: str | None = None,
        shard_replicas: int = 1, router_replicas: int = 1, blocking: bool = True):
    """Start Serve (on the connected Ray) with the sharded app at http://host:port/. Returns its handle."""
    serve.start(http_options={"host": host, "port": port})
    return serve.run(build_app(shard_dirs, model, shard_replicas, router_replicas), name="papersearch-shards",
                     route_prefix="/", blocking=blocking)
