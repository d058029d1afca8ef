"""The FAISS file: a checksummed snapshot of the vectors, caught up from SQLite on open.

A write of a few papers must not cost a rewrite of the whole vector file (198 MB at 109k papers),
so the file is a snapshot that may lag behind SQLite, the source of truth: it is saved for some
generation S, with its SHA-256 in `meta.vectors_digest` ("S sha"), and a reader of a later
generation loads it and applies the difference (rows added since S are read from SQLite, rows
gone since S are removed; row ids are never reused, so the difference is exact). A new snapshot is
saved once enough rows changed (`snapshot_due`), which keeps the catch-up small and the cost of a
snapshot spread over many writes. A file whose checksum differs from the record is never served;
without a record (an index from before checksums), only a file whose ids equal SQLite's is used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from indexer import vectors
from indexer.store import layout
from indexer.vectors.base import FetchVectors, VectorIndex
from models.hashing import file_sha256


def digest_record(generation: int, data: bytes) -> str:
    """What `meta.vectors_digest` holds for a file saved for `generation`: "<gen> <sha256>"."""
    return f"{generation} {hashlib.sha256(data).hexdigest()}"


# A new snapshot is due once this many rows changed since the last one (added plus removed), or
# this share of the index if larger: catching up costs about as much as those rows' SQLite reads.
SNAPSHOT_MIN_CHANGES = 2_000
SNAPSHOT_CHANGE_SHARE = 0.05


def snapshot_due(changes: int, papers: int) -> bool:
    """Whether `changes` rows changed since the snapshot are enough to save a new one."""
    return changes > max(SNAPSHOT_MIN_CHANGES, SNAPSHOT_CHANGE_SHARE * papers)


def kept_for(index_type: str, count: int) -> bool:
    """Whether an index of `index_type` ("auto" or a kind) holding `count` papers keeps a vector file:
    not when the kind is only the stored vectors (flat), built from SQLite on every open instead."""
    return vectors.kind_for(vectors.resolve_index_type(index_type, count)).persisted


def forget(db, directory: Path) -> None:
    """Drop the vector file's record (inside the caller's write transaction) and every FAISS file.
    A crash between the two leaves files without a record: leftovers the next writer removes."""
    db.execute("DELETE FROM meta WHERE key IN ('vectors_digest', 'vectors_changes')")
    for path in layout.vector_files(directory):
        path.unlink(missing_ok=True)


def snapshot_generation(recorded: str | None) -> int | None:
    """The generation a digest record names, or None when there is no well-formed record."""
    parts = (recorded or "").split()
    return int(parts[0]) if len(parts) == 2 and parts[0].isdigit() else None


def catch_up(index: VectorIndex, rowids: np.ndarray, fetch: FetchVectors) -> VectorIndex | None:
    """`index` brought to the stored `rowids` (ascending): rows gone removed, new rows added from
    `fetch`. None when it cannot be (rows vanished meanwhile, an untrained structure)."""
    ids = np.sort(index.live_ids())
    removed, added = np.setdiff1d(ids, rowids, assume_unique=True), np.setdiff1d(rowids, ids, assume_unique=True)
    if len(removed) == 0 and len(added) == 0:
        return index
    found, matrix = fetch(added) if len(added) else (added, np.zeros((0, index.dimension), np.float32))
    if len(found) != len(added) or index.needs_training:
        return None
    # Not apply_changes: its "rebuild instead" advice (tombstone share, IVF-PQ shape) is about a
    # structure's size and speed, which the next snapshot restores; the results here are exact.
    if len(removed) and not index.remove(removed):
        return None
    if len(found):
        index.add(found, matrix)
    return index


def read_verified(directory: Path, generation: int, recorded: str | None, dimension: int,
                  stored_rowids: Callable[[], np.ndarray],
                  fetch: FetchVectors | None = None) -> tuple[VectorIndex | None, str | None]:
    """(index, None) when the snapshot is the one saved and agrees with SQLite, else (None, what is wrong).

    `recorded` is the digest record; `stored_rowids()` gives the rows it must hold, ascending;
    `fetch` reads stored vectors by rowid, to catch a snapshot of an older generation up.
    Without `fetch`, only a snapshot of `generation` itself is accepted.
    """
    saved_for, read_for = snapshot_generation(recorded), generation
    if saved_for is not None and saved_for < generation and fetch is not None:
        generation = saved_for  # the snapshot to read; caught up below
    path = layout.vector_file(directory, generation)
    if not path.is_file():
        others = [p.name for p in layout.vector_files(directory)]
        found = f" (found only {', '.join(others)})" if others else ""
        return None, f"{path.name} is missing{found}"
    parts = (recorded or "").split()
    try:
        # The checksum is compared before FAISS parses the file: a damaged header could make it
        # allocate or read garbage.
        if len(parts) == 2 and parts[0] == str(generation) and file_sha256(path) != parts[1]:
            return None, f"{path.name} is not the file saved for generation {generation} (checksum differs)"
        index = vectors.read_index(path)
    except (OSError, RuntimeError, MemoryError) as exc:
        return None, f"{path.name} cannot be read ({str(exc).splitlines()[0][-120:]})"
    if index is None or index.dimension != dimension:
        return None, f"{path.name} is not a {dimension}-dimensional PaperSearch vector index"
    index.set_search_depth()
    ids = np.sort(index.live_ids())
    rowids = stored_rowids()
    if saved_for == generation < read_for:  # an older snapshot: apply what was written since
        caught_up = catch_up(index, rowids, fetch)
        if caught_up is None:
            return None, f"{path.name} cannot be caught up with {layout.DB_FILE}"
        return caught_up, None
    if not np.array_equal(ids, rowids):
        missing, extra = np.setdiff1d(rowids, ids), np.setdiff1d(ids, rowids)
        return None, (f"{path.name} holds {len(ids)} vectors for {len(rowids)} stored papers "
                      f"({len(missing)} papers missing from it, {len(extra)} vectors without a paper)")
    return index, None


def write(directory: Path, index: VectorIndex, generation: int) -> str:
    """Write the file for `generation` atomically; returns its digest record (to store in meta)."""
    data = index.serialize()
    layout.atomic_write_bytes(layout.vector_file(directory, generation), data)
    return digest_record(generation, data)


def remove_other_generations(directory: Path, generation: int) -> None:
    """Drop FAISS files of every generation but `generation` (the snapshot just saved)."""
    keep = layout.vector_file(directory, generation).name
    for old in layout.vector_files(directory):
        if old.name != keep:
            old.unlink(missing_ok=True)


def leftover_files(directory: Path, generation: int) -> list[Path]:
    """Files an interrupted write left behind: temp files and FAISS files but the snapshot's (`generation`)."""
    current = layout.vector_file(directory, generation).name
    return sorted(p for p in directory.iterdir() if p.is_file() and (
        layout.is_temp_file(p) or (layout.is_vector_file(p) and p.name != current)))
