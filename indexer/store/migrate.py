"""Index format versions: which ones this release opens, and the steps that upgrade an older one.

The format is recorded in SQLite (`meta.format_version`, the source of truth) and repeated in
manifest.json for tools. On every open:

- a format newer than FORMAT_VERSION (in either place) is refused with one line: upgrade PaperSearch;
- an older one is upgraded in place by MIGRATIONS, one step per version, under the write lock,
  before anything reads it (a read-only index that needs a step is refused instead: nothing there
  may be written);
- the current one opens as is.

A new index is created at format 1 and brought up to date by the same steps, so a fresh index and
an upgraded one can never differ.

To change the format (e.g. how vectors are stored): bump FORMAT_VERSION and add the step from the
old number to MIGRATIONS. A step gets the read-write connection inside the transaction that also
records the new version, so a crash in the middle leaves the old format, and the step runs again
on the next open; files it writes must therefore be written atomically, under new names, and be
safe to write twice. Derived files it makes stale (FAISS, BM25) need no step: readers rebuild them
in memory and `papersearch check --repair` on disk. tests/test_store_format.py opens the committed
format-1 fixture with the current code; keep it passing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from indexer.store import layout
from models.errors import IndexCorrupt

FIRST_FORMAT = 1  # what `IndexStore.create` records before the steps run; also an index without the key
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Migration:
    """One step from format N to N + 1: what it does (for the log) and the function doing it."""

    description: str
    apply: Callable[[sqlite3.Connection, Path], None]  # (read-write connection in a transaction, directory)


def _compact_columns(db: sqlite3.Connection, directory: Path) -> None:
    """Rows stored by format 1 (float32 vectors, plain abstracts) stay as they are: they remain
    readable (indexer/store/codec.py tells the forms apart) and take the compact form when next
    written. The version matters for older releases, which would misread a float16 vector.

    Format 2 also keeps no file for a flat index (indexer/vectors/flat.py): format 1's is dropped.
    """
    from indexer.store import vector_file  # FAISS, only for an index that needs this step

    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    count = db.execute("SELECT count(*) FROM papers").fetchone()[0]
    if not vector_file.kept_for(meta.get("index_type") or "auto", count):
        vector_file.forget(db, directory)  # derived: if this step rolls back, opens rebuild it anyway


# format N -> the step to N + 1.
MIGRATIONS: dict[int, Migration] = {
    1: Migration("embeddings are stored as float16 and abstracts zstd-compressed from now on", _compact_columns),
}


def manifest_format(directory: Path) -> int | None:
    """The format manifest.json names, or None when it is missing or unreadable (`check` reports that)."""
    try:
        found = json.loads(layout.manifest_file(directory).read_text(encoding="utf-8")).get("format_version")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, int) else None


def recorded_format(meta: dict[str, str]) -> int:
    """The format SQLite records (an index written before the key existed is format 1)."""
    try:
        return int(meta.get("format_version") or FIRST_FORMAT)
    except ValueError:
        return FORMAT_VERSION + 1  # not a number this release wrote: treat as unknown, i.e. newer


def refuse_newer(meta: dict[str, str], directory: Path) -> int:
    """The index's format; IndexCorrupt (one line) when it, or the manifest's, is newer than this release reads."""
    found = recorded_format(meta)
    in_manifest = manifest_format(directory)
    if max(found, in_manifest or 0) > FORMAT_VERSION:
        where = layout.MANIFEST_FILE if (in_manifest or 0) > found else layout.DB_FILE
        newest = max(found, in_manifest or 0)
        raise IndexCorrupt(f"{directory} uses index format {newest} ({where}); this PaperSearch reads formats "
                           f"up to {FORMAT_VERSION}. Upgrade PaperSearch to open it; nothing was changed.")
    return found


def steps_from(found: int) -> list[Migration]:
    """The steps that bring format `found` up to FORMAT_VERSION; IndexCorrupt when one is missing."""
    steps = []
    for version in range(found, FORMAT_VERSION):
        if version not in MIGRATIONS:
            raise IndexCorrupt(f"No upgrade from index format {version} to {version + 1} exists in this "
                               "PaperSearch; re-index your input files into a new directory.")
        steps.append(MIGRATIONS[version])
    return steps


def upgrade(db: sqlite3.Connection, directory: Path) -> list[str]:
    """Run the steps this index lacks, each in its own transaction with its new version number.

    The caller holds the write lock and `db` is read-write. Returns what was done (empty when
    the index was current). Reads the version inside the transaction, so a step another process
    finished meanwhile is not run twice.
    """
    done: list[str] = []
    found = recorded_format(dict(db.execute("SELECT key, value FROM meta").fetchall()))
    if found >= FORMAT_VERSION:
        return done  # the usual case: no write at all
    steps_from(found)  # the whole chain exists before the first step runs
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            found = recorded_format(dict(db.execute("SELECT key, value FROM meta").fetchall()))
            if found >= FORMAT_VERSION:
                db.execute("COMMIT")
                return done
            step = steps_from(found)[0]
            step.apply(db, directory)
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('format_version', ?)", (str(found + 1),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        done.append(f"upgraded the index format from {found} to {found + 1}: {step.description}")
