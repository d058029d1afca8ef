"""The on-disk index: the only module that knows the directory layout.

    INDEX_DIR/
      papers.sqlite         records, content hashes and embeddings (the source of truth), WAL mode
      vectors-<gen>.faiss   the FAISS index for write generation <gen> (derived, rebuildable)
      lexical/              the BM25 (tantivy) index and the generation it reflects (derived, rebuildable)
      manifest.json         format version, model, dimension, counts (derived, for people and tools)
      write.lock            held by the one process writing
      onnx/<fingerprint>/   ONNX export of the index's model, for torch-free queries (derived,
                            re-exportable; its inside belongs to models/onnx_encoder.py)

Each write is one SQLite transaction that also bumps `generation`. The FAISS file is named after
the generation it reflects; when it is missing or stale (a crash between the two), it is rebuilt
from the stored embeddings, never re-embedded. Readers never see a half-written state: SQLite
gives them a consistent snapshot and files are replaced atomically.

A FAISS file is used only when it provably matches SQLite: its ids must equal the stored row ids,
and its SHA-256 must equal the one recorded in `meta.vectors_digest` when it was saved for that
generation (so a file with the right name but wrong contents is never served). Row ids are never
reused, even after the highest row is deleted, so a reader still holding an older FAISS snapshot
can only hit a row that is gone (and is dropped), never a different paper under an old id.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from indexer import vectors
from models.embedder import ModelInfo
from models.errors import IndexBusy, IndexCorrupt, IndexModelMismatch, IndexNotBuilt, InvalidInput
from models.paper import Paper

FORMAT_VERSION = 1
DB_FILE = "papers.sqlite"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = "write.lock"
LEXICAL_DIR = "lexical"
LEXICAL_STATE_FILE = "papersearch-state.json"  # inside LEXICAL_DIR, beside tantivy's own files
ONNX_DIR = "onnx"

# Schema steps, applied in order; PRAGMA user_version records how many have run.
_MIGRATIONS = (
    """
    CREATE TABLE papers (
        rowid INTEGER PRIMARY KEY,          -- the FAISS id
        paper_id TEXT NOT NULL UNIQUE,      -- the external id
        title TEXT NOT NULL,
        abstract TEXT NOT NULL,
        authors TEXT NOT NULL,              -- JSON list
        year INTEGER,
        categories TEXT NOT NULL,           -- JSON list
        venue TEXT, url TEXT, doi TEXT,
        extra TEXT NOT NULL,                -- JSON object of unknown input fields
        content_hash TEXT NOT NULL,         -- of embedded text + model fingerprint
        embedding BLOB NOT NULL             -- float32 x dimension
    );
    CREATE INDEX papers_year ON papers(year);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)

_PAPER_COLUMNS = "rowid, paper_id, title, abstract, authors, year, categories, venue, url, doi, extra"


def faiss_file(directory: Path, generation: int) -> Path:
    """The FAISS file for one write generation."""
    return directory / f"vectors-{generation}.faiss"


def lexical_path(directory: Path) -> Path:
    """The folder of the lexical (BM25) index; indexer/lexical.py owns what is inside."""
    return Path(directory) / LEXICAL_DIR


def lexical_state_file(directory: Path) -> Path:
    """The sidecar recording which store generation the lexical index reflects."""
    return lexical_path(directory) / LEXICAL_STATE_FILE


