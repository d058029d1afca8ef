"""Serving figures for a large index built the way a user builds one (`papersearch index`).

    papersearch index ../shared/data/arxiv-daily-2025-2026/papers.jsonl.gz --backend onnx-int8 --index DIR
    python -m benchmarks.large_index --index DIR --corpus ../shared/data/arxiv-daily-2025-2026/papers.jsonl.gz

Prints the in-process serving table, HNSW recall against exact search over the stored vectors, and
HTTP latency at concurrency 1 and 8, with titles drawn from the corpus (seed 0) as queries. The
scale section of `papersearch bench` does the same on a quicker stand-in index (40-token vectors).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from benchmarks.measure import read_jsonl
from indexer.store import IndexStore, onnx_export_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.large_index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="a built index (read only)")
    parser.add_argument("--corpus", type=Path, required=True, help="the papers.jsonl(.gz) it was built from")
    parser.add_argument("--queries", type=int, default=300, help="titles used as queries (300)")
    parser.add_argument("--threads", type=int, default=0, help="as papersearch bench --threads")
    args = parser.parse_args(argv)
    args.http_search = None
    from benchmarks import http_api, scale

    titles = [r["title"] for r in read_jsonl(args.corpus) if r.get("title")]
    titles = random.Random(0).sample(titles, min(args.queries, len(titles)))
    store = IndexStore.open(args.index)
    export_dir = onnx_export_dir(args.index, store.model.fingerprint)
    store.close()
    print(scale._serving(args, args.index, titles).render(), flush=True)
    print(scale._recall(args.index, export_dir, titles,
                        "MiniLM vectors of whole records ({} titles from the corpus as queries)").render(), flush=True)
    print(http_api._serve_and_measure(args, args.index, titles).render(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
