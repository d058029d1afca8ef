"""IVF-PQ at 1M vectors: bytes per paper, build time, recall@10 against exact search, query latency.

Vectors (realistic, not random): the 5,183 real SciFact MiniLM embeddings from a ready index, then
synthetic rows made from them, each

    normalise(a + beta * (b - a) + sigma * g)

with a, b two real SciFact vectors drawn uniformly, beta ~ U(0, 0.5), sigma = 0.25 and
g ~ N(0, I / 384) (so |g| is about 1), seeded with 0. Queries: the 300 SciFact test claims, embedded
with the same model as queries. Ground truth: exact inner product over all rows (numpy).

The index is a real PaperSearch index directory (SQLite records + embeddings, FAISS file), so the
latency includes the refinement step reading candidates' full vectors back from SQLite and the
metadata lookup for the returned page, as `papersearch search` does.

    python benchmarks/ivfpq.py --reference /work/cache/scifact-minilm --work /work/cache/ivfpq-bench \
        --count 1000000
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.footprint import EMBEDDINGS, FREE_PAGES, RECORDS, VECTORS, disk_parts  # noqa: E402
from indexer import vectors  # noqa: E402
from indexer.store import IndexStore, Upsert, layout  # noqa: E402
from indexer.vectors import ivfpq  # noqa: E402
from models.config import Settings  # noqa: E402
from models.paper import Paper  # noqa: E402
from search.engine import SearchEngine  # noqa: E402

WRITE_CHUNK = 20_000


def real_vectors(reference: Path) -> tuple[np.ndarray, object]:
    store = IndexStore.open(reference)
    try:
        matrix = np.concatenate([m for _, m in store.iter_embeddings()])
        return matrix, store.model
    finally:
        store.close()


def synthetic_rows(real: np.ndarray, start: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Rows start..start+count of the benchmark set (the first len(real) rows are the real vectors)."""
    dim = real.shape[1]
    out = np.empty((count, dim), dtype=np.float32)
    for row in range(count):
        if start + row < len(real):
            out[row] = real[start + row]
    made = [r for r in range(count) if start + r >= len(real)]
    if made:
        a = real[rng.integers(0, len(real), len(made))]
        b = real[rng.integers(0, len(real), len(made))]
        beta = rng.uniform(0, 0.5, (len(made), 1)).astype(np.float32)
        noise = rng.standard_normal((len(made), dim)).astype(np.float32) / np.sqrt(dim)
        rows = a + beta * (b - a) + 0.25 * noise
        out[made] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def build_store(directory: Path, real: np.ndarray, model, count: int) -> float:
    """Write `count` records with their vectors into a fresh index directory; returns seconds."""
    started = time.perf_counter()
    store = IndexStore.create(directory, model)
    rng = np.random.default_rng(0)
    for start in range(0, count, WRITE_CHUNK):
        size = min(WRITE_CHUNK, count - start)
        matrix = synthetic_rows(real, start, size, rng)
        store.write([Upsert(Paper(paper_id=f"v{start + i:07d}", title=f"vector {start + i}"), f"h{start + i}",
                            matrix[i]) for i in range(size)])
    store.close()
    return time.perf_counter() - started


def all_vectors(directory: Path) -> np.ndarray:
    store = IndexStore.open(directory)
    try:
        return np.concatenate([m for _, m in store.iter_embeddings()])
    finally:
        store.close()


