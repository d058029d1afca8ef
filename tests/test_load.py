"""A short run of benchmarks/load.py against a live server: searches mixed with writes and deletes.

Asserts behaviour, not speed: no errors (503 index_busy on a write is retried and counted
apart), every acknowledged write readable and first for its own text, every acknowledged
delete gone, the paper count adds up. The figures are printed (pytest -s) for the record.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks.load import Config, preload, read_queries, run_load, summary, verify
from indexer.store import layout
from tests.conftest import ROOT, shared_dataset
from tests.live import live_server

pytestmark = pytest.mark.slow

KEY = "load-key-3b8e51f0c2"
# The ready SciFact index (5,183 abstracts, bundled MiniLM) where this machine has one; it is
# copied, never re-embedded, and the test skips without it.
SCIFACT_INDEX = Path(os.environ.get("PAPERSEARCH_SCIFACT_INDEX", ROOT.parent / "cache" / "scifact-minilm"))


def _run(index_dir: Path, config: Config, preload_count: int = 0) -> dict:
    with live_server(index_dir, env={"PAPERSEARCH_API_KEY": KEY}) as server:
        if preload_count:
            preload(server.url, KEY, preload_count, seed=config.seed)
        result = asyncio.run(run_load(server.url, KEY, config))
        result.problems = verify(server.url, result, config.limit)
        log = "".join(server.output)
    figures = summary(result, config)
    print(json.dumps(figures))
    assert not result.errors, result.errors[:10]
    assert not result.problems, result.problems[:10]
    kinds = figures["kinds"]
    assert kinds["search"]["ok"] > 0 and kinds["write"]["ok"] > 0 and kinds["delete"]["ok"] > 0, kinds
    assert any(not pid.startswith("load-") for pid in result.deleted), "no original paper was deleted"
    assert any(pid.startswith("load-") for pid in result.deleted), "no written paper was deleted"
    assert len(result.written) > len([p for p in result.deleted if p.startswith("load-")]), "nothing left to check"
    assert "Traceback" not in log and '" 500' not in log, log[-3000:]
    assert KEY not in log
    return figures


def test_load_on_the_sample_index_with_synthetic_papers(fresh_index_dir):
    """Runs everywhere: the 24 sample papers plus 300 short synthetic ones, 8 s of load."""
    _run(fresh_index_dir, Config(duration=8, clients=4, batch=4, seed=1), preload_count=300)


def test_load_on_scifact(tmp_path):
    """The issue's corpus: 5,183 SciFact abstracts and its real queries, 10 s of load."""
    queries = shared_dataset("scifact") / "queries.jsonl.gz"
    if not layout.manifest_file(SCIFACT_INDEX).is_file():
        pytest.skip(f"no ready SciFact index at {SCIFACT_INDEX} (set PAPERSEARCH_SCIFACT_INDEX)")
    index_dir = tmp_path / "index"
    shutil.copytree(SCIFACT_INDEX, index_dir, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    figures = _run(index_dir, Config(duration=10, clients=8, batch=4, seed=2, queries=read_queries(queries)))
    assert figures["papers_before"] == 5183
