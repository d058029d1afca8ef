"""HTTP search latency over loopback: one sequential client, real queries, p50/p99.

    python benchmarks/http_latency.py --index /path/to/scifact-index \
        --queries ../shared/data/scifact/queries.jsonl.gz --count 200

Starts `papersearch serve` on a free port (or uses --url), warms it up, then sends GET /search
requests one after another over one keep-alive connection and prints one JSON line: client-side
latency (what a caller waits, HTTP included) and the server's own `took_ms`, in milliseconds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def read_queries(path: Path, count: int) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle if line.strip()]
    return texts[:count]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def start_server(index_dir: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--index", str(index_dir), "--port", "0",
                                "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "PaperSearch is running at " in line:
            return process, line.split("running at ", 1)[1].split()[0]
    raise SystemExit(f"the server exited with {process.wait()} before printing its URL")


def summarize(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 2), "p90": round(percentile(values, 90), 2),
            "p99": round(percentile(values, 99), 2), "mean": round(statistics.fmean(values), 2),
            "max": round(max(values), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="index directory to serve (a copy: the server may write to it)")
    parser.add_argument("--url", help="use a running server instead of starting one")
    parser.add_argument("--queries", type=Path, required=True, help="BEIR queries.jsonl(.gz)")
    parser.add_argument("--count", type=int, default=200, help="queries to time (default 200)")
    parser.add_argument("--limit", type=int, default=10, help="results per query (default 10)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed queries first (default 10)")
    args = parser.parse_args()
    if not args.url and not args.index:
        parser.error("give --index (to start a server) or --url")
    queries = read_queries(args.queries, args.count + args.warmup)
    process, url = (None, args.url) if args.url else start_server(args.index)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            papers = client.get("/health").json()["papers"]
            for text in queries[:args.warmup]:
                client.get("/search", params={"q": text, "limit": args.limit}).raise_for_status()
            wall, server = [], []
            started = time.perf_counter()
            for text in queries[args.warmup:]:
                t0 = time.perf_counter()
                response = client.get("/search", params={"q": text, "limit": args.limit})
                wall.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
                server.append(response.json()["took_ms"])
            elapsed = time.perf_counter() - started
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    print(json.dumps({"papers": papers, "queries": len(wall), "limit": args.limit,
                      "client_ms": summarize(wall), "server_took_ms": summarize(server),
                      "queries_per_second": round(len(wall) / elapsed, 1), "cpus": os.cpu_count(),
                      "load_average_1m": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
