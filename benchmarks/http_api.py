"""HTTP section: `serve` startup and search over real HTTP at concurrency 1 and 8.

A server process runs api.app.create_app(settings) under uvicorn (one worker) on 127.0.0.1 and a
free port; httpx clients in threads send the corpus's test queries. Needs the API
(api/app.py); skipped with a note where it is absent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from benchmarks.bench import corpus_index
from benchmarks.measure import ROOT, load_average, load_beir, time_calls
from benchmarks.tables import Table
from indexer.store import layout

# The search route and its parameters, with {query} for the URL-quoted text (--http-search).
DEFAULT_SEARCH = "/search?q={query}&limit=10&mode={mode}"

_SERVER = """
import uvicorn
from api.app import create_app
from models.config import Settings
app = create_app(Settings.from_env(index_dir={index!r}, threads={threads}))
uvicorn.run(app, host="127.0.0.1", port={port}, workers=1, log_level="warning")
"""


def run(args) -> list[Table]:
    try:
        import httpx  # noqa: F401

        from api import app  # noqa: F401
    except ImportError as exc:
        table = Table("HTTP API", ["status"])
        table.add(f"skipped: {exc} (the HTTP API is not in this checkout yet)")
        return [table]
    targets = [corpus_index(args)]
    scale_index = args.workdir / f"scale-{args.scale_size}-{args.scale_tokens}tok-index"
    if layout.db_file(scale_index).is_file():
        targets.append(scale_index)  # made by the scale section
    _, queries, _ = load_beir(args.corpus)
    texts = list(queries.values())[:args.queries]
    return [_serve_and_measure(args, index_dir, texts) for index_dir in targets]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_and_measure(args, index_dir: Path, texts: list[str]) -> Table:
    import httpx

    from models.query import MODES

    with served(index_dir, args.threads) as (base, server, started):
        startup = _wait_until_up(base, server)
        startup = time.perf_counter() - started if startup else float("nan")
        table = Table(f"HTTP search, one uvicorn worker, {index_dir.name}",
                      ["mode", "concurrency", "p50 ms", "p99 ms", "QPS", "server CPU ms/request"])
        template = getattr(args, "http_search", None) or DEFAULT_SEARCH
        with httpx.Client(base_url=base, timeout=30) as client:
            for mode in MODES:
                def get(text, mode=mode):
                    response = client.get(template.format(query=quote(text), mode=mode))
                    response.raise_for_status()

                for text in texts[:3]:
                    get(text)  # warm up outside the CPU and latency figures
                for concurrency in (1, 8):
                    sample = texts * (2 if concurrency > 1 else 1)
                    before = _process_cpu(server.pid)
                    latency = time_calls(get, sample, concurrency=concurrency, warmup=0)
                    cpu_ms = 1000 * (_process_cpu(server.pid) - before) / len(sample)
                    table.add(mode, concurrency, latency.p50, latency.p99, latency.qps, cpu_ms)
        table.notes.append(f"serve startup (process start to /health answering 200): {startup:.2f} s; "
                           f"load average {load_average()}")
        return table


@contextmanager
def served(index_dir: Path, threads: int) -> Iterator[tuple[str, subprocess.Popen, float]]:
    """A uvicorn server process over `index_dir` on a free local port: (base URL, process, start time)."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-c", _SERVER.format(index=str(index_dir), threads=threads,
                                                                   port=port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{port}", server, started
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_until_up(base: str, server: subprocess.Popen, limit: float = 120) -> bool:
    import httpx

    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            # /health answers 200 once the index is open and the query encoder loaded.
            if httpx.get(base + "/health", timeout=5).status_code == 200:
                return True
            time.sleep(0.05)
        except httpx.TransportError:
            time.sleep(0.05)
    return False
