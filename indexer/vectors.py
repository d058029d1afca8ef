"""FAISS index construction: which structure to use for how many vectors, and how to change it.

Vectors are L2-normalised, so inner product is cosine. FAISS ids are the SQLite row ids.
Every structure is rebuilt from the stored embeddings; nothing here needs the model.

"ivfpq" is the compressed structure for large corpora: an inverted file (IVF) of product-quantised
codes (PQ) holds 1/32 of each vector in RAM; the candidates it returns are re-scored exactly with
the full vectors read back from the store (the refinement step), so ranking stays exact among them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import faiss
import numpy as np

INDEX_TYPES = ("auto", "flat", "hnsw", "ivfpq")

# Below this many papers exact search is fast enough (about 1 ms per 10k vectors on 2 cores)
# and costs no recall; above it "auto" switches to HNSW.
AUTO_HNSW_THRESHOLD = 50_000
# HNSW parameters: M=32 links per node. On 108,910 whole arXiv abstracts recall@10 against exact
# search was 0.982 at efSearch 128 and 0.990 at 192 (0.54 -> 0.80 ms of CPU a query): 192 keeps
# a margin above the 0.98 asked of the defaults for a quarter of a millisecond.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 192

# Above this many papers "auto" switches to IVF-PQ: HNSW keeps every full vector plus its graph in
# RAM (about 1.8 KB a paper at 384 dimensions), IVF-PQ about 56 bytes (see docs/scaling.md).
AUTO_IVFPQ_THRESHOLD = 1_000_000
# One PQ byte per 8 dimensions (48 bytes for 384-d MiniLM): 1/32 of the float32 vector.
IVFPQ_DIMS_PER_BYTE = 8
# Candidates fetched per result and re-scored exactly with the stored full vectors, and lists
# probed per query as a share of all lists (at most 128). At 1M vectors (benchmarks/ivfpq.py,
# docs/scaling.md) a top 10 from 128 of 512 lists and 1,000 candidates had recall@10 0.985
# against exact search at 13.8 ms CPU a query; 64 lists 0.980 (9.6 ms); the earlier default of
# 32 lists and 300 candidates 0.92-0.96 across trainings (3.8 ms), below the 0.98 asked of the
# defaults. PQ codes alone: 0.27.
IVFPQ_REFINE_FACTOR = 100
IVFPQ_REFINE_MIN = 1000
IVFPQ_PROBE_SHARE = 1 / 4
IVFPQ_MAX_PROBE = 128
# FAISS k-means wants at least 39 training points per centroid; 64 per list gives steadier lists.
IVFPQ_TRAIN_PER_LIST = 64
IVFPQ_MIN_TRAIN = 20_000
# A filter that leaves at most this many papers is scored exactly from the stored vectors.
IVFPQ_EXACT_SUBSET_LIMIT = 20_000


def resolve_index_type(requested: str, count: int) -> str:
    """The concrete structure for `requested` ("auto" picks by size)."""
    if requested not in INDEX_TYPES:
        raise ValueError(f"unknown index type {requested!r}; choose one of {', '.join(INDEX_TYPES)}")
    if requested == "auto":
        if count >= AUTO_IVFPQ_THRESHOLD:
            return "ivfpq"
        return "hnsw" if count >= AUTO_HNSW_THRESHOLD else "flat"
    return requested


def new_index(kind: str, dimension: int, count: int = 0) -> faiss.Index:
    """An empty ID-mapped index of the given structure.

    "ivfpq" is sized for `count` vectors and must be trained (`train`) before vectors are added.
    """
    if kind == "ivfpq":
        return _new_ivfpq(dimension, count)
    if kind == "flat":
        base = faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        base = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        base.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        raise ValueError(f"unknown index structure {kind!r}")
    return faiss.IndexIDMap2(base)


def build_index(kind: str, dimension: int, rowids: np.ndarray, vectors: np.ndarray) -> faiss.Index:
    """A filled index over (rowid, vector) pairs."""
    index = new_index(kind, dimension, len(rowids))
    if not index.is_trained and len(rowids):
        train(index, vectors[:: max(1, len(rowids) // training_size(index, len(rowids)))])
    if len(rowids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), rowids.astype(np.int64))
    return index


def index_kind(index: faiss.Index) -> str:
    """The structure name of an index made by `new_index`."""
    base = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if isinstance(faiss.downcast_index(base), faiss.IndexIVFPQ):
        return "ivfpq"
    return "hnsw" if isinstance(base, faiss.IndexHNSW) else "flat"


def apply_changes(index: faiss.Index, removed: np.ndarray, added_ids: np.ndarray,
                  added_vectors: np.ndarray) -> bool:
    """Remove and add rows in place. Returns False when the index must be rebuilt instead."""
    kind = index_kind(index)
    if kind == "ivfpq" and not ivfpq_fits(index, index.ntotal - len(removed) + len(added_ids)):
        return False  # grown past what its lists and codebooks were trained for: retrain
    if len(removed):
        if kind == "hnsw":
            dead = index.ntotal - live_count(index) + len(removed)
            if dead > HNSW_MAX_DEAD_SHARE * (index.ntotal + len(added_ids)):
                return False  # mostly tombstones: a fresh graph is smaller and searches better
            _tombstone(index, np.asarray(removed, dtype=np.int64))
        else:
            index.remove_ids(np.asarray(removed, dtype=np.int64))
    if len(added_ids):
        index.add_with_ids(np.ascontiguousarray(added_vectors, dtype=np.float32),
                           np.asarray(added_ids, dtype=np.int64))
    return True


# --- HNSW tombstones ---------------------------------------------------------------------------------
# An HNSW graph cannot drop a node, and rebuilding it for every edit cost minutes at 100k papers.
# A removed row's id in the IndexIDMap2 becomes -1 instead (a tombstone): the node still routes
# searches through the graph but is never returned (see `search`), and rowids are never reused,
# so no later paper can be confused with it. The graph is rebuilt once tombstones pass this share.
HNSW_MAX_DEAD_SHARE = 0.2
_TOMBSTONE = -1
# Every real rowid; a selector over this range is "not a tombstone".
_LIVE_IDS = faiss.IDSelectorRange(0, 2**62)


def live_ids(index: faiss.Index) -> np.ndarray:
    """The ids of the rows an index returns (HNSW tombstones left out), in storage order."""
    if index_kind(index) == "ivfpq":  # IVF keeps its ids in its lists, not in an id map
        lists = faiss.extract_index_ivf(index).invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(lists.nlist) if lists.list_size(i)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)
    ids = faiss.vector_to_array(index.id_map)
    return ids[ids != _TOMBSTONE]


def live_count(index: faiss.Index) -> int:
    """How many rows an index can return: ntotal less HNSW tombstones."""
    if index_kind(index) != "hnsw":
        return index.ntotal
    return int(np.count_nonzero(faiss.vector_to_array(index.id_map) != _TOMBSTONE))


def _tombstone(index: faiss.Index, removed: np.ndarray) -> None:
    ids = faiss.vector_to_array(index.id_map)
    ids[np.isin(ids, removed)] = _TOMBSTONE
    faiss.copy_array_to_vector(ids, index.id_map)
    index.construct_rev_map()  # reconstruct(removed rowid) now fails like any unknown id


def search(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the k nearest rows for each query row, never a tombstone (-1 pads)."""
    if index_kind(index) != "hnsw":
        return index.search(query, k)
    hnsw = faiss.downcast_index(index.index).hnsw
    # Parameters replace the index's own efSearch, so it is passed on explicitly.
    params = faiss.SearchParametersHNSW(sel=_LIVE_IDS, efSearch=hnsw.efSearch)
    return index.search(query, k, params=params)