def embed_queries(cache: Path, corpus: Path, model_name: str) -> np.ndarray:
    if cache.is_file():
        return np.load(cache)
    from models.embedder import Embedder

    qrels = {line.split("\t")[0] for line in (corpus / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    with gzip.open(corpus / "queries.jsonl.gz", "rt") as handle:
        texts = [q["text"] for q in map(json.loads, handle) if q["_id"] in qrels]
    matrix = Embedder(model_name).encode(texts, "query")
    np.save(cache, matrix)
    return matrix


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ matrix.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


class _NoEncoder:
    def encode(self, texts, role):
        raise AssertionError("queries arrive as vectors")


def measure(engine: SearchEngine, queries: np.ndarray, truth: np.ndarray, k: int = 10) -> dict:
    """recall@k and latency of engine.search_vector (refined IVF-PQ when the index is IVF-PQ).

    Wall-clock percentiles suffer when the shared machine is busy; CPU time per query (this
    process's user + system time) is the steadier figure.
    """
    latencies, found = [], 0
    cpu_started = time.process_time()
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        hits = engine.search_vector(query, k)
        latencies.append(time.perf_counter() - started)
        got = {int(h.paper.paper_id[1:]) for h in hits}
        found += len(got & set(expected.tolist()))
    cpu_ms = (time.process_time() - cpu_started) / len(queries) * 1000
    latencies = np.array(latencies) * 1000
    return {"recall@10": round(found / (len(queries) * k), 4), "p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p95_ms": round(float(np.percentile(latencies, 95)), 2), "cpu_ms_per_query": round(cpu_ms, 2),
            "load_avg_1m": round(os.getloadavg()[0], 1)}


def pq_only_recall(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """recall@k of the compressed codes alone (no refinement), for comparison."""
    _, rowids = index.search(np.ascontiguousarray(queries), k)
    return round(float(np.mean([len(set((r - 1).tolist()) & set(t.tolist())) / k
                                for r, t in zip(rowids, truth, strict=True)])), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=Path("/work/cache/scifact-minilm"))
    parser.add_argument("--scifact", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/scifact")
    parser.add_argument("--work", type=Path, default=Path("/work/cache/ivfpq-bench"))
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--settings", nargs="*", default=[(32, 30), (64, 100), (128, 100), (128, 200)],
                        type=lambda text: tuple(int(x) for x in text.split(":")),
                        help="nprobe:refine-factor pairs to measure (candidates = 10 x factor for a top 10)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    directory = args.work / f"index-{args.count}"
    real, model = real_vectors(args.reference)
    report: dict = {"count": args.count, "dimension": int(real.shape[1]), "real_vectors": len(real)}
    if not layout.db_file(directory).is_file():
        report["sqlite_write_s"] = round(build_store(directory, real, model, args.count), 1)
    queries = embed_queries(args.work / "queries.npy", args.scifact, model.name)
    matrix = all_vectors(directory)
    started = time.perf_counter()
    truth = exact_top(matrix, queries, 10)
    report["exact_numpy_300_queries_s"] = round(time.perf_counter() - started, 2)
    del matrix

    store = IndexStore.open(directory, writable=True)
    store.set_index_type("ivfpq")
    started = time.perf_counter()
    index = store.build_vector_index()
    report["ivfpq_build_s"] = round(time.perf_counter() - started, 1)
    store.save_vector_index(index, store.generation)
    parts = disk_parts(directory)
    faiss_bytes, sqlite_bytes = parts[VECTORS], parts[RECORDS] + parts[EMBEDDINGS] + parts[FREE_PAGES]
    ivf = index.faiss
    report["ivfpq"] = {"lists": ivf.nlist, "pq_bytes": ivf.pq.M, "bits": ivf.pq.nbits,
                       "default_nprobe": ivf.nprobe, "faiss_file_bytes": faiss_bytes,
                       "bytes_per_paper_ram": round(faiss_bytes / args.count, 1),
                       "sqlite_bytes_per_paper_disk": round(sqlite_bytes / args.count, 1)}
    store.close()

    engine = SearchEngine(IndexStore.open(directory), _NoEncoder(), Settings(index_dir=directory))
    default_probe = engine._index.faiss.nprobe
    report["pq_only_recall@10"] = pq_only_recall(engine._index.faiss, queries, truth)
    sweep = {}
    default_refine = ivfpq.IVFPQ_REFINE_FACTOR, ivfpq.IVFPQ_REFINE_MIN
    for probe, refine in args.settings:
        engine._index.faiss.nprobe = probe
        ivfpq.IVFPQ_REFINE_FACTOR, ivfpq.IVFPQ_REFINE_MIN = refine, refine * 10
        measure(engine, queries[:20], truth[:20])  # warm the page cache for this setting
        sweep[f"nprobe={probe} candidates={refine * 10}"] = measure(engine, queries, truth)
    engine._index.faiss.nprobe = default_probe
    ivfpq.IVFPQ_REFINE_FACTOR, ivfpq.IVFPQ_REFINE_MIN = default_refine
    report["refined"] = sweep

    flat = vectors.build_index("flat", real.shape[1], *_all_rows(directory))
    flat_engine = SearchEngine(engine.store, _NoEncoder(), Settings(index_dir=directory))
    flat_engine._index = flat
    report["flat_exact"] = measure(flat_engine, queries, truth)
    report["flat_bytes_per_paper_ram"] = round(flat.ntotal * real.shape[1] * 4 / args.count, 1)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    report["faiss_threads"] = faiss.omp_get_max_threads()
    print(json.dumps(report, indent=2))


def _all_rows(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    store = IndexStore.open(directory)
    try:
        parts = list(store.iter_embeddings())
        return np.concatenate([r for r, _ in parts]), np.concatenate([m for _, m in parts])
    finally:
        store.close()


if __name__ == "__main__":
    main()
