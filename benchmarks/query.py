"""Query section: encoder latency, search latency and QPS, startup, memory and nDCG@10.

Everything runs over one index of the BEIR corpus (see bench.corpus_index) with the corpus's
test queries, in this process unless said otherwise (startup runs fresh processes).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator

import numpy as np

from benchmarks.bench import corpus_index
from benchmarks.measure import (
    Timer,
    load_average,
    load_beir,
    ndcg_at_k,
    rss_bytes,
    run_command_cpu,
    run_python,
    time_calls,
)
from benchmarks.memory import disk_table
from benchmarks.tables import Table
from indexer.store import IndexStore, layout, onnx_export_dir
from models import onnx_encoder
from models.config import Settings
from models.embedder import Embedder


def run(args) -> Iterator[Table]:
    index_dir = corpus_index(args)
    _, queries, qrels = load_beir(args.corpus)
    query_ids = list(queries)[:args.queries]
    texts = [queries[q] for q in query_ids]
    yield _startup(args, index_dir, texts[0])
    yield from _latency(args, index_dir, texts, queries, qrels)


# --- startup and memory -------------------------------------------------------------------------


def _startup(args, index_dir, query: str) -> Table:
    table = Table("Startup (fresh processes, median of 3)", ["what", "seconds"])
    cli = [sys.executable, "-m", "api.cli", "search", query, "--index", str(index_dir), "-k", "10"]
    runs = sorted(run_command_cpu(cli) for _ in range(3))
    table.add("CLI search end to end: python -m api.cli search ... (wall)", runs[1][0])
    table.add("the same, CPU seconds (user + system)", sorted(cpu for _, cpu in runs)[1])
    code = ("import time; t=time.perf_counter()\n"
            "from models.config import Settings; from search.engine import QUERY_ENCODER_THREADS, SearchEngine\n"
            f"e = SearchEngine.open(Settings(index_dir={str(index_dir)!r}, threads={args.threads}))\n"
            "print(time.perf_counter()-t)")
    table.add("import + SearchEngine.open (in-process)", sorted(float(run_python(code)[1]) for _ in range(3))[1])
    code = ("import time; t=time.perf_counter()\nimport sentence_transformers\nprint(time.perf_counter()-t)")
    table.add("for scale: import sentence_transformers alone (one run)", float(run_python(code)[1]))
    table.notes.append(f"index: {index_dir}; load average {load_average()}")
    return table


# --- latency and quality ------------------------------------------------------------------------


def _latency(args, index_dir, texts, queries, qrels) -> Iterator[Table]:
    from models.query import MODES
    from search.engine import QUERY_ENCODER_THREADS, SearchEngine

    store = IndexStore.open(index_dir)
    papers = store.count()
    fingerprint = store.model.fingerprint
    store.close()
    export_dir = onnx_export_dir(index_dir, fingerprint)
    if not onnx_encoder.is_exported(export_dir, "onnx-int8"):
        onnx_encoder.quantize(export_dir)

    encoders = Table(f"Query encoding latency, one query per call ({len(texts)} SciFact claims)",
                     ["encoder", "threads", "p50 ms", "p99 ms", "CPU ms/query"])
    threads = args.threads or QUERY_ENCODER_THREADS  # what SearchEngine.open gives the query encoder
    rows = [("onnxruntime fp32", onnx_encoder.OnnxEmbedder(export_dir, "onnx", threads=threads).load(), texts),
            ("onnxruntime fp32", onnx_encoder.OnnxEmbedder(export_dir, "onnx", threads=1).load(), texts),
            ("onnxruntime int8", onnx_encoder.OnnxEmbedder(export_dir, "onnx-int8", threads=threads).load(), texts),
            ("sentence-transformers (torch)", Embedder(threads=threads), texts[:100])]
    for name, encoder, sample in rows:
        latency = time_calls(lambda q, e=encoder: e.encode([q], "query"), sample)
        encoders.add(name, encoder.threads, latency.p50, latency.p99, latency.cpu_ms)
    encoders.notes.append("in-process, after warm-up; the first row is what searches use; torch timed on the "
                          "first 100 claims; CPU ms/query = process CPU time / queries (robust to a shared machine)")

    rss_before = rss_bytes()
    with Timer() as opened:
        engine = SearchEngine.open(Settings(index_dir=index_dir, threads=args.threads))
    rss_after = rss_bytes()
    searches = Table(f"Search latency in-process, {papers:,} papers ({engine.index_kind} index)",
                     ["mode", "concurrency", "p50 ms", "p99 ms", "QPS", "CPU ms/query", "nDCG@10"])
    for mode in MODES:
        ranked = {}

        def search(item, mode=mode, ranked=ranked):
            query_id, text = item
            ranked[query_id] = [h.paper.paper_id for h in engine.search(text, limit=10, mode=mode)]

        items = [(q, queries[q]) for q in list(queries)[:len(texts)]]
        one = time_calls(search, items)
        quality = ndcg_at_k(ranked, {q: qrels[q] for q in ranked})
        searches.add(mode, 1, one.p50, one.p99, one.qps, one.cpu_ms, quality)
        eight = time_calls(search, items * 2, concurrency=8)
        searches.add(mode, 8, eight.p50, eight.p99, eight.qps, eight.cpu_ms, None)
    variant = getattr(engine.encoder, "variant", "torch")
    searches.notes.append(f"query encoder: {type(engine.encoder).__name__} ({variant})"
                          f"; engine open {opened.wall:.2f} s; load average {load_average()}")
    searches.notes.append(f"memory: +{(rss_after - rss_before) / 2**20:.0f} MiB RSS after open, incl. the ONNX "
                          "session (RSS per paper is a slope over sizes: `bench memory`)")
    engine.close()
    yield encoders
    yield searches
    yield disk_table([(papers, index_dir)], f"{index_dir}; the parts add up to the files on disk")
    yield _int8_quality(args, index_dir, queries, qrels, rows[2][1])


def _int8_quality(args, index_dir, queries, qrels, int8) -> Table:
    """nDCG@10 of int8 against fp32: int8 queries on the fp32 index, and all-int8 if asked for."""
    from search.engine import SearchEngine

    table = Table("int8 quality on SciFact (dense, nDCG@10 over the test queries)",
                  ["documents", "queries", "nDCG@10", "change vs fp32"])

    def ndcg(engine) -> float:
        ranked = {q: [h.paper.paper_id for h in engine.search(queries[q], limit=10, mode="dense")] for q in queries}
        return ndcg_at_k(ranked, qrels)

    fp32 = SearchEngine.open(Settings(index_dir=index_dir, threads=args.threads))
    base = ndcg(fp32)
    fp32.close()
    table.add("fp32 (torch)", "fp32 (onnx)", base, 0.0)
    mixed = SearchEngine.open(Settings(index_dir=index_dir, threads=args.threads), encoder=int8)
    table.add("fp32 (torch)", "int8", ndcg(mixed), ndcg(mixed) - base)
    mixed.close()
    if args.int8_index:
        from benchmarks.measure import beir_file
        from indexer.build import index_file

        target = args.workdir / f"{args.corpus.name}-int8-index"
        if not layout.db_file(target).is_file():
            shutil.rmtree(target, ignore_errors=True)
            with Timer() as t:
                index_file(Settings(index_dir=target, backend="onnx-int8", threads=args.threads),
                           beir_file(args.corpus, "corpus"), fmt="beir")
            table.notes.append(f"int8 index built in {t.wall:.0f} s")
        for query_variant in ("onnx", "onnx-int8"):
            engine = SearchEngine.open(Settings(index_dir=target, threads=args.threads, backend=query_variant))
            value = ndcg(engine)
            engine.close()
            table.add("int8", "fp32 (onnx)" if query_variant == "onnx" else "int8", value, value - base)
    cos = _int8_cosine(index_dir, int8, queries)
    table.notes.append(f"query vectors int8 vs fp32: cosine mean {cos[0]:.4f}, min {cos[1]:.4f}")
    return table


def _int8_cosine(index_dir, int8, queries) -> tuple[float, float]:
    store = IndexStore.open(index_dir)
    export_dir = onnx_export_dir(index_dir, store.model.fingerprint)
    store.close()
    fp32 = onnx_encoder.OnnxEmbedder(export_dir, "onnx")
    texts = list(queries.values())
    cos = np.sum(fp32.encode(texts, "query") * int8.encode(texts, "query"), axis=1)
    return float(cos.mean()), float(cos.min())