def onnx_export_dir(directory: Path, fingerprint: str) -> Path:
    """The folder holding the ONNX export of the model with this fingerprint."""
    return Path(directory) / ONNX_DIR / fingerprint


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so readers see either the old or the new content, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; an index is meant to be shared with readers
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _db_errors(method):
    """Turn SQLite's "the file is damaged" errors into IndexCorrupt with the next step to take.

    "database is locked" and other operational errors are not damage and pass through.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            raise IndexCorrupt(
                f"{self.directory / DB_FILE} is damaged ({exc}). "
                f"Run 'papersearch check --index {self.directory}' to see what can be restored."
            ) from exc

    return wrapper


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "malformed" in text or "disk i/o" in text or "not a database" in text
    return True


def _paper_from_row(row: sqlite3.Row | tuple) -> Paper:
    return Paper(
        paper_id=row[1], title=row[2], abstract=row[3], authors=tuple(json.loads(row[4])),
        year=row[5], categories=tuple(json.loads(row[6])), venue=row[7], url=row[8], doi=row[9],
        extra=json.loads(row[10]),
    )


@dataclass
class Filters:
    """Restrictions on which papers may be returned; all None means no restriction."""

    year_from: int | None = None
    year_to: int | None = None
    category: str | None = None
    author: str | None = None

    def active(self) -> bool:
        return any(v not in (None, "") for v in (self.year_from, self.year_to, self.category, self.author))


@dataclass
class WriteResult:
    """What one write transaction changed, in FAISS terms."""

    removed_rowids: list[int] = field(default_factory=list)
    added_rowids: list[int] = field(default_factory=list)
    added_vectors: list[np.ndarray] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class Upsert:
    """A paper to store; `vector` None keeps the stored embedding (metadata-only change)."""

    paper: Paper
    content_hash: str
    vector: np.ndarray | None


class IndexStore:
    """One index directory, open for reading (and for writing when created with `writable`)."""

    def __init__(self, directory: Path, connection: sqlite3.Connection):
        self.directory = directory
        self._db = connection
        # One connection may be shared by threads (the API's threadpool); SQLite cannot nest
        # transactions on one connection, so transactions take turns.
        self._transaction_lock = threading.Lock()
        # Why the last load_vector_index did not use the FAISS file (None: it used it).
        self.vector_file_problem: str | None = None

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | Path) -> IndexStore:
        """Open an existing index; IndexNotBuilt when there is none, IndexCorrupt when unreadable."""
        directory = Path(directory)
        db_path = directory / DB_FILE
        if not db_path.is_file():
            raise IndexNotBuilt(
                f"No index in {directory} - run 'papersearch index papers.jsonl --index {directory}' first."
            )
        store = cls(directory, cls._connect(db_path))
        store._check_readable()
        return store

    @classmethod
    def create(cls, directory: str | Path, model: ModelInfo) -> IndexStore:
        """Open the index in `directory`, creating it for `model` if it does not exist yet."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise InvalidInput(f"{directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        store = cls(directory, cls._connect(directory / DB_FILE))
        store._migrate()
        with store._db:
            if store._meta_get("model_name") is None:
                store._meta_set_many({
                    "format_version": str(FORMAT_VERSION),
                    "model_name": model.name,
                    "model_fingerprint": model.fingerprint,
                    "dimension": str(model.dimension),
                    "index_type": "auto",
                    "generation": "0",
                    "created_at": str(int(time.time())),
                })
        store.check_model(model)
        store.write_manifest()
        return store

    @staticmethod
    def _connect(db_path: Path) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(db_path, timeout=30, check_same_thread=False,
                                         isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"{db_path} is not a readable SQLite database ({exc}). It holds the records and "
                               "embeddings: restore it from a backup, or re-index your input files into a new "
                               "directory.") from exc
        return connection

    def _migrate(self) -> None:
        done = self._db.execute("PRAGMA user_version").fetchone()[0]
        for step, script in enumerate(_MIGRATIONS[done:], start=done + 1):
            self._db.executescript(f"BEGIN; {script}; PRAGMA user_version={step}; COMMIT;")

    def _check_readable(self) -> None:
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                # What a reader sees in the instant an index run creates the file, or after a run was
                # killed right then; also a file emptied by damage. A rerun of the index fixes all three.
                raise IndexNotBuilt(f"{self.directory / DB_FILE} holds no PaperSearch tables: the index was "
                                    "never finished, or the file was emptied. Run 'papersearch index FILE "
                                    f"--index {self.directory}' (again), or restore it from a backup.")
            fmt = int(self._meta_get("format_version") or 0)
            missing = [k for k in ("model_name", "model_fingerprint", "dimension", "generation")
                       if self._meta_get(k) is None]
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(
                f"{self.directory / DB_FILE} is damaged ({exc}). "
                "Rebuild the index from your input files into a new directory."
            ) from exc
        if fmt > FORMAT_VERSION:
            raise IndexCorrupt(
                f"{self.directory} uses index format {fmt}; this PaperSearch reads up to "
                f"{FORMAT_VERSION}. Upgrade PaperSearch."
            )
        if missing:
            # The tables exist but the first write never committed its metadata: a run that was
            # killed while creating the index, or one that is creating it right now.
            raise IndexNotBuilt(
                f"The index in {self.directory} was never finished (no {', '.join(missing)} recorded). "
                f"If an index run is starting, wait for it; otherwise run 'papersearch index FILE "
                f"--index {self.directory}' again."
            )

    def close(self) -> None:
        self._db.close()

    # --- metadata -----------------------------------------------------------------------------

    def _meta_get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _meta_set_many(self, values: dict[str, str]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", values.items())

    @property
    def model(self) -> ModelInfo:
        """The model the index was built with."""
        return ModelInfo(self._meta_get("model_name"), self._meta_get("model_fingerprint"),
                         int(self._meta_get("dimension")))

    @property
    def index_type(self) -> str:
        """The requested vector index type ("auto", "flat", "hnsw")."""
        return self._meta_get("index_type") or "auto"

    def set_index_type(self, index_type: str) -> None:
        vectors.resolve_index_type(index_type, 0)  # validates the name
        with self._transaction_lock, self._db:
            self._meta_set_many({"index_type": index_type})

    @property
    @_db_errors
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

    @_db_errors
    def count(self) -> int:
        return self._db.execute("SELECT count(*) FROM papers").fetchone()[0]

    def manifest(self) -> dict:
        """The manifest as written to manifest.json."""
        model = self.model
        return {
            "format_version": FORMAT_VERSION,
            "model": {"name": model.name, "fingerprint": model.fingerprint},
            "dimension": model.dimension,
            "index_type": self.index_type,
            "generation": self.generation,
            "papers": self.count(),
            "updated_at": int(time.time()),
        }

    def write_manifest(self) -> None:
        data = json.dumps(self.manifest(), indent=2).encode() + b"\n"
        atomic_write_bytes(self.directory / MANIFEST_FILE, data)

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())

    # --- reading records ----------------------------------------------------------------------

    @_db_errors
    def stored_hashes(self, paper_ids: Iterable[str]) -> dict[str, tuple[str, Paper]]:
        """paper_id -> (content hash, stored Paper) for the ids that are present."""
        out: dict[str, tuple[str, Paper]] = {}
        for chunk in _chunks(list(paper_ids), 500):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT {_PAPER_COLUMNS}, content_hash FROM papers WHERE paper_id IN ({marks})", chunk
            )
            for row in rows:
                out[row[1]] = (row[11], _paper_from_row(row))
        return out

    def get_papers(self, paper_ids: Iterable[str]) -> dict[str, Paper]:
        """paper_id -> Paper for the ids that are present."""
        return {pid: paper for pid, (_, paper) in self.stored_hashes(paper_ids).items()}

    @_db_errors
    def papers_by_rowid(self, rowids: Iterable[int]) -> dict[int, Paper]:
        """rowid -> Paper for the given FAISS ids."""
        out: dict[int, Paper] = {}
        for chunk in _chunks([int(r) for r in rowids], 500):
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT {_PAPER_COLUMNS} FROM papers WHERE rowid IN ({marks})", chunk):
                out[row[0]] = _paper_from_row(row)
        return out

    @_db_errors
    def rowids_for(self, paper_ids: Iterable[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(list(paper_ids), 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT rowid, paper_id FROM papers WHERE paper_id IN ({marks})"
            for rowid, pid in self._db.execute(query, chunk):
                out[pid] = rowid
        return out

    @_db_errors
    def embeddings_for(self, paper_ids: list[str]) -> dict[str, np.ndarray]:
        """paper_id -> stored embedding for the ids that are present."""
        out: dict[str, np.ndarray] = {}
        for chunk in _chunks(paper_ids, 500):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT paper_id, embedding FROM papers WHERE paper_id IN ({marks})"
            for pid, blob in self._db.execute(query, chunk):
                if len(blob or b"") != self.model.dimension * 4:
                    raise IndexCorrupt(f"{self.directory / DB_FILE}: the stored embedding of {pid!r} is damaged. "
                                       f"Run 'papersearch check --repair --index {self.directory}'.")
                out[pid] = np.frombuffer(blob, dtype=np.float32)
        return out

    def iter_embeddings(self, chunk_size: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rowids, vectors) chunks over the whole index, in rowid order."""
        dimension = self.model.dimension
        last = -1
        while True:
            rows = self._db.execute(
                "SELECT rowid, embedding FROM papers WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (last, chunk_size)).fetchall()
            if not rows:
                return
            rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            if any(len(r[1] or b"") != dimension * 4 for r in rows):
                raise IndexCorrupt(f"{self.directory / DB_FILE}: stored embeddings are not {dimension}-dimensional. "
                                   f"Run 'papersearch check --repair --index {self.directory}'.")
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            yield rowids, matrix.reshape(len(rows), dimension)
            last = int(rowids[-1])

    def sample_embeddings(self, size: int) -> np.ndarray:
        """About `size` stored vectors spread evenly over the index (every n-th row), for training."""
        stride = max(1, self.count() // max(size, 1))
        parts = [matrix[rowids % stride == 0] for rowids, matrix in self.iter_embeddings()]
        sample = np.concatenate(parts) if parts else np.zeros((0, self.model.dimension), np.float32)
        return sample[:size]

    def embeddings_by_rowid(self, rowids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(found rowids, their stored vectors) for FAISS ids; rows deleted meanwhile are skipped."""
        found: list[int] = []
        blobs: list[bytes] = []
        for chunk in _chunks([int(r) for r in rowids], 500):
            marks = ",".join("?" * len(chunk))
            for rowid, blob in self._db.execute(f"SELECT rowid, embedding FROM papers WHERE rowid IN ({marks})", chunk):
                found.append(rowid)
                blobs.append(blob)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(found), self.model.dimension)
        return np.array(found, dtype=np.int64), matrix

    def iter_content_hashes(self, chunk_size: int = 50_000) -> Iterator[list[tuple[str, str]]]:
        """Chunks of (paper_id, content hash) over the whole index, in rowid order."""
        last = -1
        while True:
            rows = self._db.execute("SELECT rowid, paper_id, content_hash FROM papers WHERE rowid > ? "
                                    "ORDER BY rowid LIMIT ?", (last, chunk_size)).fetchall()
            if not rows:
                return
            yield [(r[1], r[2]) for r in rows]
            last = rows[-1][0]

    def iter_papers(self, chunk_size: int = 5_000) -> Iterator[tuple[int, Paper]]:
        """(rowid, Paper) over the whole index, in rowid order."""
        last = -1
        while True:
            rows = self._db.execute(f"SELECT {_PAPER_COLUMNS} FROM papers WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                    (last, chunk_size)).fetchall()
            if not rows:
                return
            for row in rows:
                yield row[0], _paper_from_row(row)
            last = rows[-1][0]

    def iter_stored(self, chunk_size: int = 2_000) -> Iterator[tuple[int, Paper, str, bytes]]:
        """(rowid, Paper, content hash, raw embedding bytes) for every row, for `check`.

        Raw bytes rather than arrays, so a damaged embedding can be reported instead of raising.
        """
        last = -1
        while True:
            rows = self._db.execute(f"SELECT {_PAPER_COLUMNS}, content_hash, embedding FROM papers "
                                    "WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, chunk_size)).fetchall()
            if not rows:
                return
            for row in rows:
                yield row[0], _paper_from_row(row), row[11], bytes(row[12] or b"")
            last = rows[-1][0]

    def integrity_problems(self) -> list[str]:
        """SQLite's own page and index check (PRAGMA quick_check); empty when the file is sound."""
        try:
            rows = [r[0] for r in self._db.execute("PRAGMA quick_check(20)").fetchall()]
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        return [] if rows == ["ok"] else rows

    @_db_errors
    def filter_rowids(self, filters: Filters) -> np.ndarray:
        """Row ids of the papers that pass `filters` (year range, category, author)."""
        clauses, params = [], []
        if filters.year_from is not None:
            clauses.append("year >= ?")
            params.append(int(filters.year_from))
        if filters.year_to is not None:
            clauses.append("year <= ?")
            params.append(int(filters.year_to))
        if filters.category:
            # "cs" or "cs.CV": whole category, or a prefix up to a dot, case-insensitively.
            clauses.append("EXISTS (SELECT 1 FROM json_each(papers.categories) "
                           "WHERE lower(value) = lower(?) OR lower(value) LIKE lower(?) || '.%' ESCAPE '\\')")
            params += [filters.category, _escape_like(filters.category)]
        if filters.author:
            clauses.append("EXISTS (SELECT 1 FROM json_each(papers.authors) "
                           "WHERE lower(value) LIKE '%' || lower(?) || '%' ESCAPE '\\')")
            params.append(_escape_like(filters.author))
        where = " AND ".join(clauses) or "1"
        rows = self._db.execute(f"SELECT rowid FROM papers WHERE {where}", params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    # --- writing ------------------------------------------------------------------------------

    def write(self, upserts: list[Upsert], delete_ids: Iterable[str] = ()) -> WriteResult:
        """Apply upserts and deletes in one transaction and bump the generation."""
        result = WriteResult()
        dimension = self.model.dimension
        with self._transaction_lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            next_rowid = self._next_rowid()
            for item in upserts:
                next_rowid = self._upsert(item, dimension, result, next_rowid)
            for pid in delete_ids:
                row = self._db.execute("SELECT rowid FROM papers WHERE paper_id=?", (pid,)).fetchone()
                if row is None:
                    result.missing.append(pid)
                    continue
                self._db.execute("DELETE FROM papers WHERE rowid=?", (row[0],))
                result.removed_rowids.append(row[0])
                result.deleted.append(pid)
            self._meta_set_many({"generation": str(self.generation + 1), "last_rowid": str(next_rowid - 1)})
        return result

    def _next_rowid(self) -> int:
        """The first never-used row id. SQLite alone would hand out max(rowid) + 1 again after the
        highest row is deleted; a reader's older FAISS snapshot would then map it to the wrong paper."""
        top = self._db.execute("SELECT max(rowid) FROM papers").fetchone()[0] or 0
        return max(top, int(self._meta_get("last_rowid") or 0)) + 1

    def _upsert(self, item: Upsert, dimension: int, result: WriteResult, next_rowid: int) -> int:
        """Store one paper; returns the next free row id."""
        paper = item.paper
        fields = (paper.title, paper.abstract, json.dumps(list(paper.authors), ensure_ascii=False),
                  paper.year, json.dumps(list(paper.categories), ensure_ascii=False), paper.venue,
                  paper.url, paper.doi, json.dumps(paper.extra, ensure_ascii=False, default=str),
                  item.content_hash)
        row = self._db.execute("SELECT rowid FROM papers WHERE paper_id=?", (paper.paper_id,)).fetchone()
        if item.vector is None:
            if row is None:
                raise ValueError(f"paper {paper.paper_id!r} is new and needs a vector")
            self._db.execute("UPDATE papers SET title=?, abstract=?, authors=?, year=?, categories=?, "
                             "venue=?, url=?, doi=?, extra=?, content_hash=? WHERE rowid=?", (*fields, row[0]))
            return next_rowid
        vector = np.ascontiguousarray(item.vector, dtype=np.float32)
        if vector.shape != (dimension,):
            raise ValueError(f"vector for {paper.paper_id!r} has shape {vector.shape}, expected ({dimension},)")
        if row is not None:
            # A changed text gets a new rowid, so the FAISS id never points at a stale vector.
            self._db.execute("DELETE FROM papers WHERE rowid=?", (row[0],))
            result.removed_rowids.append(row[0])
        self._db.execute(
            "INSERT INTO papers(rowid, paper_id, title, abstract, authors, year, categories, venue, url, doi, "
            "extra, content_hash, embedding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (next_rowid, paper.paper_id, *fields, vector.tobytes()))
        result.added_rowids.append(next_rowid)
        result.added_vectors.append(vector)
        return next_rowid + 1

    # --- the FAISS file -------------------------------------------------------------------------

    @_db_errors
    def build_vector_index(self) -> faiss.Index:
        """A fresh FAISS index from the stored embeddings (no model needed)."""
        count = self.count()
        kind = vectors.resolve_index_type(self.index_type, count)
        index = vectors.new_index(kind, self.model.dimension, count)
        if not index.is_trained and count:  # IVF-PQ: lists and codebooks come from a sample
            vectors.train(index, self.sample_embeddings(vectors.training_size(index, count)))
        for rowids, matrix in self.iter_embeddings():
            index.add_with_ids(matrix, rowids)
        return index

    @_db_errors
    def load_vector_index(self, generation: int | None = None) -> tuple[faiss.Index, int]:
        """The FAISS index for the current generation: from its file, else rebuilt from SQLite.

        Returns the index and the generation it reflects. Why the file was not used (missing,
        stale, damaged) is left in `vector_file_problem`.
        """
        with self._transaction_lock, self._db:  # one read snapshot: generation and rows agree
            self._db.execute("BEGIN")
            generation = self.generation if generation is None else generation
            index, problem = self.vector_file_status(generation)
            if index is None:
                index = self.build_vector_index()
        self.vector_file_problem = problem
        return index, generation

    def vector_file_status(self, generation: int) -> tuple[faiss.Index | None, str | None]:
        """(index, None) when the file for `generation` matches SQLite, else (None, what is wrong).

        Call inside a read transaction so the rows compared are the ones of `generation`.
        """
        path = faiss_file(self.directory, generation)
        if not path.is_file():
            others = sorted(p.name for p in self.directory.glob("vectors-*.faiss"))
            found = f" (found only {', '.join(others)})" if others else ""
            return None, f"{path.name} is missing{found}"
        recorded = (self._meta_get("vectors_digest") or "").split()
        try:
            # The checksum is compared before FAISS parses the file: a damaged header could make it
            # allocate or read garbage.
            if len(recorded) == 2 and recorded[0] == str(generation) and file_sha256(path) != recorded[1]:
                return None, f"{path.name} is not the file saved for generation {generation} (checksum differs)"
            index = faiss.read_index(str(path))
        except (OSError, RuntimeError, MemoryError) as exc:
            return None, f"{path.name} cannot be read ({str(exc).splitlines()[0][-120:]})"
        if not isinstance(index, (faiss.IndexIDMap2, faiss.IndexIVFPQ)) or index.d != self.model.dimension:
            return None, f"{path.name} is not a {self.model.dimension}-dimensional PaperSearch vector index"
        vectors.set_search_depth(index)
        ids = np.sort(vectors.live_ids(index))
        rowids = self.all_rowids()
        if not np.array_equal(ids, rowids):
            missing, extra = np.setdiff1d(rowids, ids), np.setdiff1d(ids, rowids)
            return None, (f"{path.name} holds {len(ids)} vectors for {len(rowids)} stored papers "
                          f"({len(missing)} papers missing from it, {len(extra)} vectors without a paper)")
        return index, None

    @_db_errors
    def all_rowids(self) -> np.ndarray:
        """Every stored row id, ascending."""
        rows = self._db.execute("SELECT rowid FROM papers ORDER BY rowid").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def save_vector_index(self, index: faiss.Index, generation: int) -> None:
        """Persist `index` as the file for `generation`, record its checksum, drop older files.

        Only a process holding the write lock may call this.
        """
        data = faiss.serialize_index(index).tobytes()
        path = faiss_file(self.directory, generation)
        atomic_write_bytes(path, data)
        with self._transaction_lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._meta_set_many({"vectors_digest": f"{generation} {hashlib.sha256(data).hexdigest()}"})
        for old in self.directory.glob("vectors-*.faiss"):
            if old.name != path.name:
                old.unlink(missing_ok=True)

    def leftover_files(self) -> list[Path]:
        """Files an interrupted write left behind: temp files and FAISS files of other generations."""
        current = faiss_file(self.directory, self.generation).name
        return sorted(p for p in self.directory.iterdir() if p.is_file() and (
            (p.name.startswith(".") and p.name.endswith(".tmp"))
            or (p.name.startswith("vectors-") and p.name.endswith(".faiss") and p.name != current)))

    def remove_temp_files(self) -> None:
        """Delete temp files of writes that died mid-way. Only call while holding the write lock."""
        for path in self.leftover_files():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)


class WriteLock:
    """An exclusive lock on the index directory for the length of a write session."""

    def __init__(self, directory: Path, wait: bool = True):
        self.path = Path(directory) / LOCK_FILE
        self.wait = wait
        self._handle = None

    def __enter__(self) -> WriteLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a")
        flags = fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(self._handle, flags)
        except BlockingIOError as exc:
            self._handle.close()
            raise IndexBusy(f"Another process is writing to {self.path.parent}; try again when it is done.") from exc
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
