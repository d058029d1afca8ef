"""Exact search: a flat inner-product index, every vector kept in float32."""

from __future__ import annotations

import faiss

from indexer.vectors.base import VectorIndex


class FlatIndex(VectorIndex):
    """Every vector scored for every query: exact, about 1 ms per 10k vectors on one core."""

    name = "flat"

    @classmethod
    def create(cls, dimension: int, count: int = 0) -> FlatIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def matches(cls, index: faiss.Index) -> bool:
        return isinstance(index, faiss.IndexIDMap2) and isinstance(faiss.downcast_index(index.index), faiss.IndexFlat)


KIND = FlatIndex
