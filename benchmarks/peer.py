"""Peer section: txtai, LanceDB and Chroma beside PaperSearch, on the same corpus.

txtai: the same local model files, end to end (this module). LanceDB and Chroma: the same stored
vectors and query vectors, engine against engine (benchmarks/peer_vectors.py).

txtai (sentence-transformers + FAISS + SQLite content + API) is the closest open-source peer.
Both index the same documents (title + " " + text) with all-MiniLM-L6-v2 from the same folder,
offline, then answer the same test queries. Indexing is timed end to end in a fresh process
(model load included, as a user runs it); query latency in-process after loading, with one
torch thread for txtai (its best case here: two spin and stall on two shared cores).
txtai is a benchmark-only extra: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import json
import shutil
import sys

from benchmarks.measure import (
    document_text,
    load_average,
    load_beir,
    ndcg_at_k,
    run_command,
    run_python,
    subset_corpus,
    time_calls,
    write_papers_jsonl,
)
from benchmarks.tables import Table
from models.config import Settings
from models.embedder import resolve_model_path

_TXTAI_INDEX = """
import json, time
t = time.perf_counter()
from txtai import Embeddings
docs = [json.loads(line) for line in open({source!r})]
embeddings = Embeddings(path={model!r}, method="sentence-transformers", content=True, backend="faiss")
embeddings.index((d["id"], d["text"], None) for d in docs)
embeddings.save({target!r})
print(time.perf_counter() - t)
"""

_TXTAI_FIRST_QUERY = """
import time
t = time.perf_counter()
from txtai import Embeddings
embeddings = Embeddings()
embeddings.load({target!r})
embeddings.search({query!r}, 10)
print(time.perf_counter() - t)
"""

_PAPERSEARCH_FIRST_QUERY = """
import time
t = time.perf_counter()
from models.config import Settings
from search.engine import SearchEngine
SearchEngine.open(Settings(index_dir={target!r})).search({query!r}, limit=10)
print(time.perf_counter() - t)
"""


def run(args) -> list[Table]:
    try:
        import txtai  # noqa: F401
    except ImportError:
        table = Table("Peer comparison with txtai", ["status"])
        table.add("skipped: txtai is not installed (pip install -e '.[bench]')")
        return [table]
    corpus, queries, qrels = load_beir(args.corpus)
    docs = subset_corpus(corpus, qrels, args.peer_docs) if args.peer_docs else corpus
    work = args.workdir / "peer"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = write_papers_jsonl(docs, work / "papers.jsonl")
    with open(work / "txtai-docs.jsonl", "w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps({"id": str(doc["_id"]), "text": document_text(doc)}) + "\n")
    model = resolve_model_path("all-MiniLM-L6-v2")
    texts = [queries[q] for q in queries][:args.queries]
    query_ids = list(queries)[:args.queries]

    ours, theirs = work / "papersearch-index", work / "txtai-index"
    index_ours = run_command([sys.executable, "-m", "api.cli", "index", str(source), "--index", str(ours),
                              "--backend", "onnx", "--quiet"], timeout=3600)
    index_theirs = float(run_python(_TXTAI_INDEX.format(source=str(work / "txtai-docs.jsonl"), model=model,
                                                        target=str(theirs)), timeout=3600)[1])
    first_ours = sorted(float(run_python(_PAPERSEARCH_FIRST_QUERY.format(target=str(ours), query=texts[0]))[1])
                        for _ in range(3))[1]
    first_theirs = sorted(float(run_python(_TXTAI_FIRST_QUERY.format(target=str(theirs), query=texts[0]))[1])
                          for _ in range(3))[1]

    ours_latency, ours_ranked = _papersearch_queries(ours, query_ids, texts)
    theirs_latency, theirs_ranked = _txtai_queries(theirs, query_ids, texts)
    judged = {q: qrels[q] for q in query_ids}
    ours_ndcg, theirs_ndcg = ndcg_at_k(ours_ranked, judged), ndcg_at_k(theirs_ranked, judged)

    table = Table(f"PaperSearch vs txtai, {len(docs):,} SciFact documents, {len(texts)} test queries",
                  ["figure", "PaperSearch", "txtai", "PaperSearch / txtai", "better"])
    rows = (
        ("indexing, fresh process, s", index_ours, index_theirs, "lower"),
        ("load + first query, fresh process, s", first_ours, first_theirs, "lower"),
        ("query p50, in-process, ms", ours_latency.p50, theirs_latency.p50, "lower"),
        ("query p99, in-process, ms", ours_latency.p99, theirs_latency.p99, "lower"),
        ("query CPU ms/query", ours_latency.cpu_ms, theirs_latency.cpu_ms, "lower"),
        ("nDCG@10 (dense)", ours_ndcg, theirs_ndcg, "higher"),
    )
    for name, mine, peer, better in rows:
        table.add(name, mine, peer, mine / peer if peer else None, better)
    table.notes.append(f"PaperSearch: papersearch index --backend onnx (export included), dense search, ONNX "
                       f"queries; txtai {_txtai_version()}: Embeddings(method='sentence-transformers', "
                       "content=True, backend='faiss'), defaults otherwise")
    table.notes.append(f"documents: every judged-relevant one plus random others (seed 0); "
                       f"load average {load_average()}")
    return [table, *_vector_peers(args)]


def _vector_peers(args) -> list[Table]:
    """LanceDB and Chroma next to PaperSearch from the same stored vectors (benchmarks/peer_vectors.py)."""
    try:
        import chromadb  # noqa: F401
        import lancedb  # noqa: F401
    except ImportError:
        table = Table("Peer comparison with LanceDB and Chroma", ["status"])
        table.add("skipped: lancedb or chromadb is not installed (pip install -e '.[bench]')")
        return [table]
    from benchmarks import peer_vectors

    return peer_vectors.run(args)


def _papersearch_queries(index_dir, query_ids, texts):
    from search.engine import SearchEngine

    engine = SearchEngine.open(Settings(index_dir=index_dir))
    ranked = {}

    def search(item):
        query_id, text = item
        ranked[query_id] = [h.paper.paper_id for h in engine.search(text, limit=10, mode="dense")]

    latency = time_calls(search, list(zip(query_ids, texts, strict=True)))
    engine.close()
    return latency, ranked


def _txtai_queries(index_dir, query_ids, texts):
    import torch
    from txtai import Embeddings

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    embeddings = Embeddings()
    embeddings.load(str(index_dir))
    ranked = {}

    def search(item):
        query_id, text = item
        ranked[query_id] = [str(r["id"]) for r in embeddings.search(text, 10)]

    try:
        latency = time_calls(search, list(zip(query_ids, texts, strict=True)))
    finally:
        torch.set_num_threads(threads)
    return latency, ranked


def _txtai_version() -> str:
    from importlib.metadata import version

    return version("txtai")
