"""The server's hold on one index: one SearchEngine shared by every request, and the write path.

Reads (search, related, records, health) run side by side under a shared gate. A write embeds
its papers while reads go on, then takes the gate exclusively for the short part: the SQLite
commit, the FAISS file and `engine.refresh()`. So a request sees the index wholly before or wholly
after a write, never a mix of new records and old vectors. Writes made by another process (the
CLI) are picked up at most a second later, also under the exclusive gate.

Everything here blocks (model, FAISS, SQLite): routes call it from FastAPI's threadpool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from api.cli_errors import nearest_existing
from api.errors import ApiError
from indexer.build import IndexReport, IndexWriter
from indexer.store import layout
from models.config import Settings
from models.embedder import Embedder
from models.errors import IndexBusy, IndexCorrupt, IndexReadOnly, PaperNotFound, PaperSearchError
from models.paper import Paper
from models.query import DEFAULT_MODE, MODES, RELATED_DEFAULT_MODE
from search.engine import SearchEngine

# How often (seconds) a read checks whether another process wrote to the index.
EXTERNAL_WRITE_CHECK_SECONDS = 1.0
# How often (seconds) a request retries opening an index that was absent or unreadable.
REOPEN_SECONDS = 1.0
# How long (seconds) a write waits behind this server's other writes before answering 503, and
# how many may wait at once: each waits in a threadpool thread that searches also need.


class ReadWriteGate:
    """Many readers or one writer. Waiting writers go first, so a stream of reads cannot starve them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@dataclass
class WriteOutcome:
    """What one POST /papers did, beyond the records it rejected."""

    report: IndexReport
    duplicates: list[str] = field(default_factory=list)
    generation: int = 0
    papers: int = 0


