"""Quality floors on BEIR SciFact test (slow; skipped without ../shared/data).

The index is built once, into the eval cache ($PAPERSEARCH_CACHE or ~/.cache/papersearch/eval)
under the same key `papersearch eval` uses, so only this module ever embeds SciFact and a warm
cache makes it quick. Achieved (docs/quality.md): dense 0.6451, lexical 0.6838, hybrid 0.7346.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from api.evaluate import evaluate
from models.config import Settings

from .conftest import ROOT, shared_dataset

pytestmark = pytest.mark.slow

PUBLISHED_DENSE = 0.645  # all-MiniLM-L6-v2 on SciFact, BEIR leaderboard / SBERT docs


@pytest.fixture(scope="module")
def scifact_reports(embedder):
    folder = shared_dataset("scifact")
    settings = Settings.from_env()
    reports = evaluate(folder, settings, split="test", modes=("dense", "lexical", "hybrid"), embedder=embedder)
    return {report.mode: report for report in reports}


def test_dense_matches_the_published_figure(scifact_reports):
    dense = scifact_reports["dense"]
    assert dense.queries == 300
    assert abs(dense.ndcg_at_10 - PUBLISHED_DENSE) <= 0.01, dense


def test_lexical_reaches_published_bm25(scifact_reports):
    assert scifact_reports["lexical"].ndcg_at_10 >= 0.675, scifact_reports["lexical"]


def test_hybrid_beats_both_parts_and_the_target(scifact_reports):
    hybrid, dense, lexical = (scifact_reports[m] for m in ("hybrid", "dense", "lexical"))
    assert hybrid.ndcg_at_10 >= 0.725, hybrid
    assert hybrid.ndcg_at_10 > max(dense.ndcg_at_10, lexical.ndcg_at_10)
    assert hybrid.recall_at_100 >= 0.94
    assert hybrid.recall_at_100 >= max(dense.recall_at_100, lexical.recall_at_100)
    assert hybrid.mrr_at_10 > max(dense.mrr_at_10, lexical.mrr_at_10)


def test_eval_command_reuses_the_cached_index(scifact_reports):
    """The command as a user runs it, in a fresh process: same cache key, so nothing is embedded."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "PAPERSEARCH_CACHE": str(Settings.from_env().eval_cache_dir)}
    done = subprocess.run([sys.executable, "-m", "api.cli", "eval", str(shared_dataset("scifact")),
                           "--mode", "lexical", "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["index_dir"] == scifact_reports["lexical"].index_dir
    assert report["ndcg_at_10"] == round(scifact_reports["lexical"].ndcg_at_10, 4)
