"""MCP section: round-trip time per tool of `papersearch mcp` over stdio, with the SDK's own client.

The server runs as a subprocess over --index, else the bundled 24-paper sample (benchmarks/feeds.py
builds it once); each tool is called `--queries / 10` times (at least 20) after one warm-up call.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from benchmarks.feeds import sample_index
from benchmarks.measure import ROOT, load_average
from benchmarks.tables import Table


def run(args) -> list[Table]:
    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    from indexer.store import IndexStore

    index_dir = args.index or sample_index(args)
    store = IndexStore.open(index_dir)
    papers = [paper for _, paper in store.iter_papers()][:3]
    store.close()
    calls = {
        "search_papers": {"query": " ".join(papers[0].title.split()[:4]), "limit": 10},
        "get_paper": {"paper_id": papers[0].paper_id},
        "related_papers (id)": {"paper_id": papers[0].paper_id, "limit": 10},
        "related_papers (text)": {"text": papers[1].abstract[:1000] or papers[1].title, "limit": 10},
        "recommend_papers": {"positive": [papers[0].paper_id, papers[1].paper_id],
                             "negative": [papers[2].paper_id], "limit": 10},
    }
    rounds = max(args.queries // 10, 20)
    table = Table(f"MCP round trip per tool over stdio, {index_dir.name}", ["tool", "p50 ms", "p99 ms", "calls"])
    server = StdioServerParameters(command=sys.executable, args=["-m", "api.cli", "mcp", "--index", str(index_dir),
                                                                 "-q"],
                                   env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}, cwd=str(ROOT))

    async def measure():
        started = time.perf_counter()
        async with Client(server, read_timeout_seconds=120) as client:
            table.notes.append(f"server start to first answer: {time.perf_counter() - started:.1f} s")
            for label, arguments in calls.items():
                name = label.split(" ")[0]
                await client.call_tool(name, arguments)  # warm up
                samples = []
                for _ in range(rounds):
                    began = time.perf_counter()
                    outcome = await client.call_tool(name, arguments)
                    samples.append((time.perf_counter() - began) * 1000)
                    if outcome.is_error:
                        raise RuntimeError(f"{label}: {outcome.content[0].text}")
                samples.sort()
                table.add(label, statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))],
                          rounds)

    anyio.run(measure)
    table.notes.append(f"default modes (hybrid), limit 10; load average {load_average()}")
    return [table]
