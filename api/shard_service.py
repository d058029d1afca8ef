"""The HTTP app's hold on a shard router: what `IndexService` is to one index, read-only.

`create_app(settings, service=ShardService(...))` serves a `search.shards.ShardRouter` with the
same routes, schemas, error shape and error-to-status mapping as a single index (Ray Serve does
this in `api/ray_serve.py`). Differences a client can see:

- search ranks by embeddings only: `/stats` lists the one mode, `dense`, and it is the default;
- writes are refused with 403 `read_only` (in the one error shape): a router holds no index of
  its own. Write to the shard directories with `papersearch index/delete --index SHARD`; each
  shard answers from its latest generation once its engine is reopened (restart the router).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from api.errors import ApiError
from api.service import REOPEN_SECONDS  # one retry pause for every service that opens lazily
from models.config import Settings
from models.errors import PaperSearchError
from search.shards import ShardRouter

READ_ONLY_MESSAGE = ("This server answers queries over {shards} and takes no writes. Add or delete papers in "
                     "the shard indexes with 'papersearch index FILE --index SHARD_DIR' or 'papersearch "
                     "delete ID --index SHARD_DIR', then restart it.")


class ShardService:
    """Opens the router lazily (so a server starts before its shards exist) and serves reads."""

    read_only = True
    writes_enabled = False
    modes = ShardRouter.modes
    default_mode = ShardRouter.default_mode
    related_default_mode = ShardRouter.default_mode

    def __init__(self, settings: Settings, open_router: Callable[[], ShardRouter], description: str = "shards"):
        """`open_router` builds the router (e.g. `lambda: ShardRouter.open_local(dirs)`); it may raise
        IndexNotBuilt and the like, which requests then answer as the single-index server does."""
        self.settings = settings
        self.description = description
        self._open_router = open_router
        self._router: ShardRouter | None = None
        self._open_error: PaperSearchError | None = None
        self._opened_at = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Open the shards and warm the query encoder; a failure is kept for /health to report."""
        try:
            self._current_router().encoder.encode(["warm up"], "query")
        except PaperSearchError:
            pass

    def close(self) -> None:
        with self._lock:
            if self._router is not None:
                self._router.close()
                self._router = None

    @contextmanager
    def reading(self) -> Iterator[ShardRouter]:
        yield self._current_router()

    def health(self) -> dict:
        with self.reading() as router:
            return {"status": "ready", "papers": router.store.count(), "model": router.encoder.name,
                    "generation": router.generation}

    def refuse_write(self) -> None:
        """Every write route answers this: a router holds no index of its own."""
        raise ApiError(403, "read_only", READ_ONLY_MESSAGE.format(shards=self.description))

    def upsert(self, papers):
        self.refuse_write()

    def delete(self, paper_id: str):
        self.refuse_write()

    def _current_router(self) -> ShardRouter:
        if self._router is not None:
            return self._router
        with self._lock:
            if self._router is not None:
                return self._router
            if self._open_error is not None and time.monotonic() - self._opened_at < REOPEN_SECONDS:
                raise self._open_error
            self._opened_at = time.monotonic()
            try:
                router = self._open_router()
            except PaperSearchError as exc:
                self._open_error = exc
                raise
            try:
                router.check_models()  # handles may block: here, in a request thread, not in __init__
            except PaperSearchError as exc:
                router.close()
                self._open_error = exc
                raise
            self._router, self._open_error = router, None
            return router
