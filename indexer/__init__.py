"""The write side: read input files, embed papers, and store them in an index directory."""

import models  # noqa: F401,E402  (sets OpenMP's wait policy before FAISS loads)
from models.exports import lazy_exports

_PUBLIC = {
    "IndexWriter": "indexer.build", "IndexReport": "indexer.build", "index_file": "indexer.build",
    "delete_papers": "indexer.build", "add_papers": "indexer.build",
    "IndexStore": "indexer.store",
    "check_index": "indexer.check", "repair_index": "indexer.check", "CheckReport": "indexer.check",
    "read_papers": "indexer.ingest", "Rejection": "indexer.ingest",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
