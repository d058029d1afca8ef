"""How an embedding and an abstract are kept in SQLite: float16 bytes and a zstd frame.

Disk per paper is mostly these two (SciFact: 1,536 bytes of float32 vector and 1,400 bytes of
abstract). Float16 halves the vector for a cosine to the float32 vector of 0.999999 (docs/performance.md,
"Disk per paper"), and zstd (level 1, no dictionary) keeps an abstract in about half its bytes
while decoding one in ~5 us. Vectors are float32 again as soon as they are read: FAISS and the
rankers see the same type as before.

Rows written by format 1 (float32 bytes, plain text) stay readable as they are: a vector's width
is told from its length (the dimension is fixed per index) and a plain abstract is a str, a
compressed one bytes. Every read and write of these two columns goes through here.
"""

from __future__ import annotations

import threading

import numpy as np
import zstandard

from models.errors import IndexCorrupt

STORED_DTYPE = np.float16
_LEGACY_DTYPE = np.float32  # format 1
# Levels 1-3 keep SciFact's abstracts in 51.2 / 51.3 / 50.9% of their bytes; 1 takes half the
# time of 3 (12 vs 30 us an abstract), which a build from ready vectors pays for every paper.
_LEVEL = 1

_local = threading.local()  # zstd contexts are not shareable between threads


def _compressor() -> zstandard.ZstdCompressor:
    if not hasattr(_local, "compressor"):
        _local.compressor = zstandard.ZstdCompressor(level=_LEVEL)
    return _local.compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    if not hasattr(_local, "decompressor"):
        _local.decompressor = zstandard.ZstdDecompressor()
    return _local.decompressor


# --- vectors ----------------------------------------------------------------------------------------


def vector_blob(vector: np.ndarray) -> bytes:
    """The stored bytes of one (float32) vector."""
    return np.ascontiguousarray(vector, dtype=STORED_DTYPE).tobytes()


def is_vector_blob(blob: bytes | None, dimension: int) -> bool:
    """Whether `blob` holds a `dimension`-dimensional vector in a width this release reads."""
    return len(blob or b"") in (dimension * 2, dimension * 4)


def vector_of(blob: bytes, dimension: int) -> np.ndarray:
    """One stored vector as float32; ValueError when its length fits no stored width."""
    if len(blob) == dimension * 2:
        return np.frombuffer(blob, dtype=STORED_DTYPE).astype(np.float32)
    if len(blob) == dimension * 4:
        return np.frombuffer(blob, dtype=_LEGACY_DTYPE).copy()
    raise ValueError(f"a stored vector of {len(blob)} bytes is not {dimension}-dimensional")


def matrix_of(blobs: list[bytes], dimension: int) -> np.ndarray:
    """Stored vectors as one float32 matrix (one decode for the usual all-float16 case)."""
    if blobs and all(len(b) == dimension * 2 for b in blobs):
        return np.frombuffer(b"".join(blobs), dtype=STORED_DTYPE).astype(np.float32).reshape(len(blobs), dimension)
    if not blobs:
        return np.zeros((0, dimension), np.float32)
    return np.stack([vector_of(b, dimension) for b in blobs])


# --- abstracts --------------------------------------------------------------------------------------


def abstract_value(text: str) -> str | bytes:
    """What the abstract column stores: a zstd frame, or "" for no abstract."""
    return _compressor().compress(text.encode("utf-8")) if text else ""


def abstract_text(value: str | bytes | None) -> str:
    """The abstract a stored value holds (a format-1 row holds it as plain text)."""
    if value is None or isinstance(value, str):
        return value or ""
    try:
        return _decompressor().decompress(value).decode("utf-8")
    except (zstandard.ZstdError, UnicodeDecodeError) as exc:
        raise IndexCorrupt(f"a stored abstract cannot be decompressed ({exc}): restore papers.sqlite from a "
                           "backup, or re-index the input file that paper came from") from exc
