"""A large index in minutes: real records, stand-in vectors, for write and serving costs at scale.

    python -m benchmarks.standin_index --corpus ../shared/data/arxiv-daily-2025-2026/papers.jsonl.gz \\
        --index /tmp/arxiv-109k --papers 108910

Embedding 109k abstracts takes hours on two busy cores; what a write costs (SQLite, BM25, the
vector snapshot) and what a search costs (FAISS, BM25, snippets) do not depend on which unit
vectors are stored, so this stores seeded random unit vectors under the bundled model's identity.
Dense rankings over it are meaningless; lexical ones are real. Queries are still encoded by the
real model. Use it for `python -m benchmarks.load` at several sizes, never for quality figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from indexer.build import IndexReport, IndexWriter
from indexer.ingest import read_papers
from indexer.records import Parsed
from indexer.store import onnx_export_dir
from models.config import Settings
from models.paper import content_hash

BATCH = 5_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.standin_index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="papers.jsonl(.gz)")
    parser.add_argument("--index", type=Path, required=True, help="new index directory")
    parser.add_argument("--papers", type=int, default=100_000, help="how many records (100,000)")
    parser.add_argument("--onnx-from", type=Path, default=None,
                        help="an index of the same model whose ONNX export to copy (skips a re-export)")
    args = parser.parse_args(argv)
    settings = Settings(index_dir=args.index, backend="onnx")
    rng = np.random.default_rng(0)
    started, done = time.perf_counter(), 0
    with IndexWriter(settings) as writer:
        fingerprint = writer.embedder.fingerprint
        if args.onnx_from is not None:
            shutil.copytree(onnx_export_dir(args.onnx_from, fingerprint), onnx_export_dir(args.index, fingerprint),
                            dirs_exist_ok=True)
        batch = []
        for number, item in enumerate(read_papers(args.corpus)):
            if number >= args.papers:
                break
            if isinstance(item, Parsed):
                batch.append(item.paper)
            if len(batch) == BATCH:
                done += _write(writer, batch, fingerprint, rng, done + len(batch) >= args.papers)
                batch = []
                print(f"{done:,} papers, {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if batch:
            done += _write(writer, batch, fingerprint, rng, True)
    print(f"{done:,} papers in {time.perf_counter() - started:.0f} s: {args.index}")
    return 0


def _write(writer: IndexWriter, papers, fingerprint: str, rng, last: bool) -> int:
    vectors = rng.standard_normal((len(papers), writer.store.model.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    given = {content_hash(p, fingerprint): v for p, v in zip(papers, vectors, strict=True)}
    writer.upsert(papers, IndexReport(), precomputed=given, publish=last)
    return len(papers)


if __name__ == "__main__":
    sys.exit(main())
