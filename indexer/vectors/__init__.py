"""Vector index kinds: flat, HNSW, IVF-PQ (and any module added here), behind one interface.

`base.VectorIndex` is the interface; `registry` lists the kinds and picks one. FAISS ids are the
SQLite row ids; every index is rebuildable from the stored embeddings, so nothing here needs the
model. Importing this package does not import FAISS (the CLI reads `INDEX_TYPES` for `--help`).
"""

from indexer.vectors.registry import (
    AUTO,
    AUTO_HNSW_THRESHOLD,
    AUTO_IVFPQ_THRESHOLD,
    INDEX_TYPES,
    build_index,
    kind_for,
    kind_names,
    kind_of,
    new_index,
    read_index,
    resolve_index_type,
    set_threads,
)

__all__ = [
    "AUTO", "AUTO_HNSW_THRESHOLD", "AUTO_IVFPQ_THRESHOLD", "INDEX_TYPES", "build_index", "kind_for",
    "kind_names", "kind_of", "new_index", "read_index", "resolve_index_type", "set_threads",
]
