"""Memory section: disk per paper by part and serving RSS per paper, as slopes over index sizes.

One index (the --corpus one, or --memory-index) is cut to each of --memory-sizes papers from its
stored vectors (benchmarks/footprint.cut_index: nothing re-embedded, the current format). For
each cut: its files by part, and the RSS of a fresh process that opens a SearchEngine on it and
runs a few searches in every mode. Least-squares lines through those points give bytes per paper
(the slope) apart from what any index costs (the intercept: Python, onnxruntime, the encoder).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from pathlib import Path

from benchmarks.footprint import ENCODER, PARTS, cut_index, disk_parts, fit_line, index_bytes
from benchmarks.measure import load_average, run_python
from benchmarks.tables import Table

PROCESSES_PER_SIZE = 3  # fresh processes per size; the median RSS is used
QUERIES = 10            # paper titles searched in every mode before RSS is read

_SERVE = """
import ctypes, gc, json
from benchmarks.measure import anon_rss_bytes, peak_rss_bytes, rss_bytes
from models.config import Settings
from models.query import MODES
from search.engine import SearchEngine
engine = SearchEngine.open(Settings(index_dir={index!r}, threads={threads}))
titles = [paper.title for (_, paper), _ in zip(engine.store.iter_papers(), range({queries}))]
for title in titles:
    for mode in MODES:
        engine.search(title, limit=10, mode=mode)
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap back to the OS: RSS is what stays in use
print(json.dumps([rss_bytes(), peak_rss_bytes(), anon_rss_bytes(), engine.index_kind]))
"""


def run(args) -> Iterator[Table]:
    from benchmarks.bench import corpus_index
    from indexer.store import IndexStore

    source = args.memory_index or corpus_index(args)
    store = IndexStore.open(source)
    available = store.count()
    store.close()
    sizes = sorted({min(int(s), available) for s in args.memory_sizes.split(",")})
    cuts = []
    for size in sizes:
        target = args.workdir / f"memory-{Path(source).name}-{size}"
        cuts.append((cut_index(source, target, size, args.memory_index_type), target))
    yield disk_table(cuts, f"cuts of {source} (first N papers, stored vectors, written in the current format); "
                           "slope = least-squares bytes per added paper over the sizes")
    yield rss_table(args, cuts, source)


def disk_table(indexes: list[tuple[int, Path]], note: str) -> Table:
    """Bytes per paper of each part of each (papers, index directory), and each part's slope
    (bytes per added paper) when there are several sizes."""
    sizes = [papers for papers, _ in indexes]
    parts = [disk_parts(target) for _, target in indexes]
    sloped = len(set(sizes)) > 1  # one size has no slope
    table = Table("Disk per paper by part, as the files add up (bytes/paper)",
                  ["part", *(f"{n:,} papers" for n in sizes), *(["slope, bytes/paper"] if sloped else [])])

    def row(name: str, values: list[int]) -> None:
        slope = [fit_line(sizes, values).slope] if sloped else []
        table.add(name, *(v / n for v, n in zip(values, sizes, strict=True)), *slope)

    for part in PARTS:
        row(part, [p[part] for p in parts])
    row("index total", [index_bytes(p) for p in parts])
    table.add(f"{ENCODER}, MB (fixed, not per paper)", *(p[ENCODER] / 1e6 for p in parts), *([None] * sloped))
    table.notes.append(note)
    return table


def rss_table(args, cuts: list[tuple[int, Path]], source) -> Table:
    """RSS of a fresh serving process per size, and the lines through them."""
    table = Table("Serving RSS per paper as a slope (fresh process per size: engine open + searches)",
                  ["papers", "index kind", "RSS MB", "of which anonymous MB", "peak RSS MB"])
    sizes, rss, anon = [], [], []
    for papers, target in cuts:
        runs = [json.loads(run_python(_SERVE.format(index=str(target), threads=args.threads, queries=QUERIES))[1])
                for _ in range(PROCESSES_PER_SIZE)]
        now, peak, anonymous = (statistics.median(r[i] for r in runs) for i in range(3))
        table.add(papers, runs[0][3], now / 1e6, anonymous / 1e6, peak / 1e6)
        sizes.append(papers)
        rss.append(now)
        anon.append(anonymous)
    if len(set(sizes)) > 1:
        for name, values in (("RSS", rss), ("anonymous RSS", anon)):
            line = fit_line(sizes, values)
            table.notes.append(f"fit: {name} = {line.intercept / 1e6:.1f} MB + {line.slope:,.0f} bytes/paper x papers "
                               f"(R² {line.r2:.3f}, {len(sizes)} sizes)")
    table.notes.append(f"median of {PROCESSES_PER_SIZE} processes per size, {QUERIES} titles x every mode each, "
                       "freed heap trimmed before reading; anonymous = RSS less mapped files' pages (the model "
                       f"file, BM25 segments: shared, droppable); cuts of {source}; load average {load_average()}")
    return table
