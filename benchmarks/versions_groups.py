"""Versions of one work on a real corpus: how many groups, what joined them, and what grouping costs.

    python benchmarks/versions_groups.py --dir /tmp/versions-bench [--papers N] [--sample 10]

Reads real records (default ../shared/data/arxiv-daily-2025-2026/papers.jsonl.gz) through the one
record decoder, stores them in a real index directory with tiny random vectors (no model: only
the identifiers table matters here), written in batches of 256 as IndexWriter does, then groups
every paper with search.versions.works (the query-time code) and times it for page-sized sets.
Prints one JSON object (latencies in milliseconds) and a sample of groups to check by hand.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.build import WRITE_BATCH  # noqa: E402
from indexer.ingest import Parsed, read_papers  # noqa: E402
from indexer.store import IndexStore, Upsert  # noqa: E402
from models.embedder import ModelInfo  # noqa: E402
from models.identifiers import ARXIV, DOI, WORK  # noqa: E402
from search import versions  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "arxiv-daily-2025-2026" / "papers.jsonl.gz"
_DIMENSION = 8  # vectors are stored but never searched here


def _store(path: Path, directory: Path, limit: int | None) -> tuple[IndexStore, float]:
    store = IndexStore.create(directory, ModelInfo("none", "versions-bench", _DIMENSION))
    started, batch, seen = time.perf_counter(), [], 0
    rng = np.random.default_rng(0)
    for item in read_papers(path):
        if not isinstance(item, Parsed):
            continue
        batch.append(Upsert(item.paper, "-", rng.standard_normal(_DIMENSION).astype(np.float32)))
        seen += 1
        if len(batch) == WRITE_BATCH:
            store.write(batch)
            batch = []
        if limit and seen >= limit:
            break
    if batch:
        store.write(batch)
    return store, time.perf_counter() - started


def _joined_by(store: IndexStore, members: tuple[str, ...]) -> list[str]:
    """Which rules hold between a group's members: a shared DOI, arXiv id, or title key."""
    keys = store.identifier_keys(members)
    rules = []
    for kind in (DOI, ARXIV):
        values = [v for pid in members for k, v in keys.get(pid, []) if k == kind]
        if len(values) != len(set(values)):
            rules.append(kind)
    stems = [v.rpartition("|")[0] for pid in members for k, v in keys.get(pid, []) if k == WORK]
    if len(stems) != len(set(stems)):
        rules.append("title+first author+year")
    return rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--dir", type=Path, required=True, help="a new or empty directory for the index")
    parser.add_argument("--papers", type=int, default=None, help="stop after this many records")
    parser.add_argument("--sample", type=int, default=10, help="groups to print for a hand check")
    args = parser.parse_args(argv)
    store, write_s = _store(args.data, args.dir, args.papers)
    ids = [paper.paper_id for _, paper in store.iter_papers()]

    started = time.perf_counter()
    groups = versions.works(store, ids)
    whole_s = time.perf_counter() - started
    multi = sorted({g for g in groups.values() if len(g) > 1})
    rng = random.Random(0)
    timings = {}
    for size in (20, 200):
        runs = []
        for _ in range(50):
            chosen = rng.sample(ids, size)
            t0 = time.perf_counter()
            versions.works(store, chosen)
            runs.append((time.perf_counter() - t0) * 1000)
        timings[f"works_of_{size}_ms_median"] = round(statistics.median(runs), 2)
        timings[f"works_of_{size}_ms_min"] = round(min(runs), 2)  # the figure least hurt by a busy machine
    rules: dict[str, int] = {}
    for group in multi:
        for rule in _joined_by(store, group) or ["chain"]:
            rules[rule] = rules.get(rule, 0) + 1
    print(json.dumps({
        "papers": len(ids), "write_s": round(write_s, 1), "groups_of_2_or_more": len(multi),
        "papers_in_groups": sum(len(g) for g in multi), "largest_group": max(map(len, multi), default=1),
        "groups_by_rule": rules, "group_everything_s": round(whole_s, 2), **timings,
    }))
    papers = store.get_papers([pid for group in multi for pid in group])
    for group in rng.sample(multi, min(args.sample, len(multi))):
        print(json.dumps({"group": [{"id": pid, "year": papers[pid].year,
                                     "first_author": (papers[pid].authors or ("",))[0],
                                     "title": papers[pid].title[:90]} for pid in group],
                          "joined_by": _joined_by(store, group)}, ensure_ascii=False))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
