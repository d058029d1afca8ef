"""Bounded load test over loopback: concurrent searches mixed with writes and deletes.

    python benchmarks/load.py --index /work/cache/scifact-minilm --copy \
        --queries ../shared/data/scifact/queries.jsonl.gz --duration 30 --clients 8

Starts `papersearch serve` on 127.0.0.1 (on a private copy of the index with --copy; never on
the original) with a fresh API key, or uses --url/--key. For --duration seconds it runs
--clients search tasks (GET /search with real queries), one writer (POST /papers of new
synthetic papers, --batch per request) and one deleter (DELETE /papers/{id}, alternating
between papers the writer added and original papers seen in results). Then it checks that
every acknowledged write is readable and ranks first for its own text, that every
acknowledged delete is gone from GET and from search, and that the paper count adds up.

A write that meets another write gets 503 index_busy by design; it is retried after a short
pause and counted as `busy`, not as an error. Every other non-2xx answer, timeout or
connection error is an error. Prints a table on stderr and one JSON line on stdout; exits 1
when there was an error or a check failed. Numbers on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from indexer.store import layout

ROOT = Path(__file__).resolve().parent.parent
# A hang guard for one request, not a speed target.
REQUEST_TIMEOUT_SECONDS = 120
# Pause before retrying a write that met another write (the server says Retry-After: 2; a
# load test wants to keep writing, and the busy answer itself is what is being counted).
BUSY_PAUSE_SECONDS = 0.2
WORDS = ("adaptive attention benchmark catalyst coral corpus diffusion enzyme entropy fiber genome glacier "
         "graph helium isotope kernel lattice lens magnet membrane neuron ocean optics photon plasma polymer "
         "protein quantum radar receptor ribosome sediment sensor silicon spectra stellar tensor thermal "
         "tissue topology turbine vaccine vector virus volcano wavelet").split()
FALLBACK_QUERIES = ("lightweight OCR", "protein structure prediction", "graph neural networks",
                    "coral reef bleaching", "vaccine efficacy trial", "quantum error correction")


@dataclass
class Config:
    duration: float = 30.0
    clients: int = 8
    batch: int = 4
    # Seconds a writer or deleter waits after each acknowledged request. Writes do not queue
    # (a second one gets 503 index_busy), so a writer that never paused would starve the
    # deleter: on SciFact it took every write slot for 10 s.
    pause: float = 0.5
    limit: int = 10
    seed: int = 0
    writes: bool = True  # False: searches only, a baseline to compare with
    queries: tuple[str, ...] = FALLBACK_QUERIES


@dataclass
class Kind:
    """What happened to one kind of request."""

    latencies_ms: list[float] = field(default_factory=list)
    busy: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Result:
    elapsed: float = 0.0
    kinds: dict[str, Kind] = field(default_factory=lambda: {k: Kind() for k in ("search", "write", "delete")})
    written: dict[str, str] = field(default_factory=dict)  # acknowledged writes: paper_id -> its text
    deleted: dict[str, str] = field(default_factory=dict)  # acknowledged deletes: paper_id -> a text to search
    papers_before: int = 0
    problems: list[str] = field(default_factory=list)  # failed checks after the run

    @property
    def errors(self) -> list[str]:
        return [e for kind in self.kinds.values() for e in kind.errors]


def synthetic_paper(rng: random.Random, paper_id: str) -> dict:
    """A short paper whose words make its text unique, so searching its text must find it."""
    words = rng.sample(WORDS, 6)
    return {"id": paper_id, "title": f"{words[0].title()} {words[1]} of {words[2]} {rng.randrange(10**6)}",
            "abstract": f"We relate {words[3]} to {words[4]} and {words[5]} in {rng.randrange(10**6)} trials.",
            "year": 2000 + rng.randrange(25), "categories": ["load.test"]}


def paper_text(record: dict) -> str:
    return f"{record['title']} {record['abstract']}"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# --- the load -----------------------------------------------------------------------------------


async def _timed(kind: Kind, request: Awaitable[httpx.Response]) -> httpx.Response | None:
    """Await one request (a coroutine starts only when awaited, so the clock starts here)."""
    started = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as exc:
        kind.errors.append(f"{type(exc).__name__}: {exc}")
        return None
    if response.status_code < 400:
        kind.latencies_ms.append((time.perf_counter() - started) * 1000)
    return response


def _is_busy(response: httpx.Response) -> bool:
    return response.status_code == 503 and response.json().get("error", {}).get("code") == "index_busy"


async def _landed(kind: Kind, send: Callable[[], Awaitable[httpx.Response]], deadline: float) -> httpx.Response | None:
    """The first answer to `send()` that is not 503 index_busy (busy ones are counted and retried),
    or None after a transport error or once time is up."""
    while time.monotonic() < deadline:
        response = await _timed(kind, send())
        if response is None or not _is_busy(response):
            return response
        kind.busy += 1
        await asyncio.sleep(BUSY_PAUSE_SECONDS)
    return None


async def _searcher(url: str, config: Config, rng: random.Random, deadline: float, result: Result,
                    seen: dict[str, str]) -> None:
    kind = result.kinds["search"]
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        while time.monotonic() < deadline:
            query = rng.choice(config.queries)
            response = await _timed(kind, client.get("/search", params={"q": query, "limit": config.limit}))
            if response is None:
                continue
            if response.status_code != 200:
                kind.errors.append(f"GET /search {response.status_code}: {response.text[:200]}")
                continue
            for hit in response.json()["results"]:
                if not hit["paper_id"].startswith("load-"):
                    seen.setdefault(hit["paper_id"], hit["title"])


async def _writer(url: str, auth: dict, config: Config, rng: random.Random, deadline: float, result: Result,
                  run_id: str, written_queue: list[str]) -> None:
    kind = result.kinds["write"]
    number = 0
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS, headers=auth) as client:
        while time.monotonic() < deadline:
            records = [synthetic_paper(rng, f"load-{run_id}-{number + i}") for i in range(config.batch)]
            number += config.batch
            response = await _landed(kind, lambda records=records: client.post("/papers", json=records), deadline)
            if response is None:
                continue
            body = response.json()
            if response.status_code != 200 or body["indexed"] != len(records) or body["rejected"]:
                kind.errors.append(f"POST /papers {response.status_code}: {response.text[:200]}")
                continue
            for record in records:
                result.written[record["id"]] = paper_text(record)
                written_queue.append(record["id"])
            await asyncio.sleep(config.pause)


async def _deleter(url: str, auth: dict, config: Config, rng: random.Random, deadline: float, result: Result,
                   written_queue: list[str], seen: dict[str, str]) -> None:
    kind = result.kinds["delete"]
    want_written = True  # alternate: one of ours, then one of the corpus's, as each becomes available
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS, headers=auth) as client:
        while time.monotonic() < deadline:
            target = None
            if want_written and len(written_queue) >= 2:  # keep some of ours to check afterwards
                target = written_queue.pop(rng.randrange(len(written_queue)))
                text = result.written[target]
            else:
                originals = [pid for pid in seen if pid not in result.deleted]
                if originals:
                    target = rng.choice(originals)  # one of the corpus's own papers
                    text = seen[target]
            if target is None:
                await asyncio.sleep(0.05)
                continue
            path = f"/papers/{target}"
            response = await _landed(kind, lambda path=path: client.delete(path), deadline)
            if response is None:
                continue
            if response.status_code != 200:
                kind.errors.append(f"DELETE {path} {response.status_code}: {response.text[:200]}")
                continue
            result.deleted[target] = text
            want_written = not target.startswith("load-")
            await asyncio.sleep(config.pause)


async def run_load(url: str, key: str, config: Config) -> Result:
    """Drive the server for config.duration seconds; every task finishes its last request."""
    result = Result()
    auth = {"Authorization": f"Bearer {key}"}
    rng = random.Random(config.seed)
    run_id = f"{config.seed}-{secrets.token_hex(3)}"
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        result.papers_before = (await client.get("/health")).json()["papers"]
        await client.get("/search", params={"q": config.queries[0]})  # warm up
    seen: dict[str, str] = {}
    written_queue: list[str] = []
    started = time.monotonic()
    deadline = started + config.duration
    tasks = [_searcher(url, config, random.Random(rng.random()), deadline, result, seen)
             for _ in range(config.clients)]
    if config.writes:
        tasks.append(_writer(url, auth, config, random.Random(rng.random()), deadline, result, run_id,
                             written_queue))
        tasks.append(_deleter(url, auth, config, random.Random(rng.random()), deadline, result, written_queue, seen))
    await asyncio.gather(*tasks)
    result.elapsed = time.monotonic() - started
    return result


# --- the checks afterwards ------------------------------------------------------------------------


def verify(url: str, result: Result, limit: int = 10) -> list[str]:
    """Every acknowledged write readable and first for its own text; every delete gone; counts add up."""
    problems: list[str] = []
    visible = {pid: text for pid, text in result.written.items() if pid not in result.deleted}
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        for paper_id, text in visible.items():
            record = client.get(f"/papers/{paper_id}")
            if record.status_code != 200 or paper_text(record.json()) != text:
                problems.append(f"written {paper_id}: GET answered {record.status_code}")
                continue
            hits = client.get("/search", params={"q": text, "limit": limit}).json()["results"]
            if not hits or hits[0]["paper_id"] != paper_id:
                problems.append(f"written {paper_id}: not first for its own text ({[h['paper_id'] for h in hits]})")
        for paper_id, text in result.deleted.items():
            record = client.get(f"/papers/{paper_id}")
            if record.status_code != 404:
                problems.append(f"deleted {paper_id}: GET answered {record.status_code}")
            hits = client.get("/search", params={"q": text, "limit": limit}).json()["results"]
            if paper_id in {h["paper_id"] for h in hits}:
                problems.append(f"deleted {paper_id}: still found by search")
        papers = client.get("/health").json()["papers"]
    expected = result.papers_before + len(result.written) - len(result.deleted)
    if papers != expected:
        problems.append(f"the index holds {papers} papers, expected {expected}")
    return problems


def summary(result: Result, config: Config) -> dict:
    """The figures: requests/s by kind and client-side latency percentiles, in milliseconds."""
    kinds = {}
    for name, kind in result.kinds.items():
        values = kind.latencies_ms
        kinds[name] = {"ok": len(values), "per_second": round(len(values) / result.elapsed, 2), "busy": kind.busy,
                       "errors": len(kind.errors)}
        if values:
            kinds[name].update({f"p{q}_ms": round(percentile(values, q), 1) for q in (50, 90, 99)})
            kinds[name]["max_ms"] = round(max(values), 1)
    return {"duration_s": round(result.elapsed, 1), "clients": config.clients, "batch": config.batch,
            "pause_s": config.pause, "writes": config.writes,
            "papers_before": result.papers_before, "kinds": kinds, "written": len(result.written),
            "deleted": len(result.deleted), "errors": result.errors[:20], "problems": result.problems[:20],
            "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}


# --- running it from the command line -------------------------------------------------------------


def read_queries(path: Path) -> tuple[str, ...]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return tuple(json.loads(line)["text"] for line in handle if line.strip())


def start_server(index_dir: Path, key: str) -> tuple[subprocess.Popen, str]:
    """`papersearch serve --port 0` on 127.0.0.1; its output is drained so it never blocks."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PAPERSEARCH_API_KEY": key}
    process = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--index", str(index_dir), "--port", "0",
                                "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    for line in process.stdout:
        if "PaperSearch is running at " in line:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, line.split("running at ", 1)[1].split()[0]
    raise SystemExit(f"the server exited with {process.wait()} before printing its URL")


