"""Small measuring tools for the benchmarks: timers, latency statistics, memory, nDCG, recall.

Nothing here asserts a speed: figures are printed, and judged by the person reading them.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


# --- time and memory ----------------------------------------------------------------------------


class Timer:
    """Wall and CPU seconds of a block: `with Timer() as t: ...; t.wall, t.cpu`.

    CPU seconds (user + system, all threads) are reported beside wall seconds because the
    machine is shared: wall time grows with other people's load, CPU time much less.
    """

    def __enter__(self) -> Timer:
        self._wall, self._cpu = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = _cpu_seconds() - self._cpu


def _cpu_seconds() -> float:
    return time.process_time()  # user + system of every thread, at ns resolution


def rss_bytes() -> int:
    """The resident set size of this process now (Linux /proc), else its peak."""
    return _status_bytes("VmRSS:")


def peak_rss_bytes() -> int:
    """This process's own peak RSS (VmHWM; ru_maxrss can carry a parent's peak across exec)."""
    return _status_bytes("VmHWM:")


def anon_rss_bytes() -> int:
    """Resident memory of this process that no file backs (RssAnon): RSS less the pages of
    mapped files (the model, tantivy's segments), which the kernel can drop and share."""
    return _status_bytes("RssAnon:")


def _status_bytes(key: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load_average() -> str:
    """The 1-minute load average, to print next to figures taken on a shared machine."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


@dataclass
class Latency:
    """Per-call latencies in milliseconds and the throughput they were taken at."""

    samples_ms: list[float]
    wall_s: float
    concurrency: int = 1
    cpu_s: float = float("nan")   # process CPU seconds (all threads) over the whole run

    @property
    def cpu_ms(self) -> float:
        """Process CPU milliseconds per call: what a call costs, however loaded the machine is."""
        return 1000 * self.cpu_s / len(self.samples_ms)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]

    @property
    def qps(self) -> float:
        return len(self.samples_ms) / self.wall_s if self.wall_s else float("nan")


def time_calls(call: Callable[[object], object], inputs: Sequence, concurrency: int = 1,
               warmup: int = 3) -> Latency:
    """Latency of `call(x)` over `inputs`, run by `concurrency` threads at once."""
    for item in inputs[:warmup]:
        call(item)

    def one(item) -> float:
        started = time.perf_counter()
        call(item)
        return (time.perf_counter() - started) * 1000

    started, cpu = time.perf_counter(), _cpu_seconds()
    if concurrency == 1:
        samples = [one(item) for item in inputs]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            samples = list(pool.map(one, inputs))
    return Latency(samples, time.perf_counter() - started, concurrency, _cpu_seconds() - cpu)


def run_python(code: str, env: dict | None = None, timeout: float = 600) -> tuple[float, str]:
    """Run `python -c code` from the repo root in a fresh process; (wall seconds, stdout)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"subprocess failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, done.stdout


def run_command(argv: list[str], timeout: float = 600) -> float:
    """Wall seconds of a command run from the repo root (its output is discarded)."""
    return run_command_cpu(argv, timeout)[0]


def run_command_cpu(argv: list[str], timeout: float = 600) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a command run from the repo root; output discarded."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


# --- relevance ----------------------------------------------------------------------------------


def ndcg_at_k(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]], k: int = 10) -> float:
    """Mean nDCG@k over the queries in `qrels` (binary or graded gains, BEIR/trec_eval style)."""
    from search.metrics import ndcg_at_k as one_query  # the one definition `papersearch eval` uses

    scores = [one_query(ranked.get(query_id, []), judged, k) for query_id, judged in qrels.items()]
    return sum(scores) / len(scores) if scores else float("nan")


def recall_at_k(approximate: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-k ids that the approximate top-k also returns (mean over queries)."""
    hits = 0
    for got, want in zip(approximate[:, :k], exact[:, :k], strict=True):
        wanted = set(want[want >= 0].tolist())
        hits += len(wanted & set(got.tolist())) / max(1, len(wanted))
    return hits / len(exact)


# --- BEIR data ------------------------------------------------------------------------------------


def read_jsonl(path: Path) -> Iterable[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def beir_file(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.jsonl.gz", f"{stem}.jsonl"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no {stem}.jsonl(.gz) in {folder}")


def load_beir(folder: Path, split: str = "test") -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus records, query id -> text, qrels) of a BEIR folder; queries limited to the split."""
    corpus = list(read_jsonl(beir_file(folder, "corpus")))
    queries = {str(q["_id"]): q["text"] for q in read_jsonl(beir_file(folder, "queries"))}
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as handle:
        next(handle)  # header
        for line in handle:
            query_id, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(query_id, {})[doc_id] = int(score)
    return corpus, {q: queries[q] for q in qrels}, qrels


def subset_corpus(corpus: list[dict], qrels: dict[str, dict[str, int]], size: int, seed: int = 0) -> list[dict]:
    """Every judged-relevant document plus random others, `size` in all (fixed seed)."""
    relevant = {doc for judged in qrels.values() for doc in judged}
    keep = [d for d in corpus if str(d["_id"]) in relevant]
    others = [d for d in corpus if str(d["_id"]) not in relevant]
    random.Random(seed).shuffle(others)
    return keep + others[:max(0, size - len(keep))]


def write_papers_jsonl(records: list[dict], path: Path) -> Path:
    """BEIR corpus records as PaperSearch JSONL (id, title, abstract)."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"id": str(record["_id"]), "title": record.get("title") or "",
                                     "abstract": record.get("text") or ""}) + "\n")
    return path


def document_text(record: dict) -> str:
    """The text PaperSearch embeds for a BEIR record (title + " " + text), for the peer too."""
    return f"{record.get('title') or ''} {record.get('text') or ''}".strip()
