"""The on-disk index: the only package that knows the directory layout.

    layout.py        every file and folder name of an index directory, and atomic writes
    schema.py        SQLite schema steps, connecting, readability checks, damage -> IndexCorrupt
    index_store.py   IndexStore: records, embeddings and metadata (reads), the FAISS file
    writes.py        upserts and deletes (the write half of IndexStore)
    rows.py          rows back into Paper, and the one paging helper
    filter_sql.py    Filters as an SQL WHERE clause
    vector_file.py   the FAISS file of a generation: verified load, save with its digest
    lock.py          WriteLock, one writing process per directory; the read-only refusal
    migrate.py       index format versions: refuse newer, upgrade older in place (the table of steps)
"""

from indexer.store.index_store import IndexStore
from indexer.store.layout import atomic_write_bytes, lexical_path, lexical_state_file, onnx_export_dir
from indexer.store.lock import WriteLock
from indexer.store.migrate import FORMAT_VERSION
from indexer.store.writes import Upsert, WriteResult

__all__ = [
    "FORMAT_VERSION", "IndexStore", "Upsert", "WriteLock", "WriteResult", "atomic_write_bytes",
    "lexical_path", "lexical_state_file", "onnx_export_dir",
]
