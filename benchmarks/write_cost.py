"""What one small write costs a serving process, by index size: wall and CPU seconds.

    python -m benchmarks.write_cost --index DIR [--index DIR2 ...] --writes 10 --batch 4

For each index (a private copy; the original is never changed) it opens the API's IndexService,
then times `--writes` writes of `--batch` new papers and as many single deletes, each as the API
runs it (embed, SQLite, BM25, the vector snapshot when due, the engine refresh). CPU seconds are
the steadier figure on a shared machine. Run it on two sizes to see the slope: a write that costs
what it changes stays flat as the index grows.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.measure import Timer, load_average
from benchmarks.tables import Table
from indexer.store import IndexStore, layout
from models.config import Settings
from models.paper import Paper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.write_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, action="append", required=True, help="an index (repeat)")
    parser.add_argument("--writes", type=int, default=10, help="writes (and deletes) timed per index (10)")
    parser.add_argument("--batch", type=int, default=4, help="papers per write (4, as the load test)")
    args = parser.parse_args(argv)
    table = Table(f"One write of {args.batch} papers and one delete, served process (median of {args.writes})",
                  ["index", "papers", "write wall s", "write CPU s", "delete wall s", "delete CPU s",
                   "vector file rewritten"])
    for index in args.index:
        table.add(*_measure(index, args.writes, args.batch))
    table.notes.append(f"load average {load_average()}; writes embed their papers (about 0.07 s CPU each)")
    print(table.render())
    return 0


def _measure(index: Path, writes: int, batch: int) -> list:
    from api.service import IndexService

    with tempfile.TemporaryDirectory(prefix="write-cost-") as scratch:
        copy = Path(scratch) / "index"
        shutil.copytree(index, copy, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
        service = IndexService(Settings(index_dir=copy, backend="onnx", api_key="bench"))
        service.start()
        store = IndexStore.open(copy)
        papers = store.count()
        store.close()
        before = {p.name: p.stat().st_mtime_ns for p in layout.vector_files(copy)}
        added, deleted = [], []
        for number in range(writes):
            new = [Paper(paper_id=f"write-cost-{number}-{k}", title=f"Write cost probe {number} {k}",
                         abstract=f"A synthetic abstract number {number}-{k} about measuring small writes.")
                   for k in range(batch)]
            with Timer() as timer:
                service.upsert(new)
            added.append(timer)
        for number in range(writes):
            with Timer() as timer:
                service.delete(f"write-cost-{number}-0")
            deleted.append(timer)
        after = {p.name: p.stat().st_mtime_ns for p in layout.vector_files(copy)}
        service.close()
    return [index.name, papers, _median(added, "wall"), _median(added, "cpu"), _median(deleted, "wall"),
            _median(deleted, "cpu"), "yes" if after != before else "no"]


def _median(timers, attribute: str) -> float:
    return statistics.median(getattr(t, attribute) for t in timers)


if __name__ == "__main__":
    sys.exit(main())