def set_threads(threads: int) -> int:
    """Bound FAISS's OpenMP pool to `threads` (0: one per core); returns the previous bound.

    The bound is process-wide. Builds (HNSW, IVF training) use every core they are given; a
    search of one query should get one thread (see SearchEngine.open).
    """
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads if threads > 0 else (os.cpu_count() or 1))
    return previous
# --- IVF-PQ ---------------------------------------------------------------------------------------


def _ivfpq_shape(dimension: int, count: int) -> tuple[int, int, int]:
    """(lists, PQ bytes, bits per code) for `count` vectors.

    Lists: the largest power of two up to sqrt(count), with at least 39 points per list (1,024 at
    1M: training k-means on 2 cores stays near a minute; FAISS suggests up to 4-16 * sqrt(count),
    worth it on a cluster). Bits: 8 (256 centroids per sub-quantizer) once there are 256 points.
    """
    lists = 1
    while lists * 2 <= count ** 0.5 and lists * 2 * 39 <= count and lists < 65_536:
        lists *= 2
    pq_bytes = next(m for m in range(max(1, dimension // IVFPQ_DIMS_PER_BYTE), 0, -1) if dimension % m == 0)
    bits = 8 if count >= 256 else max(1, min(8, int(np.log2(max(count, 2)))))
    return lists, pq_bytes, bits


def _new_ivfpq(dimension: int, count: int) -> faiss.Index:
    lists, pq_bytes, bits = _ivfpq_shape(dimension, count)
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFPQ(quantizer, dimension, lists, pq_bytes, bits, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True  # the quantizer lives as long as the index (SWIG would free it early)
    quantizer.this.disown()
    set_search_depth(index)
    return index


def set_search_depth(index: faiss.Index) -> None:
    """Apply the current defaults for how far a search looks (HNSW efSearch, IVF-PQ nprobe).

    FAISS saves both in the file, so an index written under older defaults would keep them.
    """
    kind = index_kind(index)
    if kind == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivfpq":
        ivf = faiss.downcast_index(index)
        ivf.nprobe = max(1, min(IVFPQ_MAX_PROBE, ivf.nlist, round(ivf.nlist * IVFPQ_PROBE_SHARE)))


def ivfpq_fits(index: faiss.Index, count: int) -> bool:
    """Whether a trained IVF-PQ index still has the shape `count` vectors call for."""
    ivf = faiss.downcast_index(index)
    if not ivf.is_trained:
        return False
    return (ivf.nlist, ivf.pq.M, ivf.pq.nbits) == _ivfpq_shape(ivf.d, count)


def training_size(index: faiss.Index, count: int) -> int:
    """How many sample vectors `train` wants for an index meant to hold `count` vectors."""
    ivf = faiss.downcast_index(index)
    return min(count, max(IVFPQ_MIN_TRAIN, IVFPQ_TRAIN_PER_LIST * ivf.nlist))


def train(index: faiss.Index, sample: np.ndarray) -> None:
    """Train the IVF lists and PQ codebooks of an empty index on a sample of stored vectors."""
    ivf = faiss.downcast_index(index)
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if len(sample) < 39 * ivf.nlist or len(sample) < 39 * (1 << ivf.pq.nbits):
        # Small indexes: the shape already keeps k-means solvable; FAISS would only warn.
        ivf.cp.min_points_per_centroid = 1
        ivf.pq.cp.min_points_per_centroid = 1
    ivf.train(sample)


def search_refined(index: faiss.Index, query: np.ndarray, k: int,
                   fetch_vectors: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                   allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (rowids, scores) from an IVF-PQ index, re-scored exactly with the full vectors.

    `fetch_vectors(rowids)` returns (found rowids, their full vectors); rows deleted since the
    index was loaded are simply not found. With `allowed`, only those rows may be returned: a
    small set is scored exactly, a large one through the IVF lists with an id selector.
    """
    query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    if allowed is not None and len(allowed) <= IVFPQ_EXACT_SUBSET_LIMIT:
        return exact_top(query[0], *fetch_vectors(allowed), k)
    fetch = min(index.ntotal, max(k * IVFPQ_REFINE_FACTOR, IVFPQ_REFINE_MIN))
    if fetch <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ivf = faiss.downcast_index(index)
    params = faiss.SearchParametersIVF(nprobe=ivf.nprobe)
    if allowed is not None:
        params.sel = faiss.IDSelectorBatch(allowed)
        params.nprobe = min(ivf.nlist, ivf.nprobe * 4)  # a filter thins every list: look wider
    _, rowids = ivf.search(query, fetch, params=params)
    candidates = rowids[0][rowids[0] >= 0]
    return exact_top(query[0], *fetch_vectors(candidates), k)


def exact_top(query: np.ndarray, rowids: np.ndarray, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `matrix` with the highest inner product with `query`, best first."""
    if len(rowids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = matrix @ query
    top = np.argsort(-scores, kind="stable")[:k]
    return np.asarray(rowids, dtype=np.int64)[top], scores[top].astype(np.float32)