class IndexService:
    """Opens the index lazily, serves reads concurrently and applies writes atomically."""

    # What the app asks every service (api/shard_service.py is always read-only; this one is
    # when its index cannot be written: see `read_only`).
    modes = MODES
    default_mode = DEFAULT_MODE
    related_default_mode = RELATED_DEFAULT_MODE

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self._embedder = embedder
        self._engine: SearchEngine | None = None
        self._open_error: PaperSearchError | None = None
        self._gate = ReadWriteGate()
        self._open_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._writes_waiting = 0
        self._opened_at = 0.0
        self._checked_at = 0.0
        # For /metrics (api/metrics.py): reloads of the engine for a new generation, by cause.
        self.reloads = {"write": 0, "external": 0}

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the index and load the model now, so the first request is not the slow one.

        Never raises for a missing or broken index: the server starts and /health says why.
        """
        try:
            engine = self._current_engine()
            engine.encoder.encode(["warm up"], "query")
        except PaperSearchError:
            pass

    def close(self) -> None:
        with self._gate.writing():
            if self._engine is not None:
                self._engine.close()
                self._engine = None

    @property
    def writes_waiting(self) -> int:
        """HTTP writes queued behind the one in progress (for /metrics)."""
        return self._writes_waiting

    @property
    def writes_enabled(self) -> bool:
        return bool(self.settings.api_key) and not self.read_only

    @property
    def read_only(self) -> bool:
        """True when this process cannot write the index (a read-only mount, no permission).

        Such an index is still served: reads open it read-only and never need the write lock.
        Asked on every write, so remounting read-write takes effect without a restart.
        """
        return not layout.is_writable(nearest_existing(Path(self.settings.index_dir)))  # a first write creates it

    def refuse_write(self) -> None:
        """What every write route answers on a read-only index (the app asks `read_only` first)."""
        raise ApiError(403, "read_only", f"The index in {self.settings.index_dir} is read-only for this server "
                       "(a read-only mount, or no write permission): it answers searches but takes no writes. "
                       "Write to a writable copy of it and serve that, or remount it read-write.")

    # --- reading --------------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[SearchEngine]:
        """The engine, held so that no write swaps it mid-request. Raises while there is no index."""
        engine = self._current_engine()
        self._pick_up_external_writes(engine)
        with self._gate.reading():
            yield self._engine or engine

    def _current_engine(self) -> SearchEngine:
        if self._engine is not None:
            return self._engine
        with self._open_lock:
            if self._engine is not None:
                return self._engine
            if self._open_error is not None and time.monotonic() - self._opened_at < REOPEN_SECONDS:
                raise self._open_error
            self._opened_at = time.monotonic()
            try:
                self._engine = self._open_engine()
                self._open_error = None
            except PaperSearchError as exc:
                self._open_error = exc
                raise
            return self._engine

    def _open_engine(self) -> SearchEngine:
        try:
            # Queries: the encoder given to create_app, else the index's ONNX export, which never
            # imports torch (SearchEngine.open falls back to sentence-transformers with a note).
            return SearchEngine.open(self.settings, encoder=self._embedder)
        except PaperSearchError:
            raise
        except Exception as exc:  # e.g. an index caught half-created by another process
            raise IndexCorrupt(f"The index in {self.settings.index_dir} cannot be opened yet ({exc}).") from exc

    def _pick_up_external_writes(self, engine: SearchEngine) -> None:
        now = time.monotonic()
        if now - self._checked_at < EXTERNAL_WRITE_CHECK_SECONDS:
            return
        self._checked_at = now
        if engine.store.generation != engine.generation:
            with self._gate.writing():
                if engine.refresh(in_place=True):  # no search runs under the exclusive gate
                    self.reloads["external"] += 1

    def health(self) -> dict:
        """Ready facts (papers, model, generation); raises the reason when not ready."""
        with self.reading() as engine:
            return {"status": "ready", "papers": engine.store.count(), "model": engine.encoder.name,
                    "generation": engine.generation}

    # --- writing --------------------------------------------------------------------------------

    @contextmanager
    def _writer(self) -> Iterator[IndexWriter]:
        # One write at a time in this process: a few later ones queue (clients need not retry a
        # busy server), for a bounded time. Another process's write (the CLI) is IndexBusy at once.
        self._wait_for_write_turn()
        try:
            embedder = self._engine.encoder if self._engine is not None else self._embedder
            with IndexWriter(self.settings, embedder=embedder, wait_for_lock=False) as writer:
                yield writer
        except IndexReadOnly:
            self.refuse_write()  # made read-only since the route asked (a remount): the same answer
        finally:
            self._write_lock.release()

    def _wait_for_write_turn(self) -> None:
        with self._queue_lock:
            if self._writes_waiting >= self.settings.write_queue_length:
                raise IndexBusy(f"{self._writes_waiting} writes are already waiting for this index; "
                                "retry in a moment.")
            self._writes_waiting += 1
        try:
            if not self._write_lock.acquire(timeout=self.settings.write_queue_seconds):
                raise IndexBusy(f"Other writes to this index have taken over {self.settings.write_queue_seconds:g} s; "
                                "retry in a moment.")
        finally:
            with self._queue_lock:
                self._writes_waiting -= 1

    def upsert(self, papers: list[Paper]) -> WriteOutcome:
        """Add or replace papers; all become visible to searches at the same moment."""
        outcome = WriteOutcome(IndexReport())
        seen: set[str] = set()
        for paper in papers:
            if paper.paper_id in seen:
                outcome.duplicates.append(paper.paper_id)
            seen.add(paper.paper_id)
        with self._writer() as writer:
            prepared = writer.prepare(papers, outcome.report)  # the slow part: searches go on
            with self._gate.writing():
                writer.commit(prepared, outcome.report)
                self._publish(writer)
            outcome.generation, outcome.papers = writer.store.generation, writer.store.count()
        return outcome

    def delete(self, paper_id: str) -> tuple[int, int]:
        """Remove one paper. Returns (generation, papers left); PaperNotFound when absent."""
        with self.reading() as engine:
            if not engine.store.get_papers([paper_id]):
                raise PaperNotFound(paper_id)
        with self._writer() as writer:
            with self._gate.writing():
                deleted, _ = writer.delete([paper_id])
                self._publish(writer)
            if not deleted:  # removed by someone else in the meantime
                raise PaperNotFound(paper_id)
            return writer.store.generation, writer.store.count()

    def _publish(self, writer: IndexWriter) -> None:
        """Save the new FAISS generation and point the engine at it (under the exclusive gate)."""
        writer.flush()
        if self._engine is None:
            writer.ensure_query_export()  # a first write to a new index: searches stay torch-free
            self._engine = SearchEngine.open(self.settings, encoder=self._embedder)
            self._open_error = None
        else:
            # In place: the exclusive gate has stopped every search, and copying the vector index
            # would cost as much as the whole index instead of the rows written.
            self._engine.refresh(in_place=True)
            self.reloads["write"] += 1
