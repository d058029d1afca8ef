"""Peak memory while indexing a 100k-record file: it must not grow with the corpus.

Reads the arXiv listing set (108,910 records, gzip JSONL) through the real pipeline: ingest,
content hashes, SQLite writes in batches of 256, the FAISS index. ONE THING IS NOT REAL: to avoid
embedding 100k abstracts on a 2-core CPU (about 1.5 hours), the model is replaced by a cheap
deterministic STAND-IN ENCODER (a seeded random unit vector per text, 384 dimensions). It costs no
memory that grows, as the real model does not either (a fixed 90 MB of weights). This run measures
memory, never relevance.

Reports peak RSS (ru_maxrss) and current RSS after 25k, 50k and 100k papers, for the vector index
types "flat" (full vectors in RAM, which grow by design: 1,536 bytes a paper) and "ivfpq"
(compressed: about 64 bytes a paper).

    python benchmarks/memory_flat.py --input ../shared/data/arxiv-daily-2025-2026/papers.jsonl.gz \
        --work /work/cache/memory-flat --index-type ivfpq
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.footprint import disk_parts  # noqa: E402
from indexer import vectors  # noqa: E402
from indexer.build import index_file  # noqa: E402
from models.config import Settings  # noqa: E402
from models.embedder import ModelInfo  # noqa: E402

MARKS = (25_000, 50_000, 100_000)


class StandInEncoder:
    """NOT A MODEL: a seeded random unit vector per text, for memory measurements only."""

    name = "stand-in-hash-encoder"
    fingerprint = "stand-in-0000000"
    dimension = 384

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self.fingerprint, self.dimension)

    def encode(self, texts: list[str], role: str, batch_size: int | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                                  "little")
            vector = np.random.default_rng(seed).standard_normal(self.dimension)
            out[row] = vector / np.linalg.norm(vector)
        return out


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser.add_argument("--input", type=Path, default=shared / "arxiv-daily-2025-2026" / "papers.jsonl.gz")
    parser.add_argument("--work", type=Path, default=Path("/work/cache/memory-flat"))
    parser.add_argument("--index-type", default="flat", choices=vectors.kind_names())
    args = parser.parse_args()
    directory = args.work / f"index-{args.index_type}"
    shutil.rmtree(directory, ignore_errors=True)
    done = 0
    samples: dict[int, dict] = {}
    started = time.perf_counter()
    baseline = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "rss_mb": round(current_rss_mb(), 1)}

    def progress(count: int) -> None:
        nonlocal done
        before, done = done, done + count
        for mark in MARKS:
            if before < mark <= done:
                samples[mark] = {"papers": done, "seconds": round(time.perf_counter() - started, 1),
                                 "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                                 "rss_mb": round(current_rss_mb(), 1)}

    report = index_file(Settings(index_dir=directory, index_type=args.index_type), args.input,
                        embedder=StandInEncoder(), progress=progress)
    final = {"papers": report.indexed, "seconds": round(time.perf_counter() - started, 1),
             "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
             "rss_mb": round(current_rss_mb(), 1)}
    sizes = disk_parts(directory)
    print(json.dumps({"encoder": "STAND-IN (not a model; memory measurement only)", "index_type": args.index_type,
                      "before_indexing": baseline, "at": samples, "end_after_flush": final,
                      "rejected": len(report.rejected), "bytes_by_part": sizes}, indent=2))


if __name__ == "__main__":
    main()
