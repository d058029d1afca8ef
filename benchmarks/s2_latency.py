"""Semantic Scholar API latency: each `semanticscholar` client call against a live server, p50/p90.

    python -m benchmarks.s2_latency --dir /tmp/s2-bench [--count 30]

Builds (once) the 24-paper sample index plus two papers with arXiv ids and DOIs in --dir, starts
`papersearch serve` on a free port, then times each client method the way a tool calls it
(one client, sequential calls, HTTP over loopback included). Prints one JSON line per call, in
milliseconds. The client builds a new httpx.AsyncClient (SSL context included) per call, as it
does against S2 itself, which dominates on a busy machine; so the same requests are also timed
over one keep-alive connection ("raw HTTP"), which is what the server itself adds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.http_latency import start_server, summarize  # noqa: E402

SAMPLE = ROOT / "indexer" / "sample" / "papers.jsonl"
WITH_IDS = [
    {"id": "1706.03762", "title": "Attention Is All You Need", "doi": "10.48550/arXiv.1706.03762",
     "authors": ["Ashish Vaswani", "Noam Shazeer"], "year": 2017, "categories": ["cs.CL"],
     "abstract": "We propose the Transformer, a network architecture based solely on attention mechanisms."},
    {"id": "cvpr-2016-90", "title": "Deep Residual Learning for Image Recognition", "doi": "10.1109/CVPR.2016.90",
     "authors": ["Kaiming He"], "year": 2016, "categories": ["cs.CV"],
     "abstract": "A residual learning framework eases the training of networks much deeper than before."},
]
FIELDS = ["title", "year", "authors", "externalIds", "abstract"]


def build(directory: Path) -> None:
    from indexer.store import layout

    if layout.manifest_file(directory).is_file():  # built by an earlier run
        return
    from indexer.build import add_papers, index_file
    from indexer.records import to_paper
    from models.config import Settings
    from models.embedder import Embedder

    embedder = Embedder()
    index_file(Settings(index_dir=directory), SAMPLE, embedder=embedder)
    add_papers(Settings(index_dir=directory), [to_paper(r) for r in WITH_IDS], embedder=embedder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="index directory (built on first use)")
    parser.add_argument("--count", type=int, default=30, help="timed calls per method")
    args = parser.parse_args()
    build(args.dir)
    from semanticscholar import SemanticScholar

    process, url = start_server(args.dir)
    try:
        s2 = SemanticScholar(api_url=url.rstrip("/"), timeout=60, retry=False)

        def next_page():
            results = s2.search_paper("lightweight OCR", limit=5, fields=FIELDS)
            results.next_page()

        calls = {
            "search_paper (first page, limit 10)": lambda: s2.search_paper("protein structure", limit=10,
                                                                          fields=FIELDS),
            "search_paper + next_page (limit 5)": next_page,
            "get_paper (plain id)": lambda: s2.get_paper("seed-03", fields=FIELDS),
            "get_paper (DOI:)": lambda: s2.get_paper("DOI:10.1109/CVPR.2016.90", fields=FIELDS),
            "get_paper (ARXIV:)": lambda: s2.get_paper("ARXIV:1706.03762v5", fields=FIELDS),
            "get_paper (all published fields)": lambda: s2.get_paper("seed-03"),
            "get_papers (batch of 5)": lambda: s2.get_papers(
                ["seed-01", "seed-02", "DOI:10.1109/CVPR.2016.90", "ARXIV:1706.03762", "seed-09"], fields=FIELDS),
            "get_recommended_papers (limit 10)": lambda: s2.get_recommended_papers("seed-03", limit=10,
                                                                                 fields=FIELDS),
            "get_recommended_papers_from_lists (2+, 1-, limit 10)": lambda: s2.get_recommended_papers_from_lists(
                ["seed-03", "ARXIV:1706.03762"], ["seed-09"], limit=10, fields=FIELDS),
        }
        fields = ",".join(FIELDS)
        raw = httpx.Client(base_url=url.rstrip("/"), timeout=60)
        requests = {
            "raw HTTP GET /graph/v1/paper/search (limit 10)": lambda: raw.get(
                "/graph/v1/paper/search", params={"query": "protein structure", "limit": 10, "fields": fields}),
            "raw HTTP GET /graph/v1/paper/ARXIV:1706.03762v5": lambda: raw.get(
                "/graph/v1/paper/ARXIV:1706.03762v5", params={"fields": fields}),
            "raw HTTP POST /graph/v1/paper/batch (5 ids)": lambda: raw.post(
                "/graph/v1/paper/batch", params={"fields": fields},
                json={"ids": ["seed-01", "seed-02", "DOI:10.1109/CVPR.2016.90", "ARXIV:1706.03762", "seed-09"]}),
            "raw HTTP GET /recommendations/v1/papers/forpaper/seed-03 (limit 10)": lambda: raw.get(
                "/recommendations/v1/papers/forpaper/seed-03", params={"limit": 10, "fields": fields}),
            "raw HTTP POST /recommendations/v1/papers (limit 10)": lambda: raw.post(
                "/recommendations/v1/papers", params={"limit": 10, "fields": fields},
                json={"positivePaperIds": ["seed-03", "ARXIV:1706.03762"], "negativePaperIds": ["seed-09"]}),
        }
        for name, call in {**calls, **requests}.items():
            call()  # warm: the first call of a kind pays one-time costs
            timings = []
            for _ in range(args.count):
                started = time.perf_counter()
                call()
                timings.append((time.perf_counter() - started) * 1000)
            print(json.dumps({"call": name, "calls": args.count, **summarize(timings)}), flush=True)
        raw.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
