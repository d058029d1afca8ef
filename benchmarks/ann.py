"""ANN section: HNSW recall@10 against exact search, and per-query cost, on real embeddings.

The vectors are the ones stored in the corpus index (real all-MiniLM-L6-v2 document embeddings);
the queries are the corpus's test queries encoded by the same model. `recall_table` is shared
with the scale section, which runs it on 100k vectors.
"""

from __future__ import annotations

import numpy as np

from benchmarks.bench import corpus_index
from benchmarks.measure import Timer, load_beir, recall_at_k
from benchmarks.tables import Table
from indexer import vectors
from indexer.store import IndexStore, onnx_export_dir
from indexer.vectors import hnsw as hnsw_kind
from models import onnx_encoder

EF_SWEEP = (16, 32, 64, 128, 192, 256)


def run(args) -> list[Table]:
    index_dir = corpus_index(args)
    store = IndexStore.open(index_dir)
    rowids, matrix = _stored(store)
    encoder = onnx_encoder.OnnxEmbedder(onnx_export_dir(index_dir, store.model.fingerprint), threads=1)
    store.close()
    _, queries, _ = load_beir(args.corpus)
    query_vectors = encoder.encode(list(queries.values()), "query")
    title = f"HNSW vs exact, {len(rowids):,} real MiniLM document vectors, {len(query_vectors)} real queries"
    return [recall_table(title, rowids, matrix, query_vectors)]


def _stored(store: IndexStore) -> tuple[np.ndarray, np.ndarray]:
    ids, blocks = [], []
    for rowids, matrix in store.iter_embeddings():
        ids.append(rowids)
        blocks.append(matrix)
    return np.concatenate(ids), np.concatenate(blocks)


def recall_table(title: str, rowids: np.ndarray, matrix: np.ndarray, query_vectors: np.ndarray,
                 k: int = 10, hnsw=None) -> Table:
    """Build flat and HNSW (the defaults in indexer.vectors) and compare them query by query.

    `hnsw`: an HNSW VectorIndex over the same rows already built (an index's own file), used as is.
    """
    dimension = matrix.shape[1]
    vectors.set_threads(0)  # builds use every core
    with Timer() as flat_build:
        flat = vectors.build_index("flat", dimension, rowids, matrix)
    with Timer() as hnsw_build:
        if hnsw is None:
            hnsw = vectors.build_index("hnsw", dimension, rowids, matrix)
        else:
            hnsw_build.prebuilt = True
    vectors.set_threads(1)  # per-query cost on one core, as a single request sees it
    exact_ids, flat_cpu = _search_each(flat.faiss, query_vectors, k)
    table = Table(title, ["index", "efSearch", "recall@10", "CPU ms/query", "build s"])
    table.add("flat (exact)", None, 1.0, flat_cpu, flat_build.wall)
    import faiss

    hnsw_base = faiss.downcast_index(hnsw.faiss.index)
    for ef in sorted({*EF_SWEEP, hnsw_kind.HNSW_EF_SEARCH}):
        hnsw_base.hnsw.efSearch = ef
        found, cpu_ms = _search_each(hnsw.faiss, query_vectors, k)
        default = " (default)" if ef == hnsw_kind.HNSW_EF_SEARCH else ""
        built = "from the index file" if getattr(hnsw_build, "prebuilt", False) else hnsw_build.wall
        table.add(f"HNSW M={hnsw_kind.HNSW_M}, efConstruction={hnsw_kind.HNSW_EF_CONSTRUCTION}{default}", ef,
                  recall_at_k(found, exact_ids, k), cpu_ms, built if default else None)
    table.notes.append(f"auto picks HNSW from {vectors.AUTO_HNSW_THRESHOLD:,} papers; one query per search call, "
                       "one FAISS thread; build time on all cores of a shared machine")
    return table


def _search_each(index, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Top-k ids per query, searched one at a time; and CPU ms per query."""
    out = np.empty((len(query_vectors), k), dtype=np.int64)
    with Timer() as t:
        for row, vector in enumerate(query_vectors):
            _, ids = index.search(np.ascontiguousarray(vector.reshape(1, -1)), k)
            out[row] = ids[0]
    return out, 1000 * t.cpu / len(query_vectors)
