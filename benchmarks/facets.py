"""Facets section: what counting facets and date order add to a search, on the scale section's
100k stand-in index (the first --scale-size arXiv records, short-text vectors; see scale.py).

Each variant is timed on the same held-out arXiv titles, in alternating rounds so that a change
in the machine's load hits every variant alike; the figure is the median of the rounds' p50s.
The target: a hybrid search with facets year,category,venue within 1.5x of the same search without.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator

from benchmarks import scale
from benchmarks.bench import corpus_index
from benchmarks.measure import load_average, time_calls
from benchmarks.tables import Table
from indexer.store import onnx_export_dir
from models.config import Settings
from search.facets import FACET_DEPTH, FACET_FIELDS

ROUNDS = 5


def run(args) -> Iterator[Table]:
    from search.engine import SearchEngine

    export_dir = onnx_export_dir(corpus_index(args), scale._fingerprint())
    subset, titles = scale._subset(args)
    index_dir, build = scale._scale_index(args, subset, export_dir)
    yield build
    engine = SearchEngine.open(Settings(index_dir=index_dir, threads=args.threads))
    try:
        yield _timings(engine, titles[:args.queries])
    finally:
        engine.close()


def _timings(engine, titles: list[str]) -> Table:
    variants = {}
    for mode in ("hybrid", "dense", "lexical"):
        variants[f"{mode}"] = lambda q, m=mode: engine.search(q, limit=10, mode=m)
        variants[f"{mode} + facets {','.join(FACET_FIELDS)}"] = (
            lambda q, m=mode: engine.search_with_facets(q, limit=10, mode=m, facets=FACET_FIELDS))
    variants["hybrid + facets + sort=date"] = (
        lambda q: engine.search_with_facets(q, limit=10, mode="hybrid", facets=FACET_FIELDS, sort="date"))
    rounds: dict[str, list] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, call in variants.items():
            rounds[name].append(time_calls(call, titles))
    papers = engine.store.count()
    table = Table(f"Facets at {papers:,} papers, in-process (median of {ROUNDS} alternating rounds)",
                  ["search", "p50 ms", "p99 ms", "CPU ms/query", "p50 vs without facets"])
    p50 = {name: statistics.median(r.p50 for r in runs) for name, runs in rounds.items()}
    for name, runs in rounds.items():
        base = name.split(" ")[0]
        table.add(name, p50[name], statistics.median(r.p99 for r in runs),
                  statistics.median(r.cpu_ms for r in runs), p50[name] / p50[base])
    table.notes.append(f"facets count the {FACET_DEPTH}+ candidates each ranking considered (hybrid: the union of "
                       f"both sides) from SQLite's year/categories/venue columns; {len(titles)} held-out titles "
                       f"per round; {engine.index_kind} index; load average {load_average()}")
    table.notes.append("target: hybrid + facets within 1.5x of hybrid")
    return table
