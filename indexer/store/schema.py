"""The SQLite side of an index: schema steps, connecting, readability checks, and damage.

Damage (a malformed page, a file that is not a database, a disk I/O error) becomes IndexCorrupt
with the next step to take, in `damage_as_corrupt`, which every read of the store goes through.
"database is locked" and other operational errors are not damage and pass through.
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from indexer.store import layout
from indexer.store.migrate import refuse_newer
from models.errors import IndexCorrupt, IndexNotBuilt, IndexReadOnly

# The tables of a new index (format 1), applied in order; PRAGMA user_version records how many
# have run. Changes to an existing index's format are steps in indexer/store/migrate.py instead.
MIGRATIONS = (
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
    # When each row was last written (unix seconds): what feeds call a paper's date when its
    # record has none. Rows stored before this step get the time of the upgrade.
    """
    ALTER TABLE papers ADD COLUMN indexed_at INTEGER;
    UPDATE papers SET indexed_at = CAST(strftime('%s', 'now') AS INTEGER);
    """,
)

PAGE_SIZE = 16_384

# Metadata every finished index records.
REQUIRED_META = ("model_name", "model_fingerprint", "dimension", "generation")


def connect(db_path: Path, read_only: bool = False) -> sqlite3.Connection:
    """A connection shared by threads, in autocommit (transactions are explicit).

    Read-write: WAL mode. Read-only: SQLite never writes the database (`_read_only_uri` says how
    it is opened). Either way a file that is not a database is IndexCorrupt.
    """
    try:
        if read_only:
            connection = sqlite3.connect(_read_only_uri(db_path), uri=True, timeout=30, check_same_thread=False,
                                         isolation_level=None)
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA user_version").fetchone()  # SQLite opens lazily: fail here, not later
            return connection
        connection = sqlite3.connect(db_path, timeout=30, check_same_thread=False, isolation_level=None)
        # Only takes effect on a new file (before WAL mode fixes it): a row is ~2 KB, and 16 KB
        # pages waste ~5% around rows where 4 KB pages waste ~20% (SciFact: 9.5 vs 11.0 MB).
        connection.execute(f"PRAGMA page_size={PAGE_SIZE}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
    except sqlite3.DatabaseError as exc:
        raise IndexCorrupt(f"{db_path} is not a readable SQLite database ({exc}). It holds the records and "
                           "embeddings: restore it from a backup, or re-index your input files into a new "
                           "directory.") from exc
    return connection


def _read_only_uri(db_path: Path) -> str:
    """The URI for reading `db_path` without writing anything.

    A WAL-mode database is read through its -shm index. Where the directory is writable, mode=ro
    creates that file if needed and sees every commit of a live writer. Where it is not (a
    read-only mount, no permission), SQLite cannot create it, so a database without pending WAL
    content is opened immutable: nothing can change it there either. A WAL that still holds commits
    (the directory was copied while a writer had it open) is only readable with its -shm beside it;
    without one, immutable would silently drop those commits, so that is refused.
    """
    directory = db_path.parent
    uri = f"file:{urllib.parse.quote(str(db_path.absolute()))}?mode=ro"
    if layout.is_writable(directory):
        return uri
    wal, shm = layout.db_sidecar_files(directory)
    pending = wal.is_file() and wal.stat().st_size > 0
    if not pending:
        return uri + "&immutable=1"
    if not shm.is_file():
        raise IndexReadOnly(f"{wal.name} in {directory} holds writes not yet merged into {db_path.name}, and "
                            f"without {shm.name} they cannot be read from this read-only directory. Copy the "
                            "index with 'papersearch backup' (or close its writer) before serving it read-only.")
    return uri


def migrate(db: sqlite3.Connection) -> None:
    """Run the schema steps this database has not had yet."""
    done = db.execute("PRAGMA user_version").fetchone()[0]
    for step, script in enumerate(MIGRATIONS[done:], start=done + 1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version={step}; COMMIT;")


def check_readable(db: sqlite3.Connection, directory: Path) -> int:
    """The index's format; IndexNotBuilt for an unfinished index, IndexCorrupt for a damaged or too new one."""
    db_path = layout.db_file(directory)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            # What a reader sees in the instant an index run creates the file, or after a run was
            # killed right then; also a file emptied by damage. A rerun of the index fixes all three.
            raise IndexNotBuilt(f"{db_path} holds no PaperSearch tables: the index was "
                                "never finished, or the file was emptied. Run 'papersearch index FILE "
                                f"--index {directory}' (again), or restore it from a backup.")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise IndexCorrupt(f"{db_path} is damaged ({exc}). "
                           "Rebuild the index from your input files into a new directory.") from exc
    found = refuse_newer(meta, directory)
    missing = [key for key in REQUIRED_META if meta.get(key) is None]
    if missing:
        # The tables exist but the first write never committed its metadata: a run that was
        # killed while creating the index, or one that is creating it right now.
        raise IndexNotBuilt(
            f"The index in {directory} was never finished (no {', '.join(missing)} recorded). "
            f"If an index run is starting, wait for it; otherwise run 'papersearch index FILE "
            f"--index {directory}' again."
        )
    return found


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether an SQLite error means the file is damaged (not merely busy or full)."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "malformed" in text or "disk i/o" in text or "not a database" in text
    return True


@contextlib.contextmanager
def damage_as_corrupt(directory: Path) -> Iterator[None]:
    """Turn SQLite's "the file is damaged" errors inside the block into IndexCorrupt."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        raise IndexCorrupt(
            f"{layout.db_file(directory)} is damaged ({exc}). "
            f"Run 'papersearch check --index {directory}' to see what can be restored."
        ) from exc
