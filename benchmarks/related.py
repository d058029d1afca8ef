"""Related section: latency of related-by-id and recommend in every mode, hybrid against dense.

Over the --corpus index (SciFact, 5k papers) unless --related-index names another, such as a
100k stand-in built with benchmarks/memory_flat.py's StandInEncoder (random vectors, real texts:
the BM25 side is real, the dense side costs what it costs, its ranking means nothing). Neither
call encodes text: related by id and recommend start from stored vectors.

    python -m benchmarks.bench related --index /tmp/evalcache/scifact-.../index
    python -m benchmarks.bench related --related-index /path/to/100k-index
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from benchmarks.measure import load_average, time_calls
from benchmarks.tables import Table
from indexer.store import IndexStore
from models.config import Settings

LIKED = 3  # liked papers per recommendation


def run(args) -> Iterator[Table]:
    from benchmarks.bench import corpus_index

    index_dir = args.related_index or corpus_index(args)
    yield latency_table(index_dir, args.queries, args.threads)


def _encoder_for(index_dir):
    """The stand-in encoder for a stand-in index (it has no ONNX export); None: the engine's own."""
    from benchmarks.memory_flat import StandInEncoder

    store = IndexStore.open(index_dir)
    try:
        return StandInEncoder() if store.model.name == StandInEncoder.name else None
    finally:
        store.close()


def latency_table(index_dir, calls: int, threads: int = 0) -> Table:
    from models.query import MODES
    from search.engine import SearchEngine

    engine = SearchEngine.open(Settings(index_dir=index_dir, threads=threads), encoder=_encoder_for(index_dir))
    try:
        rowids = engine.store.all_rowids().tolist()
        picked = random.Random(0).sample(rowids, min(len(rowids), calls * LIKED))
        ids = [p.paper_id for p in engine.store.papers_by_rowid(picked).values()]
        groups = [tuple(ids[i:i + LIKED]) for i in range(0, len(ids) - LIKED + 1, LIKED)]
        papers = engine.store.count()
        table = Table(f"Related and recommend latency in-process, {papers:,} papers ({engine.index_kind} index)",
                      ["call", "mode", "p50 ms", "p99 ms", "CPU ms/call", "p50 / dense"])
        tasks = {"related by id, limit 10": (ids[:calls], lambda pid, m: engine.related(paper_id=pid, mode=m)),
                 f"recommend, {LIKED} liked, limit 10": (groups,
                                                         lambda liked, m: engine.recommend(list(liked), mode=m))}
        for task, (inputs, call) in tasks.items():
            dense_p50 = None
            for mode in MODES:
                latency = time_calls(lambda item, m=mode, c=call: c(item, m), inputs)
                dense_p50 = dense_p50 or latency.p50
                table.add(task, mode, latency.p50, latency.p99, latency.cpu_ms, latency.p50 / dense_p50)
        table.notes.append(f"{len(inputs)} calls per row after 3 warm-up calls, one thread; index {index_dir}; "
                           f"load average {load_average()}")
        return table
    finally:
        engine.close()
