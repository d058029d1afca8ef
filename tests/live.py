"""A real `papersearch serve` in a subprocess on a free port, for the live-server and browser tests."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Model loading on a busy 2-core machine can take a while; this is a hang guard, not a speed check.
STARTUP_TIMEOUT_SECONDS = 300


@dataclass
class LiveServer:
    url: str  # with a trailing slash
    process: subprocess.Popen
    output: list[str]

    def endpoint(self, path: str) -> str:
        return self.url.rstrip("/") + path

    def wait_for_output(self, text: str, timeout: float = 60) -> bool:
        """True once the server printed `text` (its output is read by a background thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in "".join(self.output):
                return True
            time.sleep(0.05)
        return False


@contextmanager
def live_server(index_dir: Path, *extra_args: str, env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """Start `python -m api.cli serve --port 0` and yield once it printed its URL."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    command = [sys.executable, "-m", "api.cli", "serve", "--index", str(index_dir), "--port", "0", *extra_args]
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def pump() -> None:  # keep reading so the server never blocks on a full pipe
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    url = None
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    try:
        while url is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("server did not start:\n" + "".join(output)) from None
            if line is None:
                raise RuntimeError(f"server exited with {process.wait()}:\n" + "".join(output))
            if "PaperSearch is running at " in line:
                url = line.split("running at ", 1)[1].split()[0]
        yield LiveServer(url, process, output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
