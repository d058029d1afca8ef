"""What one edit costs on a large HNSW index: `papersearch delete` and `papersearch index` of one
changed paper, end to end in fresh processes, on a copy of an existing index.

    python -m benchmarks.hnsw_edits --index /path/to/100k-index [--edits 3]

Prints wall and CPU seconds per command, the FAISS file's rows and tombstones after each, and
whether the graph was rebuilt. The index given is copied, never changed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import ROOT, load_average
from benchmarks.tables import Table
from indexer.store import IndexStore, layout
from indexer.vectors import hnsw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hnsw_edits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="an HNSW index to copy")
    parser.add_argument("--edits", type=int, default=3, help="deletes and updates timed (3 of each)")
    parser.add_argument("--backend", default="onnx", help="embedding backend for the update (onnx)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.index.parent) as scratch:
        index_dir = Path(scratch) / "index"
        shutil.copytree(args.index, index_dir, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
        print(_measure(index_dir, args.edits, args.backend).render())
    return 0


def _measure(index_dir: Path, edits: int, backend: str) -> Table:
    papers = _some_papers(index_dir, 2 * edits)
    table = Table(f"One edit to an HNSW index of {_count(index_dir):,} papers, fresh process each",
                  ["command", "wall s", "CPU s", "FAISS rows", "tombstones", "graph rebuilt"])
    for paper in papers[:edits]:
        table.add(*_timed(index_dir, ["delete", paper["id"]], "delete 1 paper"))
    for number, paper in enumerate(papers[edits:]):
        changed = index_dir.parent / f"edit-{number}.jsonl"
        paper["abstract"] = paper["abstract"] + " (Revised: we add an ablation on a second data set.)"
        changed.write_text(json.dumps(paper) + "\n")
        table.add(*_timed(index_dir, ["index", str(changed), "--backend", backend], "index 1 changed paper"))
    table.notes.append(f"load average {load_average()}; tombstones: removed rows the graph keeps until "
                       f"they pass {hnsw.HNSW_MAX_DEAD_SHARE:.0%} of it (indexer/vectors/hnsw.py)")
    return table


def _timed(index_dir: Path, command: list[str], label: str) -> tuple:
    before_rows = _faiss_rows(index_dir)[0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "api.cli", *command, "--index", str(index_dir), "--quiet"],
                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    rows, live = _faiss_rows(index_dir)
    rebuilt = rows < before_rows or rows == live  # a fresh graph holds no tombstones
    return label, wall, cpu, rows, rows - live, "yes" if rebuilt else "no"


def _faiss_rows(index_dir: Path) -> tuple[int, int]:
    store = IndexStore.open(index_dir)
    try:
        index, _ = store.load_vector_index()
    finally:
        store.close()
    return index.ntotal, index.live_count()


def _count(index_dir: Path) -> int:
    store = IndexStore.open(index_dir)
    try:
        return store.count()
    finally:
        store.close()


def _some_papers(index_dir: Path, count: int) -> list[dict]:
    store = IndexStore.open(index_dir)
    try:
        papers = [paper for _, paper in itertools.islice(store.iter_papers(), count)]
    finally:
        store.close()
    return [{"id": p.paper_id, "title": p.title, "abstract": p.abstract} for p in papers]


if __name__ == "__main__":
    sys.exit(main())
