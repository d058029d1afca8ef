"""The index directory's layout: every file and folder name, and the one way to write a file.

    INDEX_DIR/
      papers.sqlite         records, content hashes and embeddings (the source of truth), WAL mode
      papers.sqlite-wal     SQLite's write-ahead log and its shared-memory index (-shm), beside it
      vectors-<gen>.faiss   the FAISS index for write generation <gen> (derived, rebuildable)
      lexical/              the BM25 (tantivy) index (derived, rebuildable; indexer/lexical.py owns it)
        papersearch-state.json   the store generation the lexical index reflects
      manifest.json         format version, model, dimension, counts (derived, for people and tools)
      write.lock            held by the one process writing
      onnx/<fingerprint>/   ONNX export of the index's model, for torch-free queries (derived,
                            re-exportable; its inside belongs to models/onnx_encoder.py)
      .<name>.<random>.tmp  a file being written; an interrupted write may leave one behind

Nothing outside `indexer/store/` spells these names: ask the functions here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DB_FILE = "papers.sqlite"
DB_SIDECAR_SUFFIXES = ("-wal", "-shm")  # SQLite's WAL-mode companions of DB_FILE
MANIFEST_FILE = "manifest.json"
LOCK_FILE = "write.lock"
LEXICAL_DIR = "lexical"
LEXICAL_STATE_FILE = "papersearch-state.json"  # inside LEXICAL_DIR, beside tantivy's own files
ONNX_DIR = "onnx"
_VECTOR_PREFIX, _VECTOR_SUFFIX = "vectors-", ".faiss"
_TEMP_PREFIX, _TEMP_SUFFIX = ".", ".tmp"


def db_file(directory: str | Path) -> Path:
    """The SQLite database: records, content hashes and embeddings."""
    return Path(directory) / DB_FILE


def db_sidecar_files(directory: str | Path) -> list[Path]:
    """SQLite's write-ahead log and shared-memory files beside the database (present while open)."""
    return [Path(directory) / (DB_FILE + suffix) for suffix in DB_SIDECAR_SUFFIXES]


def manifest_file(directory: str | Path) -> Path:
    """The JSON summary of the index for people and tools."""
    return Path(directory) / MANIFEST_FILE


def lock_file(directory: str | Path) -> Path:
    """The file the one writing process holds a lock on."""
    return Path(directory) / LOCK_FILE


def vector_file(directory: str | Path, generation: int) -> Path:
    """The FAISS file for one write generation."""
    return Path(directory) / f"{_VECTOR_PREFIX}{generation}{_VECTOR_SUFFIX}"


def is_vector_file(path: Path) -> bool:
    """Whether `path` is named like a FAISS file of some generation."""
    return path.name.startswith(_VECTOR_PREFIX) and path.name.endswith(_VECTOR_SUFFIX)


def vector_files(directory: str | Path) -> list[Path]:
    """The FAISS files present in `directory`, of any generation, sorted by name."""
    return sorted(Path(directory).glob(f"{_VECTOR_PREFIX}*{_VECTOR_SUFFIX}"))


def lexical_path(directory: str | Path) -> Path:
    """The folder of the lexical (BM25) index; indexer/lexical.py owns what is inside."""
    return Path(directory) / LEXICAL_DIR


def lexical_state_file(directory: str | Path) -> Path:
    """The sidecar recording which store generation the lexical index reflects."""
    return lexical_path(directory) / LEXICAL_STATE_FILE


def onnx_export_dir(directory: str | Path, fingerprint: str) -> Path:
    """The folder holding the ONNX export of the model with this fingerprint."""
    return Path(directory) / ONNX_DIR / fingerprint


def is_writable(directory: str | Path) -> bool:
    """Whether this process may change the index in `directory`: create files in it (the lock, a
    new FAISS file) and write its database. False on a read-only mount even for root (EROFS)."""
    directory = Path(directory)
    database = db_file(directory)
    return os.access(directory, os.W_OK) and (not database.exists() or os.access(database, os.W_OK))


def temp_file_for(path: Path) -> tuple[int, str]:
    """A new temp file (descriptor, path) beside `path`, named so `is_temp_file` knows it."""
    return tempfile.mkstemp(dir=path.parent, prefix=f"{_TEMP_PREFIX}{path.name}.", suffix=_TEMP_SUFFIX)


def is_temp_file(path: Path) -> bool:
    """Whether `path` is a temp file of a write (left behind if the write was interrupted)."""
    return path.name.startswith(_TEMP_PREFIX) and path.name.endswith(_TEMP_SUFFIX)


def complete_layout(directory: str | Path, generation: int = 1, fingerprint: str = "<fingerprint>") -> dict[str, Path]:
    """Every part an index directory can hold, by role: for documentation and tests."""
    wal, shm = db_sidecar_files(directory)
    return {
        "database": db_file(directory),
        "database write-ahead log": wal,
        "database shared memory": shm,
        "vectors": vector_file(directory, generation),
        "lexical index": lexical_path(directory),
        "lexical state": lexical_state_file(directory),
        "manifest": manifest_file(directory),
        "write lock": lock_file(directory),
        "onnx export": onnx_export_dir(directory, fingerprint),
    }


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so readers see either the old or the new content, never a part."""
    fd, tmp = temp_file_for(path)
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
