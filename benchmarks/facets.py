"""Facets section: what counting facets and date order add to a search, at --scale-size (100k)
real arXiv records (the scale section's subset).

Facets cost the same whatever the document vectors are, and embedding 100k records with MiniLM
takes hours on a shared 2-core machine, so this index's DOCUMENT vectors are a labelled stand-in:
a hashed bag of words (384 signed buckets, unit length), built in seconds. Everything else is as
shipped: the records in SQLite, HNSW, the BM25 index, and the fp32 MiniLM query encoder.

Each variant is timed on the same held-out arXiv titles, in alternating rounds so that a change
in the machine's load hits every variant alike; the figure is the median of the rounds' p50s.
The target: a hybrid search with facets year,category,venue within 1.5x of the same search without.
"""

from __future__ import annotations

import re
import shutil
import statistics
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks import scale
from benchmarks.bench import corpus_index
from benchmarks.measure import load_average, time_calls
from benchmarks.tables import Table
from indexer.build import index_file
from indexer.store import layout, onnx_export_dir
from models import onnx_encoder
from models.config import Settings
from search.facets import FACET_DEPTH, FACET_FIELDS

ROUNDS = 5


def run(args) -> Iterator[Table]:
    from search.engine import SearchEngine

    export_dir = onnx_export_dir(corpus_index(args), scale._fingerprint())
    subset, titles = scale._subset(args)
    index_dir = _hashed_index(args, subset, export_dir)
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
    table.notes.append("document vectors: hashed bag of words (see the module docstring); query encoder, "
                       "HNSW, BM25 and SQLite as shipped. Target: hybrid + facets within 1.5x of hybrid")
    return table


class HashedStandIn(onnx_encoder.OnnxEmbedder):
    """MiniLM's identity (so its query encoder opens the index) with hashed bag-of-words document vectors."""

    def encode(self, texts: list[str], role: str, batch_size: int | None = None) -> np.ndarray:
        if role == "query":
            return super().encode(texts, role, batch_size)
        matrix = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"[a-z0-9]+", text.lower()):
                bucket = zlib.crc32(token.encode())
                matrix[row, bucket % self.dimension] += 1.0 if bucket & 1 << 31 else -1.0
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.maximum(norms, 1e-9)


def _hashed_index(args, subset: Path, export_dir: Path) -> Path:
    index_dir = args.workdir / f"scale-{args.scale_size}-hashed-index"
    if not layout.db_file(index_dir).is_file():
        shutil.rmtree(index_dir, ignore_errors=True)
        index_file(Settings(index_dir=index_dir, threads=args.threads), subset,
                   embedder=HashedStandIn(export_dir, "onnx", threads=args.threads, batch_size=256))
    target = onnx_export_dir(index_dir, scale._fingerprint())
    if not onnx_encoder.is_exported(target):
        shutil.copytree(export_dir, target, dirs_exist_ok=True)
    return index_dir
