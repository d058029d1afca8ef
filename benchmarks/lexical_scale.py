"""Lexical (BM25) index at scale: build, per-write commits, ranked OR query latency, filters.

    python benchmarks/lexical_scale.py --papers 100000 --dir /tmp/lexical-bench

Reads real arXiv abstracts (../shared/data/arxiv-daily-2025-2026/papers.jsonl.gz), stores them in
a real index directory with tiny random vectors (no model: only the lexical side is measured),
writing in batches of 256 exactly as IndexWriter does (one SQLite transaction, then one tantivy
commit), then times LexicalSearcher.top for held-out titles and short keyword queries. Prints one
JSON object; latencies in milliseconds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.build import WRITE_BATCH  # noqa: E402
from indexer.ingest import Parsed, read_papers  # noqa: E402
from indexer.lexical import LexicalWriter  # noqa: E402
from indexer.store import IndexStore, Upsert, layout  # noqa: E402
from models.embedder import ModelInfo  # noqa: E402
from models.query import Filters  # noqa: E402
from search.lexical import LexicalSearcher, query_terms  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "arxiv-daily-2025-2026" / "papers.jsonl.gz"
KEYWORD_QUERIES = ["lightweight OCR", "PP-OCRv3 text recognition", "diffusion models for video generation",
                   "dark matter halo", "large language model reasoning benchmark", "protein folding",
                   "graph neural networks molecules", "retrieval augmented generation", "exoplanet atmosphere",
                   "\"vision transformer\" AND (segmentation OR -detection"]
_DIMENSION = 8  # vectors are stored but never searched here


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 2), "p95": round(ordered[int(len(ordered) * 0.95)], 2),
            "mean": round(statistics.mean(ordered), 2)}


def build(directory: Path, papers: list) -> dict:
    """Write every paper through the store and the lexical writer, one commit per batch."""
    store = IndexStore.create(directory, ModelInfo("bench-random", "bench", _DIMENSION))
    writer = LexicalWriter(directory, store).open()
    rng = np.random.default_rng(0)
    commit_ms, started = [], time.perf_counter()
    for start in range(0, len(papers), WRITE_BATCH):
        batch = papers[start:start + WRITE_BATCH]
        vectors = rng.standard_normal((len(batch), _DIMENSION)).astype(np.float32)
        pairs = enumerate(zip(batch, vectors, strict=True))
        result = store.write([Upsert(paper, f"h{start + i}", vector) for i, (paper, vector) in pairs])
        t = time.perf_counter()
        writer.apply(result)
        writer.commit()
        commit_ms.append((time.perf_counter() - t) * 1000)
    writer.close()
    total = time.perf_counter() - started
    t = time.perf_counter()
    rebuilt = LexicalWriter(directory, store)
    rebuilt.open().rebuild()
    rebuilt.close()
    rebuild = time.perf_counter() - t
    store.close()
    return {"write_seconds": round(total, 1), "batches": len(commit_ms),
            "lexical_apply_commit_ms": percentiles(commit_ms), "rebuild_seconds": round(rebuild, 1)}


def time_queries(searcher: LexicalSearcher, queries: list[str], k: int, allowed=None) -> dict:
    spent = []
    for text in queries:
        t = time.perf_counter()
        searcher.top(query_terms(text), k, allowed)
        spent.append((time.perf_counter() - t) * 1000)
    return percentiles(spent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, required=True, help="an empty or absent folder")
    parser.add_argument("--queries", type=int, default=300, help="held-out titles used as queries")
    args = parser.parse_args()
    if layout.db_file(args.dir).exists():
        parser.error(f"{args.dir} already holds an index; pass an empty folder")
    records = (item.paper for item in read_papers(DATA) if isinstance(item, Parsed))
    papers = list(itertools.islice(records, args.papers + args.queries))
    corpus, held_out = papers[:args.papers], papers[args.papers:]
    out = {"papers": len(corpus), **build(args.dir, corpus)}
    store = IndexStore.open(args.dir)
    searcher = LexicalSearcher(store)
    titles = [p.title for p in held_out]
    searcher.top(query_terms("warm up"), 10)
    out["title_queries"] = {"count": len(titles), "top10": time_queries(searcher, titles, 10),
                            "top100": time_queries(searcher, titles, 100)}
    keywords = KEYWORD_QUERIES * 10
    out["keyword_queries"] = {"count": len(keywords), "top10": time_queries(searcher, keywords, 10),
                              "top100": time_queries(searcher, keywords, 100)}
    for name, filters in (("year_2025", Filters(year_to=2025)), ("category_cs.RO", Filters(category="cs.RO"))):
        allowed = store.filter_rowids(filters)
        out[f"filtered_{name}"] = {"allowed": len(allowed), "top10": time_queries(searcher, titles, 10, allowed)}
    store.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
