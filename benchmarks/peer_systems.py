"""One system of the vector-given peer comparison, in a fresh process of its own.

`python -m benchmarks.peer_systems SYSTEM WORKDIR` reads the prepared inputs in WORKDIR (documents
with their stored MiniLM vectors, queries with their vectors, written by benchmarks/peer_vectors.py),
builds SYSTEM's index from those ready vectors under WORKDIR/SYSTEM, times every query mode one
query at a time, and prints one JSON object: build seconds, bytes on disk, RSS, per-mode latency
and rankings. Each system gets the same vectors, so ranking differences are the systems' own.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.footprint import disk_parts, index_bytes, tree_bytes
from benchmarks.measure import rss_bytes, time_calls


def _inputs(work: Path):
    docs = [json.loads(line) for line in (work / "docs.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (work / "queries.jsonl").open(encoding="utf-8")]
    return docs, np.load(work / "docs.npy"), queries, np.load(work / "queries.npy")


def _timed_modes(modes: dict[str, Callable], queries, query_vectors) -> dict:
    """Per mode: p50/p99 ms and the top-10 ids of every query (one query at a time, after a warm pass)."""
    out = {}
    for mode, run in modes.items():
        ranked: dict[str, list[str]] = {}

        def call(i, run=run, ranked=ranked):
            ranked[queries[i]["id"]] = run(queries[i]["text"], query_vectors[i])

        # Steady state for every system alike: one untimed pass over the mode's queries first, so
        # no figure includes a first query's one-off costs (caches, lazy imports, page faults).
        latency = time_calls(call, list(range(len(queries))), warmup=len(queries))
        out[mode] = {"p50_ms": latency.p50, "p99_ms": latency.p99, "ranked": ranked}
    return out


def papersearch(work: Path) -> dict:
    from indexer.build import IndexReport, IndexWriter
    from models.config import Settings
    from models.paper import Paper, content_hash
    from search.engine import SearchEngine

    docs, vectors, queries, query_vectors = _inputs(work)
    target = work / "papersearch"
    shutil.rmtree(target, ignore_errors=True)
    settings = Settings(index_dir=target, backend="onnx")
    papers = [Paper(paper_id=d["id"], title=d["title"], abstract=d["text"]) for d in docs]
    with IndexWriter(settings) as writer:
        fingerprint = writer.embedder.fingerprint  # the model's identity, not a model call
        started = time.perf_counter()
        precomputed = {content_hash(p, fingerprint): v for p, v in zip(papers, vectors, strict=True)}
        writer.upsert(papers, IndexReport(), precomputed=precomputed, publish=True)
        build = time.perf_counter() - started
    engine = SearchEngine.open(settings)
    end_to_end = _timed_modes({m: _ps_search(engine, m, True) for m in ("dense", "lexical", "hybrid")},
                              queries, query_vectors)
    engine.close()
    return {"build_s": build, "disk_bytes": index_bytes(disk_parts(target)),
            "end_to_end": {m: {k: v for k, v in r.items() if k != "ranked"} for m, r in end_to_end.items()}}


def papersearch_given(work: Path) -> dict:
    """PaperSearch's queries with the vectors given, in a process that never loads the model."""
    from indexer.store import IndexStore
    from models.config import Settings
    from search.engine import SearchEngine

    _, _, queries, query_vectors = _inputs(work)
    settings = Settings(index_dir=work / "papersearch")
    store = IndexStore.open(settings.index_dir)
    info = store.model
    store.close()
    given = dict(zip((q["text"] for q in queries), query_vectors, strict=True))
    engine = SearchEngine.open(settings, encoder=_GivenVectors(given, info))
    modes = {m: _ps_search(engine, m, True) for m in ("dense", "lexical", "hybrid")}
    modes.update({f"{m} no snippets": _ps_search(engine, m, False) for m in ("dense", "lexical", "hybrid")})
    result = {"modes": _timed_modes(modes, queries, query_vectors), "rss_bytes": rss_bytes()}
    engine.close()
    return result


def _ps_search(engine, mode: str, snippets: bool) -> Callable:
    def run(text, vector):
        return [h.paper.paper_id for h in engine.search(text, limit=10, mode=mode, snippets=snippets)]
    return run


class _GivenVectors:
    """A query encoder answering from precomputed vectors (the peers get the same ones)."""

    def __init__(self, given: dict[str, np.ndarray], info):
        self._given, self.info = given, info

    def encode(self, texts, kind="query"):
        return np.stack([self._given[t] for t in texts])


def lancedb(work: Path) -> dict:
    import lancedb as lance
    import pyarrow as pa

    docs, vectors, queries, query_vectors = _inputs(work)
    target = work / "lancedb"
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    db = lance.connect(str(target))
    data = pa.table({"id": [d["id"] for d in docs], "text": [f"{d['title']} {d['text']}".strip() for d in docs],
                     "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])})
    table = db.create_table("papers", data=data)
    table.create_fts_index("text")
    build = time.perf_counter() - started
    table = lance.connect(str(target)).open_table("papers")

    def dense(text, vector):
        return [r["id"] for r in table.search(vector).metric("cosine").limit(10).select(["id"]).to_list()]

    def lexical(text, vector):
        return [r["id"] for r in table.search(text, query_type="fts").limit(10).select(["id"]).to_list()]

    def hybrid(text, vector):
        found = table.search(query_type="hybrid").vector(vector).text(text).limit(10).select(["id"]).to_list()
        return [r["id"] for r in found]

    return {"build_s": build, "disk_bytes": tree_bytes(target), "rss_bytes": rss_bytes(),
            "modes": _timed_modes({"dense": dense, "lexical": lexical, "hybrid": hybrid}, queries, query_vectors)}


def chroma(work: Path) -> dict:
    import chromadb

    docs, vectors, queries, query_vectors = _inputs(work)
    target = work / "chroma"
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    client = chromadb.PersistentClient(path=str(target))
    collection = client.create_collection("papers", configuration={"hnsw": {"space": "cosine"}})
    step = client.get_max_batch_size()
    for start in range(0, len(docs), step):
        part = docs[start:start + step]
        collection.add(ids=[d["id"] for d in part], embeddings=vectors[start:start + step],
                       documents=[f"{d['title']} {d['text']}".strip() for d in part])
    build = time.perf_counter() - started

    def dense(text, vector):
        return collection.query(query_embeddings=[vector], n_results=10, include=["documents"])["ids"][0]

    return {"build_s": build, "disk_bytes": tree_bytes(target), "rss_bytes": rss_bytes(),
            "modes": _timed_modes({"dense": dense}, queries, query_vectors)}


SYSTEMS = {"papersearch": papersearch, "papersearch-given": papersearch_given, "lancedb": lancedb, "chroma": chroma}

if __name__ == "__main__":
    system, workdir = sys.argv[1], Path(sys.argv[2])
    print(json.dumps(SYSTEMS[system](workdir), default=float))
