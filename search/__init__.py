"""The read side: turn a query, a paper or a set of papers into ranked hits. Never writes."""

import models  # noqa: F401,E402  (sets OpenMP's wait policy before FAISS loads)
from models.exports import lazy_exports

_PUBLIC = {
    "SearchEngine": "search.engine", "ShardRouter": "search.shards",
    "ndcg_at_k": "search.metrics", "recall_at_k": "search.metrics", "mrr_at_k": "search.metrics",
    "score_run": "search.metrics",
}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
