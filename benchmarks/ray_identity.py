"""The Ray path on all of SciFact against the single-process index: identity and throughput.

Indexes the whole SciFact corpus (5,183 abstracts) with `index_files_ray` on a local Ray, then
compares with a ready single-process index of the same corpus (`papersearch index ... --index
/work/cache/scifact-minilm`): same paper ids and rowids, vectors within 1e-5, and the same top-10
(ids, and scores within 1e-5) for the 300 SciFact test queries.

    python benchmarks/ray_identity.py --reference /work/cache/scifact-minilm --replicas 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.distributed import RayOptions, index_files_ray  # noqa: E402
from indexer.store import IndexStore  # noqa: E402
from models.config import Settings  # noqa: E402
from models.embedder import Embedder  # noqa: E402
from search.engine import SearchEngine  # noqa: E402


def rows(directory: Path) -> dict[str, tuple[int, np.ndarray]]:
    store = IndexStore.open(directory)
    try:
        ids = {rowid: paper.paper_id for rowid, paper in store.iter_papers()}
        return {ids[int(r)]: (int(r), v) for rowids, matrix in store.iter_embeddings()
                for r, v in zip(rowids, matrix, strict=True)}
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=Path("/work/cache/scifact-minilm"))
    parser.add_argument("--scifact", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/scifact")
    parser.add_argument("--out", type=Path, default=Path("/work/cache/scifact-ray"))
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--resume", action="store_true", help="keep what an interrupted run stored in --out")
    args = parser.parse_args()
    if not args.resume:
        shutil.rmtree(args.out, ignore_errors=True)
    started = time.perf_counter()
    report, run = index_files_ray(Settings(index_dir=args.out), [args.scifact / "corpus.jsonl.gz"],
                                  options=RayOptions(replicas=args.replicas))
    seconds = time.perf_counter() - started
    got, want = rows(args.out), rows(args.reference)
    same_ids = got.keys() == want.keys()
    same_rowids = same_ids and all(got[p][0] == want[p][0] for p in want)
    max_diff = max(float(np.abs(got[p][1] - want[p][1]).max()) for p in want) if same_ids else None

    qrels = {line.split("\t")[0] for line in (args.scifact / "qrels/test.tsv").read_text().splitlines()[1:]}
    with gzip.open(args.scifact / "queries.jsonl.gz", "rt") as handle:
        queries = [q["text"] for q in map(json.loads, handle) if q["_id"] in qrels]
    encoder = Embedder()
    engines = [SearchEngine.open(Settings(index_dir=d), encoder=encoder) for d in (args.out, args.reference)]
    same_top10, worst_score = 0, 0.0
    for query in queries:
        a, b = (engine.search(query, limit=10) for engine in engines)
        same_top10 += [h.paper.paper_id for h in a] == [h.paper.paper_id for h in b]
        worst_score = max(worst_score, max(abs(x.score - y.score) for x, y in zip(a, b, strict=True)))
    print(json.dumps({
        "written": report.indexed, "unchanged": report.unchanged, "embedded_on_replicas": report.embedded,
        "driver_encode_s": report.encode_seconds,
        "ray": {"address": run.address, "replicas": run.replicas, "cluster_cpus": run.cluster_cpus},
        "seconds": round(seconds, 1), "embedded_per_s": round(report.embedded / seconds, 1),
        "same_ids": same_ids, "same_rowids": same_rowids, "max_abs_vector_diff": max_diff,
        "queries": len(queries), "same_top10_ids": same_top10, "max_abs_score_diff": worst_score,
    }, indent=2))


if __name__ == "__main__":
    main()
