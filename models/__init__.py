"""The vocabulary shared by every layer: records, queries, settings, errors and the encoders."""

import os

from models.exports import lazy_exports

# FAISS (and torch) keep OpenMP pools whose idle threads busy-wait by default; on a few cores
# they steal time from the requests being served. The policy is read once, when the first of
# those libraries loads, so it is set here: `indexer` and `search` import this package first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_PUBLIC = {
    "Paper": "models.paper", "Hit": "models.paper", "embed_text": "models.paper", "content_hash": "models.paper",
    "Filters": "models.query", "MODES": "models.query", "DEFAULT_MODE": "models.query",
    "Settings": "models.config", "DEFAULT_MODEL": "models.config",
    "Embedder": "models.embedder", "ModelInfo": "models.embedder",
    "PaperSearchError": "models.errors", "InvalidInput": "models.errors", "InvalidQuery": "models.errors",
    "PaperNotFound": "models.errors", "IndexNotBuilt": "models.errors", "IndexCorrupt": "models.errors",
    "IndexBusy": "models.errors", "IndexModelMismatch": "models.errors", "ModelLoadError": "models.errors",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
