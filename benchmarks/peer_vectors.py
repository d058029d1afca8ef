"""Peer section, part two: PaperSearch, LanceDB and Chroma from the same ready vectors.

Every system gets the whole corpus's stored MiniLM document vectors and the same query vectors
(encoded once here), so the figures compare the engines, not the models: build time from ready
vectors, bytes on disk (the files as they add up; PaperSearch without its ONNX query encoder, which
the peers do not have), RSS after the queries, nDCG@10 and p50/p99 per mode with the query vector
given. Each system runs in a fresh process (benchmarks/peer_systems.py), one after another.
LanceDB and Chroma are benchmark-only extras: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.bench import corpus_index
from benchmarks.measure import ROOT, load_average, load_beir, ndcg_at_k
from benchmarks.tables import Table

PEERS = {"lancedb": "LanceDB", "chroma": "Chroma"}
MODES = ("dense", "lexical", "hybrid")


def run(args) -> list[Table]:
    work = args.workdir / "peer-vectors"
    work.mkdir(parents=True, exist_ok=True)
    _, queries, qrels = load_beir(args.corpus)
    judged = [q for q in queries if q in qrels][:args.queries]
    _prepare(corpus_index(args), {q: queries[q] for q in judged}, work)
    results = {"papersearch": {**_child("papersearch", work), **_child("papersearch-given", work)}}
    for system in PEERS:
        results[system] = _child(system, work)
    return [_table(results, {q: qrels[q] for q in judged}, len(judged))]


def _prepare(index_dir: Path, queries: dict[str, str], work: Path) -> None:
    """The documents with their stored vectors, and the queries encoded once, as files."""
    from indexer.store import IndexStore
    from models.config import Settings
    from search.engine import SearchEngine

    store = IndexStore.open(index_dir)
    papers = [paper for _, paper in store.iter_papers()]  # rowid order, as iter_embeddings
    matrix = np.concatenate([m for _, m in store.iter_embeddings()])
    store.close()
    with (work / "docs.jsonl").open("w", encoding="utf-8") as out:
        for paper in papers:
            out.write(json.dumps({"id": paper.paper_id, "title": paper.title, "text": paper.abstract}) + "\n")
    np.save(work / "docs.npy", matrix)
    engine = SearchEngine.open(Settings(index_dir=index_dir))
    np.save(work / "queries.npy", engine.encoder.encode(list(queries.values()), "query").astype(np.float32))
    engine.close()
    with (work / "queries.jsonl").open("w", encoding="utf-8") as out:
        for query_id, text in queries.items():
            out.write(json.dumps({"id": query_id, "text": text}) + "\n")


def _child(system: str, work: Path) -> dict | None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.peer_systems", system, str(work)], cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"(peer {system} failed: {reason})", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(results: dict, qrels: dict, count: int) -> Table:
    ours = results["papersearch"]
    peers = [s for s in PEERS if results.get(s)]
    columns = ["figure", "PaperSearch"] + [PEERS[s] for s in peers] + [f"PaperSearch / {PEERS[s]}" for s in peers]
    table = Table(f"PaperSearch, LanceDB and Chroma from the same vectors, {count} queries", columns)

    def row(name, pick, better):
        mine = pick(ours)
        theirs = [pick(results[s]) for s in peers]
        ratios = [mine / t if (mine is not None and t) else None for t in theirs]
        table.add(f"{name} ({better} is better)", mine, *theirs, *ratios)

    for mode in MODES:
        row(f"nDCG@10 {mode}", lambda r, m=mode: _ndcg(r, m, qrels), "higher")
    for mode in MODES:
        for stat in ("p50_ms", "p99_ms"):
            row(f"{mode} {stat[:3]} ms, vector given", lambda r, m=mode, s=stat: _stat(r, m, s), "lower")
    for mode in MODES:
        row(f"{mode} p50 ms, vector given, no snippets", lambda r, m=mode: _stat(r, _plain(r, m), "p50_ms"),
            "lower")
    row("build from ready vectors, s", lambda r: r["build_s"], "lower")
    row("on disk, MB", lambda r: r["disk_bytes"] / 1e6, "lower")
    row("RSS after queries, MB", lambda r: r["rss_bytes"] / 1e6, "lower")
    for mode in MODES:
        table.notes.append(f"PaperSearch {mode} end to end (query encoded by its ONNX model): "
                           f"p50 {ours['end_to_end'][mode]['p50_ms']:.2f} ms, "
                           f"p99 {ours['end_to_end'][mode]['p99_ms']:.2f} ms")
    table.notes.append("every system times each mode after one untimed pass over the same queries (steady state)")
    table.notes.append("the peers' 'no snippets' rows repeat their only figure: they return no snippets; "
                       "PaperSearch disk excludes its onnx/ query encoder (the peers take vectors only)")
    table.notes.append(f"LanceDB hybrid: its default RRF reranker; Chroma: no local full-text search; "
                       f"{_versions()}; load average {load_average()}")
    return table


def _ndcg(result: dict, mode: str, qrels: dict) -> float | None:
    found = result["modes"].get(mode)
    return ndcg_at_k(found["ranked"], qrels) if found else None


def _plain(result: dict, mode: str) -> str:
    """The mode's no-snippet variant where the system has one (only PaperSearch makes snippets)."""
    return f"{mode} no snippets" if f"{mode} no snippets" in result["modes"] else mode


def _stat(result: dict, mode: str, stat: str) -> float | None:
    found = result["modes"].get(mode)
    return found[stat] if found else None


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("lancedb", "chromadb"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} not installed")
    return ", ".join(found)
