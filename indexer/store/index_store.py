"""IndexStore: the records, their embeddings and the metadata of one index directory.

Each write is one SQLite transaction that also bumps `generation`. The FAISS file is named after
the generation it reflects; when it is missing or stale (a crash between the two), it is rebuilt
from the stored embeddings, never re-embedded. Readers never see a half-written state: SQLite
gives them a consistent snapshot and files are replaced atomically. Row ids are never reused,
even after the highest row is deleted, so a reader still holding an older FAISS snapshot can only
hit a row that is gone (and is dropped), never a different paper under an old id.

Every read goes through `_fetch`, which maps a damaged database to IndexCorrupt.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from indexer import vectors
from indexer.store import codec, layout, migrate, schema
from indexer.store.filter_sql import filter_where
from indexer.store.lock import WriteLock, read_only_error
from indexer.store.lookups import CorpusReads, IdentifierReads
from indexer.store.rows import PAPER_COLUMN_COUNT, PAPER_COLUMNS, pages, paper_from_row, rows_in
from indexer.store.vector_store import VectorFileStore
from indexer.store.writes import RecordWrites
from models.embedder import ModelInfo
from models.errors import (
    IndexCorrupt,
    IndexModelMismatch,
    IndexNotBuilt,
    IndexReadOnly,
    InvalidInput,
)
from models.paper import Paper
from models.query import Filters

log = logging.getLogger("papersearch")


def _upgrade_locked(directory: Path) -> None:
    """Upgrade an older index for a reader: under the write lock (waiting for a running writer)."""
    if not layout.is_writable(directory):
        raise IndexReadOnly(f"The index in {directory} is in an older format, which this PaperSearch upgrades "
                            "in place, but it is read-only here. Upgrade it once where it is writable ('papersearch "
                            "check --repair --index DIR'), or copy it with 'papersearch backup'.")
    with WriteLock(directory):
        store = IndexStore(directory, schema.connect(layout.db_file(directory)))
        try:
            store.upgrade()
        finally:
            store.close()


class IndexStore(RecordWrites, IdentifierReads, CorpusReads, VectorFileStore):
    """One index directory, open for reading (and for writing when created with `create`)."""

    def __init__(self, directory: Path, connection: sqlite3.Connection, writable: bool = True):
        self.directory = directory
        self._db = connection
        # False: opened for reading (a search, `info`, `check`); SQLite would refuse a write anyway,
        # the flag turns that into one clear line.
        self.writable = writable
        self.format_version = migrate.FORMAT_VERSION  # as found on open (older only when not upgraded)
        # One connection may be shared by threads (the API's threadpool); SQLite cannot nest
        # transactions on one connection, so transactions take turns.
        self._transaction_lock = threading.Lock()
        # Why the last load_vector_index did not use the FAISS file (None: it used it).
        self.vector_file_problem: str | None = None
        # Whether the identifiers table is there and filled (False: an old index opened read-only).
        self._identifiers_indexed: bool | None = None  # None: not looked at yet (see _has_identifiers)
        self._scanned_identifiers: dict | None = None  # an old read-only index's keys, read once

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | Path, writable: bool = False, upgrade: bool = True) -> IndexStore:
        """Open an existing index; IndexNotBuilt when there is none, IndexCorrupt when unreadable.

        Readers open it read-only (no write, no lock; a read-only mount is fine). `writable` is for
        a caller holding the write lock (`check --repair`). An index of an older format is upgraded
        in place first (`migrate`), unless `upgrade` is False (`check` reports it instead).
        """
        directory = Path(directory)
        db_path = layout.db_file(directory)
        if not db_path.is_file():
            raise IndexNotBuilt(
                f"No index in {directory} - run 'papersearch index papers.jsonl --index {directory}' first."
            )
        store = cls(directory, schema.connect(db_path, read_only=not writable), writable)
        try:
            found = store.format_version = schema.check_readable(store._db, directory)
            if found == migrate.FORMAT_VERSION or not upgrade:
                store._ensure_identifiers()
                return store
            if writable:
                store.upgrade()
                store._ensure_identifiers()
                return store
        except BaseException:
            store.close()
            raise
        store.close()
        _upgrade_locked(directory)
        return cls.open(directory, upgrade=False)

    @classmethod
    def create(cls, directory: str | Path, model: ModelInfo) -> IndexStore:
        """Open the index in `directory`, creating it for `model` if it does not exist yet.

        Only a process holding the write lock may call this."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise InvalidInput(f"{directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        store = cls(directory, schema.connect(layout.db_file(directory)))
        schema.migrate(store._db)
        new = store._meta_get("model_name") is None
        with store._db:
            if new:
                store._meta_set_many({
                    "format_version": str(migrate.FIRST_FORMAT),  # the steps below bring it up to date
                    "model_name": model.name,
                    "model_fingerprint": model.fingerprint,
                    "dimension": str(model.dimension),
                    "index_type": vectors.AUTO,
                    "generation": "0",
                    "created_at": str(int(time.time())),
                })
        try:
            migrate.refuse_newer(dict(store._fetch("SELECT key, value FROM meta")), directory)
            store.upgrade(announce=not new)  # a new index runs the steps too, but was never older
            store.check_model(model)
            store._ensure_identifiers()
            # Written on every open for writing, before any record changes: a full disk is then
            # refused here, with the index untouched (tests/test_cli_errors.py), not after a commit.
            store.write_manifest()
        except BaseException:
            store.close()
            raise
        return store

    def upgrade(self, announce: bool = True) -> list[str]:
        """Bring an older format up to date in place (the caller holds the write lock); what was done."""
        self.require_writable()
        done = migrate.upgrade(self._db, self.directory)
        for line in done if announce else ():
            log.warning("%s: %s", self.directory, line)
        self.format_version = migrate.FORMAT_VERSION
        if done:
            self.write_manifest()
        return done

    def require_writable(self) -> None:
        """IndexReadOnly unless this store was opened for writing (see `open`)."""
        if not self.writable:
            raise read_only_error(self.directory, "was opened for reading only"
                                  if layout.is_writable(self.directory) else "is read-only here")

    def close(self) -> None:
        self._db.close()

    # --- the one read path --------------------------------------------------------------------

    def _fetch(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """All rows of one query; a damaged database raises IndexCorrupt."""
        with schema.damage_as_corrupt(self.directory):
            return self._db.execute(sql, params).fetchall()

    def _pages(self, columns: str, chunk_size: int) -> Iterator[list[tuple]]:
        return pages(self._fetch, columns, chunk_size)

    def _rows_in(self, sql: str, keys: Iterable) -> Iterator[tuple]:
        return rows_in(self._fetch, sql, keys)

    # --- metadata -----------------------------------------------------------------------------

    def _meta_get(self, key: str) -> str | None:
        rows = self._fetch("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def _meta_set_many(self, values: dict[str, str]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", values.items())

    @property
    def model(self) -> ModelInfo:
        """The model the index was built with."""
        return ModelInfo(self._meta_get("model_name"), self._meta_get("model_fingerprint"),
                         int(self._meta_get("dimension")))

    @property
    def index_type(self) -> str:
        """The requested vector index type ("auto" or one of the kinds)."""
        return self._meta_get("index_type") or vectors.AUTO

    def set_index_type(self, index_type: str) -> None:
        self.require_writable()
        vectors.resolve_index_type(index_type, 0)  # validates the name
        with self._transaction_lock, self._db:
            self._meta_set_many({"index_type": index_type})

    @property
    def generation(self) -> int:
        """Write counter: bumped by every committed write."""
        return int(self._meta_get("generation") or 0)

    def check_model(self, model: ModelInfo) -> None:
        """Raise IndexModelMismatch unless `model` is the one the index was built with."""
        mine = self.model
        if (mine.fingerprint, mine.dimension) != (model.fingerprint, model.dimension):
            raise IndexModelMismatch(
                f"The index in {self.directory} was built with model {mine.name!r} "
                f"(fingerprint {mine.fingerprint}, {mine.dimension} dimensions), not with "
                f"{model.name!r} (fingerprint {model.fingerprint}, {model.dimension} dimensions). "
                f"Use --model {mine.name!r}, or index into a new --index directory."
            )

    def recorded_export(self, fingerprint: str) -> dict[str, str] | None:
        """file name -> SHA-256 of the ONNX export of model `fingerprint`, as noted when it was made."""
        try:
            record = json.loads(self._meta_get("onnx_export") or "null")
        except ValueError:
            return None
        if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
            return None
        return record.get("files") or None

    def record_export(self, fingerprint: str, digests: dict[str, str]) -> None:
        """Note the checksums of the ONNX export just made (`check` compares them later)."""
        self.require_writable()
        with self._transaction_lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._meta_set_many({"onnx_export": json.dumps({"fingerprint": fingerprint, "files": digests})})

    def count(self) -> int:
        return self._fetch("SELECT count(*) FROM papers")[0][0]

    def manifest(self) -> dict:
        """The manifest as written to the manifest file."""
        model = self.model
        return {
            "format_version": migrate.FORMAT_VERSION,
            "model": {"name": model.name, "fingerprint": model.fingerprint},
            "dimension": model.dimension,
            "index_type": self.index_type,
            "generation": self.generation,
            "papers": self.count(),
            "updated_at": int(time.time()),
        }

    def write_manifest(self) -> None:
        self.require_writable()
        data = json.dumps(self.manifest(), indent=2).encode() + b"\n"
        layout.atomic_write_bytes(layout.manifest_file(self.directory), data)

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())

    # --- reading records ----------------------------------------------------------------------

    def stored_hashes(self, paper_ids: Iterable[str]) -> dict[str, tuple[str, Paper]]:
        """paper_id -> (content hash, stored Paper) for the ids that are present."""
        sql = f"SELECT {PAPER_COLUMNS}, content_hash FROM papers WHERE paper_id IN ({{marks}})"
        return {row[1]: (row[PAPER_COLUMN_COUNT], paper_from_row(row)) for row in self._rows_in(sql, paper_ids)}

    def get_papers(self, paper_ids: Iterable[str]) -> dict[str, Paper]:
        """id as given -> Paper for the ids that are present (a paper id, a DOI or an arXiv id)."""
        resolved = self.resolve_ids(paper_ids)
        stored = {pid: paper for pid, (_, paper) in self.stored_hashes(set(resolved.values())).items()}
        return {given: stored[pid] for given, pid in resolved.items() if pid in stored}

    def papers_by_rowid(self, rowids: Iterable[int]) -> dict[int, Paper]:
        """rowid -> Paper for the given FAISS ids."""
        sql = f"SELECT {PAPER_COLUMNS} FROM papers WHERE rowid IN ({{marks}})"
        return {row[0]: paper_from_row(row) for row in self._rows_in(sql, [int(r) for r in rowids])}

    def rowids_for(self, paper_ids: Iterable[str]) -> dict[str, int]:
        """id as given -> rowid for the ids that are present (paper ids, DOIs, arXiv ids)."""
        resolved = self.resolve_ids(paper_ids)
        sql = "SELECT rowid, paper_id FROM papers WHERE paper_id IN ({marks})"
        rowids = {pid: rowid for rowid, pid in self._rows_in(sql, set(resolved.values()))}
        return {given: rowids[pid] for given, pid in resolved.items() if pid in rowids}

    def embeddings_for(self, paper_ids: list[str]) -> dict[str, np.ndarray]:
        """id as given -> stored embedding for the ids that are present (paper ids, DOIs, arXiv ids)."""
        resolved = self.resolve_ids(paper_ids)
        sql = "SELECT paper_id, embedding FROM papers WHERE paper_id IN ({marks})"
        out: dict[str, np.ndarray] = {}
        dimension = self.model.dimension
        for pid, blob in self._rows_in(sql, set(resolved.values())):
            if not codec.is_vector_blob(blob, dimension):
                raise IndexCorrupt(f"{layout.db_file(self.directory)}: the stored embedding of {pid!r} is damaged. "
                                   f"Run 'papersearch check --repair --index {self.directory}'.")
            out[pid] = codec.vector_of(blob, dimension)
        return {given: out[pid] for given, pid in resolved.items() if pid in out}

    def embeddings_by_rowid(self, rowids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(found rowids, their stored vectors) for FAISS ids; rows deleted meanwhile, or whose
        vector is unusable (`_usable`), are skipped."""
        rows = self._usable(list(self._rows_in("SELECT rowid, embedding FROM papers WHERE rowid IN ({marks})",
                                               [int(r) for r in rowids])))
        return (np.array([r[0] for r in rows], dtype=np.int64),
                codec.matrix_of([r[1] for r in rows], self.model.dimension))

    def iter_embeddings(self, chunk_size: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rowids, vectors) chunks over the whole index, in rowid order (unusable vectors skipped)."""
        for rows in self._pages("rowid, embedding", chunk_size):
            rows = self._usable(rows)
            rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield rowids, codec.matrix_of([r[1] for r in rows], self.model.dimension)

    def _usable(self, rows: list[tuple]) -> list[tuple]:
        """The (rowid, embedding) rows holding a usable vector. One damaged vector must not make the
        whole index unsearchable: its paper is left out of dense search (with a warning) until
        `check --repair` re-embeds it; `check` names it, and `embeddings_for` refuses it."""
        dimension = self.model.dimension
        usable = [r for r in rows if codec.is_vector_blob(r[1], dimension)]
        if len(usable) < len(rows):
            log.warning("warning: %s: %d stored embedding(s) are unusable and left out of dense search; run "
                        "'papersearch check --repair --index %s'", layout.db_file(self.directory),
                        len(rows) - len(usable), self.directory)
        return usable

    def sample_embeddings(self, size: int) -> np.ndarray:
        """About `size` stored vectors spread evenly over the index (every n-th row), for training."""
        stride = max(1, self.count() // max(size, 1))
        parts = [matrix[rowids % stride == 0] for rowids, matrix in self.iter_embeddings()]
        sample = np.concatenate(parts) if parts else np.zeros((0, self.model.dimension), np.float32)
        return sample[:size]

    def iter_content_hashes(self, chunk_size: int = 50_000) -> Iterator[list[tuple[str, str]]]:
        """Chunks of (paper_id, content hash) over the whole index, in rowid order."""
        for rows in self._pages("rowid, paper_id, content_hash", chunk_size):
            yield [(r[1], r[2]) for r in rows]

    def iter_papers(self, chunk_size: int = 5_000) -> Iterator[tuple[int, Paper]]:
        """(rowid, Paper) over the whole index, in rowid order."""
        for rows in self._pages(PAPER_COLUMNS, chunk_size):
            for row in rows:
                yield row[0], paper_from_row(row)

    def iter_stored(self, chunk_size: int = 2_000) -> Iterator[tuple[int, Paper, str, bytes]]:
        """(rowid, Paper, content hash, raw embedding bytes) for every row, for `check`.

        Raw bytes rather than arrays, so a damaged embedding can be reported instead of raising.
        """
        for rows in self._pages(f"{PAPER_COLUMNS}, content_hash, embedding", chunk_size):
            for row in rows:
                yield row[0], paper_from_row(row), row[PAPER_COLUMN_COUNT], bytes(row[PAPER_COLUMN_COUNT + 1] or b"")

    def copy_database_to(self, path: Path) -> None:
        """SQLite's online backup of the database into a new file at `path`, in one step.

        One step copies one committed state: a write committed meanwhile is either wholly in the
        copy or not at all, and in WAL mode the copy never blocks writers (nor they it).
        """
        target = sqlite3.connect(path)
        try:
            with self._transaction_lock, schema.damage_as_corrupt(self.directory):
                self._db.backup(target)  # pages=-1: every page in one step
        finally:
            target.close()

    def integrity_problems(self) -> list[str]:
        """SQLite's own page and index check (PRAGMA quick_check); empty when the file is sound."""
        try:
            rows = [r[0] for r in self._db.execute("PRAGMA quick_check(20)").fetchall()]
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        return [] if rows == ["ok"] else rows

    def filter_rowids(self, filters: Filters) -> np.ndarray:
        """Row ids of the papers that pass `filters` (year range, category, author)."""
        where, params = filter_where(filters)
        rows = self._fetch(f"SELECT rowid FROM papers WHERE {where}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def all_rowids(self) -> np.ndarray:
        """Every stored row id, ascending."""
        # Without ORDER BY, SQLite scans a small covering index (rowids ride in every index)
        # instead of the table's pages of abstracts and vectors: 6x less to read at 100k papers.
        rows = self._fetch("SELECT rowid FROM papers")
        # chain.from_iterable unpacks the 1-tuples in C: a generator took 0.2 s at 105k papers, on
        # every refresh after a write.
        return np.sort(np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=len(rows)))
