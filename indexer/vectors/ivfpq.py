"""The compressed structure for large corpora: an inverted file (IVF) of product-quantised codes (PQ).

PQ holds 1/32 of each vector in RAM; the candidates it returns are re-scored exactly with the full
vectors read back from the store (the refinement step), so ranking stays exact among them.
"""

from __future__ import annotations

import faiss
import numpy as np

from indexer.vectors.base import FetchVectors, VectorIndex, empty_result, exact_top

# One PQ byte per 8 dimensions (48 bytes for 384-d MiniLM): 1/32 of the float32 vector.
IVFPQ_DIMS_PER_BYTE = 8
# Candidates fetched per result and re-scored exactly with the stored full vectors, and lists
# probed per query as a share of all lists (at most 128). At 1M vectors (benchmarks/ivfpq.py,
# docs/scaling.md) a top 10 from 128 of 512 lists and 1,000 candidates had recall@10 0.985
# against exact search at 13.8 ms CPU a query; 64 lists 0.980 (9.6 ms); the earlier default of
# 32 lists and 300 candidates 0.92-0.96 across trainings (3.8 ms), below the 0.98 asked of the
# defaults. PQ codes alone: 0.27. Read at call time, so a benchmark may sweep them.
IVFPQ_REFINE_FACTOR = 100
IVFPQ_REFINE_MIN = 1000
IVFPQ_PROBE_SHARE = 1 / 4
IVFPQ_MAX_PROBE = 128
# FAISS k-means wants at least 39 training points per centroid; 64 per list gives steadier lists.
IVFPQ_TRAIN_PER_LIST = 64
IVFPQ_MIN_TRAIN = 20_000
# A filter that leaves at most this many papers is scored exactly from the stored vectors.
IVFPQ_EXACT_SUBSET_LIMIT = 20_000


def ivfpq_shape(dimension: int, count: int) -> tuple[int, int, int]:
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


class IvfPqIndex(VectorIndex):
    """IVF lists of PQ codes (the FAISS index itself keeps the ids); searches re-score exactly."""

    name = "ivfpq"
    holds_vectors = False  # codes only: the exact vectors stay in SQLite

    @classmethod
    def create(cls, dimension: int, count: int = 0) -> IvfPqIndex:
        lists, pq_bytes, bits = ivfpq_shape(dimension, count)
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFPQ(quantizer, dimension, lists, pq_bytes, bits, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True  # the quantizer lives as long as the index (SWIG would free it early)
        quantizer.this.disown()
        kind = cls(index)
        kind.set_search_depth()
        return kind

    @classmethod
    def matches(cls, index: faiss.Index) -> bool:
        return isinstance(faiss.downcast_index(index), faiss.IndexIVFPQ)

    @property
    def _ivf(self) -> faiss.IndexIVFPQ:
        return faiss.downcast_index(self.faiss)

    def set_search_depth(self) -> None:
        ivf = self._ivf
        ivf.nprobe = max(1, min(IVFPQ_MAX_PROBE, ivf.nlist, round(ivf.nlist * IVFPQ_PROBE_SHARE)))

    def fits(self, count: int) -> bool:
        """Whether it is trained and still has the shape `count` vectors call for (else retrain)."""
        ivf = self._ivf
        if not ivf.is_trained:
            return False
        return (ivf.nlist, ivf.pq.M, ivf.pq.nbits) == ivfpq_shape(ivf.d, count)

    def training_size(self, count: int) -> int:
        return min(count, max(IVFPQ_MIN_TRAIN, IVFPQ_TRAIN_PER_LIST * self._ivf.nlist))

    def train(self, sample: np.ndarray) -> None:
        """Train the IVF lists and PQ codebooks of an empty index on a sample of stored vectors."""
        ivf = self._ivf
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if len(sample) < 39 * ivf.nlist or len(sample) < 39 * (1 << ivf.pq.nbits):
            # Small indexes: the shape already keeps k-means solvable; FAISS would only warn.
            ivf.cp.min_points_per_centroid = 1
            ivf.pq.cp.min_points_per_centroid = 1
        ivf.train(sample)

    def live_ids(self) -> np.ndarray:
        lists = faiss.extract_index_ivf(self.faiss).invlists  # IVF keeps its ids in its lists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(lists.nlist) if lists.list_size(i)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def search(self, query: np.ndarray, k: int, fetch_vectors: FetchVectors,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k re-scored exactly with the full vectors. `fetch_vectors(rowids)` returns (found
        rowids, their full vectors); rows deleted since the index was loaded are simply not found.
        With `allowed`, a small set is scored exactly, a large one through the lists with a selector.
        """
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if allowed is not None and len(allowed) <= IVFPQ_EXACT_SUBSET_LIMIT:
            return exact_top(query[0], *fetch_vectors(allowed), k)
        fetch = min(self.ntotal, max(k * IVFPQ_REFINE_FACTOR, IVFPQ_REFINE_MIN))
        if fetch <= 0:
            return empty_result()
        ivf = self._ivf
        params = faiss.SearchParametersIVF(nprobe=ivf.nprobe)
        if allowed is not None:
            params.sel = faiss.IDSelectorBatch(allowed)
            params.nprobe = min(ivf.nlist, ivf.nprobe * 4)  # a filter thins every list: look wider
        _, rowids = ivf.search(query, fetch, params=params)
        candidates = rowids[0][rowids[0] >= 0]
        return exact_top(query[0], *fetch_vectors(candidates), k)

    def cosines(self, rowids: np.ndarray, vector: np.ndarray,
                fetch_vectors: FetchVectors) -> tuple[np.ndarray, np.ndarray]:
        kept, matrix = fetch_vectors(rowids)  # codes only in RAM: the exact vectors are in SQLite
        return np.asarray(kept, dtype=np.int64), (matrix @ vector).astype(np.float32)


KIND = IvfPqIndex
