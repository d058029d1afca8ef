"""What storing embeddings as float16 costs: cosine to the float32 vectors and dense nDCG@10.

    python -m benchmarks.float16_loss --index SCIFACT_INDEX [--corpus ../shared/data/scifact]

Needs an index whose rows still hold float32 vectors (made before index format 2; its rows keep
their form after the upgrade): each stored vector is compared with its float16 rounding, and the
BEIR test queries (encoded by the index's ONNX export) are ranked exactly against both.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import numpy as np

from benchmarks.measure import ROOT, load_beir, ndcg_at_k
from indexer.store import layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index with float32 rows")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    args = parser.parse_args()
    db = sqlite3.connect(f"file:{layout.db_file(args.index)}?mode=ro", uri=True)
    dimension = int(db.execute("SELECT value FROM meta WHERE key='dimension'").fetchone()[0])
    rows = db.execute("SELECT paper_id, embedding FROM papers ORDER BY rowid").fetchall()
    db.close()
    wide = [(pid, blob) for pid, blob in rows if len(blob) == 4 * dimension]
    if len(wide) < len(rows):
        raise SystemExit(f"{len(rows) - len(wide)} of {len(rows)} rows store float16 already: pass an index "
                         "made before index format 2")
    float32 = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in wide])
    ids = [pid for pid, _ in wide]
    float16 = float32.astype(np.float16).astype(np.float32)
    cosine = (float32 * float16).sum(1) / np.linalg.norm(float32, axis=1) / np.linalg.norm(float16, axis=1)
    print(f"{len(ids)} vectors: cosine float32 vs float16 mean {cosine.mean():.8f}, min {cosine.min():.8f}; "
          f"largest component difference {np.abs(float32 - float16).max():.2e}")

    from models.config import Settings
    from search.engine import SearchEngine

    _, queries, qrels = load_beir(args.corpus)
    judged = [q for q in queries if q in qrels]
    engine = SearchEngine.open(Settings(index_dir=args.index))
    vectors = engine.encoder.encode([queries[q] for q in judged], "query").astype(np.float32)
    engine.close()
    rankings = {}
    for name, matrix in (("float32", float32), ("float16", float16)):
        top = np.argsort(-(vectors @ matrix.T), axis=1)[:, :10]
        rankings[name] = {q: [ids[i] for i in row] for q, row in zip(judged, top, strict=True)}
        print(f"dense nDCG@10 with {name} vectors: {ndcg_at_k(rankings[name], {q: qrels[q] for q in judged}):.4f}")
    same = sum(rankings["float32"][q] == rankings["float16"][q] for q in judged)
    print(f"queries with the identical top-10: {same} of {len(judged)}")


if __name__ == "__main__":
    main()
