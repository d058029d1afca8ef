"""Which vector index kinds exist, which one "auto" picks, and how to make or recognise one.

A kind is a module in this package (its file name is its name) whose `KIND` is a VectorIndex
subclass. Adding a kind is adding one module: the names below, the CLI's `--index-type` choices
and loading saved files all come from here. Listing the names imports nothing (FAISS included),
so `papersearch --help` stays quick.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

AUTO = "auto"
# Below this many papers exact search is fast enough (about 1 ms per 10k vectors on 2 cores)
# and costs no recall; above it "auto" switches to HNSW.
AUTO_HNSW_THRESHOLD = 50_000
# Above this many papers "auto" switches to IVF-PQ: HNSW keeps every full vector plus its graph in
# RAM (about 1.8 KB a paper at 384 dimensions), IVF-PQ about 56 bytes (see docs/scaling.md).
AUTO_IVFPQ_THRESHOLD = 1_000_000
_NOT_KINDS = {"base", "registry"}


def kind_names() -> tuple[str, ...]:
    """The concrete kinds, sorted: every module of this package except the shared ones."""
    found = pkgutil.iter_modules([str(Path(__file__).parent)])
    return tuple(sorted(m.name for m in found if not m.name.startswith("_") and m.name not in _NOT_KINDS))


INDEX_TYPES = (AUTO, *kind_names())


def resolve_index_type(requested: str, count: int) -> str:
    """The concrete kind for `requested` ("auto" picks by size)."""
    if requested not in INDEX_TYPES:
        raise ValueError(f"unknown index type {requested!r}; choose one of {', '.join(INDEX_TYPES)}")
    if requested == AUTO:
        if count >= AUTO_IVFPQ_THRESHOLD:
            return "ivfpq"
        return "hnsw" if count >= AUTO_HNSW_THRESHOLD else "flat"
    return requested


def kind_for(name: str):
    """The VectorIndex class of a concrete kind ("auto" is not one: resolve it first)."""
    if name not in kind_names():
        raise ValueError(f"unknown index structure {name!r}")
    return importlib.import_module(f"indexer.vectors.{name}").KIND


def new_index(name: str, dimension: int, count: int = 0):
    """An empty index of kind `name` sized for `count` vectors (train it if `needs_training`)."""
    return kind_for(name).create(dimension, count)


def build_index(name: str, dimension: int, rowids, matrix):
    """A filled index of kind `name` over (rowid, vector) pairs."""
    index = new_index(name, dimension, len(rowids))
    if index.needs_training and len(rowids):
        index.train(matrix[:: max(1, len(rowids) // index.training_size(len(rowids)))])
    if len(rowids):
        index.add(rowids, matrix)
    return index


def kind_of(index):
    """The FAISS structure `index` (read from a file) wrapped in its kind; None if no kind made it."""
    for name in kind_names():
        kind = kind_for(name)
        if kind.matches(index):
            return kind(index)
    return None


def read_index(path: str | Path):
    """The index saved in `path`, wrapped in its kind (None if it is no kind's); OSError/RuntimeError
    when FAISS cannot read it."""
    import faiss

    return kind_of(faiss.read_index(str(path)))


def set_threads(threads: int) -> int:
    """Bound FAISS's OpenMP pool to `threads` (0: one per core); returns the previous bound.

    The bound is process-wide. Builds (HNSW, IVF training) use every core they are given; a
    search of one query should get one thread (see SearchEngine.open).
    """
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads if threads > 0 else (os.cpu_count() or 1))
    return previous
