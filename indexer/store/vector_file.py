"""The FAISS file of a generation: is it the one saved for it, and saving it with its digest.

A FAISS file is used only when it provably matches SQLite: its ids must equal the stored row ids,
and its SHA-256 must equal the one recorded in `meta.vectors_digest` when it was saved for that
generation (so a file with the right name but wrong contents is never served).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from indexer import vectors
from indexer.store import layout
from indexer.vectors.base import VectorIndex
from models.hashing import file_sha256


def digest_record(generation: int, data: bytes) -> str:
    """What `meta.vectors_digest` holds for a file saved for `generation`: "<gen> <sha256>"."""
    return f"{generation} {hashlib.sha256(data).hexdigest()}"


def read_verified(directory: Path, generation: int, recorded: str | None, dimension: int,
                  stored_rowids: Callable[[], np.ndarray]) -> tuple[VectorIndex | None, str | None]:
    """(index, None) when the file for `generation` matches SQLite, else (None, what is wrong).

    `recorded` is the digest record; `stored_rowids()` gives the rows it must hold, ascending.
    """
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
    """Drop FAISS files of every generation but `generation`."""
    keep = layout.vector_file(directory, generation).name
    for old in layout.vector_files(directory):
        if old.name != keep:
            old.unlink(missing_ok=True)


def leftover_files(directory: Path, generation: int) -> list[Path]:
    """Files an interrupted write left behind: temp files and FAISS files of other generations."""
    current = layout.vector_file(directory, generation).name
    return sorted(p for p in directory.iterdir() if p.is_file() and (
        layout.is_temp_file(p) or (layout.is_vector_file(p) and p.name != current)))
