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

    encoders = {backend: reference if backend == "torch" else create_embedder(
        DEFAULT_MODEL, backend, export_dir, threads=args.threads, batch_size=args.batch_size)
        for backend in backends}
    vectors, wall, cpu = _interleaved_raw(encoders, texts, rounds=3)

    table = Table(f"Encoding vs indexing, {len(texts)} SciFact abstracts (batch {args.batch_size})",
                  ["backend", "raw CPU ms/paper", "CPU speed vs torch", "raw papers/s (wall)",
                   "in-run encode papers/s", "indexing papers/s", "indexing / encode",
                   "pipeline overhead (% of encode)", "cosine to torch (min)", "cosine to torch (mean)"])
    for backend, encoder in encoders.items():
        report = index_file(Settings(index_dir=work / f"index-{backend}", backend=backend, threads=args.threads,
                                     batch_size=args.batch_size), source, embedder=encoder)
        index_seconds = report.seconds - report.export_seconds
        pipeline = index_seconds - report.encode_seconds
        cosines = np.sum(vectors[backend] * vectors.get("torch", vectors[backend]), axis=1)
        cpu_ms = 1000 * cpu[backend] / len(texts)
        speed = cpu["torch"] / cpu[backend] if "torch" in cpu else None
        table.add(backend, cpu_ms, speed, len(texts) / wall[backend], report.embedded / report.encode_seconds,
                  report.indexed / index_seconds, report.encode_seconds / index_seconds,
                  100 * pipeline / report.encode_seconds,
                  float(cosines.min()) if "torch" in vectors else None,
                  float(cosines.mean()) if "torch" in vectors else None)
    if "onnx" in vectors and "onnx-int8" in vectors:
        cos = np.sum(vectors["onnx"] * vectors["onnx-int8"], axis=1)
        table.notes.append(f"onnx-int8 cosine to onnx fp32: mean {cos.mean():.4f}, min {cos.min():.4f}")
    table.notes.append("raw = encoder.encode straight over the texts, the backends interleaved in 3 rounds so a "
                       "changing load hits them alike; CPU ms/paper = process CPU time per paper (robust on a "
                       "shared machine, wall rates are not)")
    table.notes.append("in-run encode / indexing = the same index_file run: model time vs the whole run (read, "
                       "hash, SQLite, FAISS; export excluded); overhead = (indexing - encode) / encode")
    table.notes.append(f"load average after the runs: {load_average()} (2 cores shared by several people)")
    return [table, one_time] if one_time.rows else [table]


def _interleaved_raw(encoders: dict, texts: list[str], rounds: int):
    """Encode `texts` once per backend, in `rounds` slices taken in turn; vectors, wall s, CPU s."""
    for encoder in encoders.values():
        encoder.encode(texts[:4], "document")  # load and warm up outside the timing
    parts: dict[str, list[np.ndarray]] = {b: [] for b in encoders}
    wall = dict.fromkeys(encoders, 0.0)
    cpu = dict.fromkeys(encoders, 0.0)
    size = -(-len(texts) // rounds)
    for start in range(0, len(texts), size):
        for backend, encoder in encoders.items():
            with Timer() as t:
                parts[backend].append(encoder.encode(texts[start:start + size], "document"))
            wall[backend] += t.wall
            cpu[backend] += t.cpu
    return {b: np.concatenate(v) for b, v in parts.items()}, wall, cpu