def preload(url: str, key: str, count: int, seed: int, batch: int = 50) -> None:
    """Add `count` short synthetic papers before the timed run (a small index made bigger)."""
    rng = random.Random(seed + 1)
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS, headers={"Authorization": f"Bearer {key}"}) as c:
        for start in range(0, count, batch):
            records = [synthetic_paper(rng, f"preload-{i}") for i in range(start, min(count, start + batch))]
            c.post("/papers", json=records).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="index directory to serve (with --copy, a private copy of it)")
    parser.add_argument("--copy", action="store_true", help="serve a temporary copy: the run writes and deletes")
    parser.add_argument("--url", help="use a running server instead (with --key or $PAPERSEARCH_API_KEY)")
    parser.add_argument("--key", default=os.environ.get("PAPERSEARCH_API_KEY"), help="the server's API key")
    parser.add_argument("--queries", type=Path, help="BEIR queries.jsonl(.gz); default: a few built-in queries")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent search clients (default 8)")
    parser.add_argument("--batch", type=int, default=4, help="papers per POST /papers (default 4)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds a writer/deleter waits after each "
                        "acknowledged request (default 0.5; 0 = back to back)")
    parser.add_argument("--no-writes", action="store_true", help="searches only (a baseline)")
    parser.add_argument("--preload", type=int, default=0, help="synthetic papers to add before the run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.url and not args.index:
        parser.error("give --index (to start a server) or --url")
    if args.url and not args.key:
        parser.error("--url needs --key (or $PAPERSEARCH_API_KEY)")
    config = Config(duration=args.duration, clients=args.clients, batch=args.batch, pause=args.pause, seed=args.seed,
                    writes=not args.no_writes)
    if args.queries:
        config.queries = read_queries(args.queries)
    workdir = Path(tempfile.mkdtemp(prefix="papersearch-load-")) if args.copy else None
    process = None
    try:
        url, key = args.url, args.key
        if not url:
            index_dir = args.index
            if workdir is not None:
                index_dir = workdir / "index"
                shutil.copytree(args.index, index_dir, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
            key = secrets.token_urlsafe(24)
            process, url = start_server(index_dir, key)
        if args.preload:
            preload(url, key, args.preload, args.seed)
        result = asyncio.run(run_load(url, key, config))
        result.problems = verify(url, result, config.limit)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    figures = summary(result, config)
    for name, kind in figures["kinds"].items():
        print(f"{name:7} {kind['ok']:6} ok {kind['per_second']:7.1f}/s  p50 {kind.get('p50_ms', 0):7.1f} ms  "
              f"p99 {kind.get('p99_ms', 0):7.1f} ms  busy {kind['busy']:4}  errors {kind['errors']}", file=sys.stderr)
    print(json.dumps(figures))
    return 1 if result.errors or result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
