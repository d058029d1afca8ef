"""Encode section: raw model encode papers/s next to indexing papers/s, per backend, one run.

For each backend the same N abstracts are encoded straight through the model (before and after
the indexing run, averaged, since the machine may be shared), then indexed into a fresh index
with that same, already loaded, encoder. The gap is the pipeline: reading, hashing, SQLite, FAISS.
"""

from __future__ import annotations

import shutil

import numpy as np

from benchmarks.measure import Timer, load_average, load_beir, write_papers_jsonl
from benchmarks.tables import Table
from indexer.build import index_file
from indexer.ingest import read_papers
from indexer.store import onnx_export_dir
from models import onnx_encoder
from models.config import DEFAULT_MODEL, Settings
from models.embedder import Embedder, create_embedder
from models.paper import embed_text


def run(args) -> list[Table]:
    corpus, _, _ = load_beir(args.corpus)
    records = corpus[:args.sample]
    work = args.workdir / "encode"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = write_papers_jsonl(records, work / "sample.jsonl")
    texts = [embed_text(item.paper) for item in read_papers(source) if hasattr(item, "paper")]

    reference = Embedder(DEFAULT_MODEL, threads=args.threads, batch_size=args.batch_size)
    export_dir = onnx_export_dir(args.workdir / "exports", reference.fingerprint)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    one_time = Table("One-time ONNX export (per index and model)", ["step", "seconds"])
    if any(b.startswith("onnx") for b in backends):
        shutil.rmtree(export_dir, ignore_errors=True)
        reference.encode(texts[:2], "document")  # load torch outside the export timing
        with Timer() as t:
            onnx_encoder.export(reference, export_dir)
        one_time.add("torch.onnx.export + check (fp32)", t.wall)
        with Timer() as t:
            onnx_encoder.quantize(export_dir)
        one_time.add("quantize_dynamic int8 (per-channel, reduced range)", t.wall)

    table = Table(f"Encoding vs indexing, {len(texts)} SciFact abstracts (batch {args.batch_size})",
                  ["backend", "raw encode papers/s", "CPU ms/paper", "indexing papers/s", "indexing / raw",
                   "pipeline overhead (% of encode)", "cosine to torch (min)", "cosine to torch (mean)"])
    vectors: dict[str, np.ndarray] = {}
    rates: dict[str, float] = {}
    for backend in backends:
        encoder = reference if backend == "torch" else create_embedder(
            DEFAULT_MODEL, backend, export_dir, threads=args.threads, batch_size=args.batch_size, spin=True)
        encoder.encode(texts[:4], "document")  # warm up: load, allocate
        with Timer() as before:
            vectors[backend] = encoder.encode(texts, "document")
        target = work / f"index-{backend}"
        report = index_file(Settings(index_dir=target, backend=backend, threads=args.threads,
                                     batch_size=args.batch_size), source, embedder=encoder)
        with Timer() as after:
            encoder.encode(texts, "document")
        raw_seconds = (before.wall + after.wall) / 2
        index_seconds = report.seconds - report.export_seconds
        overhead = (index_seconds - report.encode_seconds) / report.encode_seconds
        rates[backend] = len(texts) / raw_seconds
        cosines = np.sum(vectors[backend] * vectors.get("torch", vectors[backend]), axis=1)
        table.add(backend, rates[backend], 1000 * (before.cpu + after.cpu) / 2 / len(texts),
                  len(texts) / index_seconds, len(texts) / index_seconds / rates[backend],
                  100 * overhead, float(cosines.min()) if "torch" in vectors else None,
                  float(cosines.mean()) if "torch" in vectors else None)
    if "torch" in rates:
        for backend in rates:
            if backend != "torch":
                table.notes.append(f"{backend} raw encode rate = {rates[backend] / rates['torch']:.2f}x torch")
    if "onnx" in vectors and "onnx-int8" in vectors:
        cos = np.sum(vectors["onnx"] * vectors["onnx-int8"], axis=1)
        table.notes.append(f"onnx-int8 cosine to onnx fp32: mean {cos.mean():.4f}, min {cos.min():.4f}")
    table.notes.append("raw encode = the same texts straight through encoder.encode, timed before and after "
                       "the indexing run and averaged; indexing = index_file with that loaded encoder "
                       "(export time excluded); overhead = (indexing - encode) / encode seconds")
    table.notes.append(f"load average after the runs: {load_average()} (2 cores shared: wall rates vary)")
    return [table, one_time] if one_time.rows else [table]
