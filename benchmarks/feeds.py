"""Feeds section: what a feed reader's poll costs over real HTTP, fresh and answered 304.

One uvicorn server (benchmarks/http_api.py's) over --index, else the bundled 24-paper sample. Each
feed URL is asked three ways: first (a cache miss: rank the candidates, date and render them),
again without validators (the cached document), and with If-None-Match (304, no body).
"""

from __future__ import annotations

import sys
import time
from urllib.parse import urlencode

from benchmarks.http_api import _process_cpu, _wait_until_up, served
from benchmarks.measure import ROOT, load_average, time_calls
from benchmarks.tables import Table
from indexer.store import layout

# A window wide enough that the sample's papers (2021-2026) are in it, so documents have entries.
SINCE_DAYS = "36500"


def run(args) -> list[Table]:
    import httpx

    from indexer.store import IndexStore

    index_dir = args.index or sample_index(args)
    store = IndexStore.open(index_dir)
    titles = [paper.title for _, paper in store.iter_papers()][:max(args.queries // 10, 20)]
    store.close()
    queries = [" ".join(title.split()[:4]) for title in titles]
    table = Table(f"Feed polls over HTTP, {index_dir.name} ({len(queries)} feed URLs)",
                  ["request", "p50 ms", "p99 ms", "server CPU ms/request", "bytes (median)"])
    with served(index_dir, args.threads) as (base, server, _):
        _wait_until_up(base, server)
        with httpx.Client(base_url=base, timeout=60) as client:
            client.get("/feeds/search.atom?" + urlencode({"q": "warm up", "since": SINCE_DAYS}))
            etags, sizes = {}, {}

            def fresh(query):
                response = client.get(_url(query))
                response.raise_for_status()
                etags[query], sizes[query] = response.headers["etag"], len(response.content)

            def cached(query):
                client.get(_url(query)).raise_for_status()

            def conditional(query):
                response = client.get(_url(query), headers={"If-None-Match": etags[query]})
                if response.status_code != 304:
                    raise RuntimeError(f"expected 304 for {query!r}, got {response.status_code}")

            for name, call in (("fresh (rank + render)", fresh), ("cached document, 200", cached),
                               ("If-None-Match, 304", conditional)):
                before = _process_cpu(server.pid)
                latency = time_calls(call, queries, warmup=0)
                cpu_ms = 1000 * (_process_cpu(server.pid) - before) / len(queries)
                table.add(name, latency.p50, latency.p99, cpu_ms,
                          sorted(sizes.values())[len(sizes) // 2] if name != "If-None-Match, 304" else 0)
    table.notes.append(f"Atom, default threshold and mode, since={SINCE_DAYS} days; one client, "
                       f"one uvicorn worker; load average {load_average()}. Server CPU is the figure "
                       "that holds on a busy machine: wall times there include waiting for a core.")
    return [table]


def _url(query: str) -> str:
    return "/feeds/search.atom?" + urlencode({"q": query, "since": SINCE_DAYS})


def sample_index(args):
    """WORKDIR/sample-index: the bundled 24 papers, built once."""
    from indexer.build import index_file
    from models.config import Settings

    target = args.workdir / "sample-index"
    if not layout.db_file(target).is_file():
        started = time.perf_counter()
        index_file(Settings(index_dir=target, threads=args.threads), ROOT / "indexer" / "sample" / "papers.jsonl")
        print(f"(built {target} in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return target
