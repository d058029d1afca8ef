"""Crash safety: SIGKILL `papersearch index` (and `delete`) at random moments, then check that the
index opens, holds exactly the records of the writes that completed, and that rerunning finishes
the job without re-embedding what was stored and ends equal to a clean build.

The kill test is slow (a few model loads and ~2,500 short records with the real model). Set
PAPERSEARCH_CRASH_KILLS for more rounds and PAPERSEARCH_CRASH_SEED to replay a run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from indexer.build import WRITE_BATCH, index_file
from indexer.check import check_index
from indexer.store import IndexStore, layout, schema
from models.config import Settings
from models.errors import IndexNotBuilt
from search.engine import SearchEngine
from tests.conftest import ROOT

RECORDS = int(os.environ.get("PAPERSEARCH_CRASH_RECORDS", "2500"))
KILLS = int(os.environ.get("PAPERSEARCH_CRASH_KILLS", "6"))
SEED = int(os.environ.get("PAPERSEARCH_CRASH_SEED", str(int(time.time()))))

_SUBJECTS = ("protein folding", "graph neural networks", "semantic segmentation", "optical character recognition",
             "speech synthesis", "galaxy formation", "reinforcement learning", "drug discovery", "climate models",
             "quantum error correction", "federated learning", "image compression", "gene expression")
_VERBS = ("improves", "accelerates", "explains", "benchmarks", "revisits", "scales", "simplifies", "stabilises")
_OBJECTS = ("on small devices", "with sparse labels", "for noisy data", "at low cost", "across languages",
            "under distribution shift", "in real time", "from first principles")


def write_records(path: Path, count: int, duplicate_every: int = 0) -> list[str]:
    """Short, distinct, deterministic records; returns the ids in file order."""
    rng = random.Random(7)
    ids = []
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            title = (f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} "
                     f"{rng.choice(_SUBJECTS)} {rng.choice(_OBJECTS)} (study {number})")
            paper_id = f"p{number:05d}"
            ids.append(paper_id)
            handle.write(json.dumps({"id": paper_id, "title": title, "year": 2000 + number % 25}) + "\n")
    return ids


def cli_process(*argv: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.Popen([sys.executable, "-m", "api.cli", *argv], cwd=ROOT, env=env, **kwargs)


def stored_count(directory: Path) -> int:
    """What a reader sees right now (0 while the index does not exist yet)."""
    try:
        store = IndexStore.open(directory)
    except IndexNotBuilt:
        return 0
    try:
        return store.count()
    finally:
        store.close()


def kill_at_random_moment(process: subprocess.Popen, directory: Path, rng: random.Random, style: str) -> str:
    """SIGKILL the process at a moment picked by `style`; returns a description of the moment."""
    if style in ("startup", "timed"):  # while loading the model and scanning, or anywhere after
        delay = rng.uniform(0.1, 4.0) if style == "startup" else rng.uniform(4.0, 20.0)
        time.sleep(delay)
        moment = f"{delay:.2f}s after start"
    else:  # just after a batch committed, or when everything is stored

        before = stored_count(directory)
        target = RECORDS if style == "end" else min(RECORDS - 1, before + rng.randint(1, WRITE_BATCH))
        while process.poll() is None and stored_count(directory) < target:
            time.sleep(0.02)
        delay = 0.0 if style == "end" else rng.uniform(0.0, 0.4)
        time.sleep(delay)
        moment = f"{delay:.2f}s after a reader saw >= {target} records"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return moment


def assert_consistent_after_crash(directory: Path, ids: list[str], embedder) -> int:
    """The index opens and holds exactly a prefix of whole batches; returns how many records."""
    if not layout.db_file(directory).exists():
        return 0
    try:
        store = IndexStore.open(directory)
    except IndexNotBuilt as exc:  # killed between creating the file and committing its metadata
        assert "never finished" in str(exc) or "No index" in str(exc)
        return 0
    count = store.count()
    stored = {paper.paper_id for _, paper in store.iter_papers()}
    store.close()
    assert count % WRITE_BATCH == 0 or count == len(ids), f"{count} records: a partial batch was committed"
    assert stored == set(ids[:count]), "the index holds records other than those of completed writes"
    engine = SearchEngine.open(Settings(index_dir=directory), encoder=embedder)
    assert engine._index.ntotal == count
    if count:
        hits = engine.search("protein folding on small devices", limit=5)
        assert len(hits) == min(5, count) and all(h.paper.paper_id in stored for h in hits)
    engine.close()
    problems = check_index(directory).problems
    assert all(p.repairable for p in problems), problems  # only the derived files may lag
    return count


@pytest.mark.slow
def test_sigkill_during_index_loses_nothing_committed_and_the_rerun_finishes_the_job(tmp_path, embedder, capsys):
    rng = random.Random(SEED)
    data = tmp_path / "papers.jsonl"
    ids = write_records(data, RECORDS)
    directory = tmp_path / "index"
    # "end" goes last: once everything is stored there is nothing left to interrupt.
    styles = (["startup", "timed", "mid"] * KILLS)[:KILLS - 1]
    rng.shuffle(styles)
    styles.append("end")
    survived, stored, log = 0, 0, []
    for round_number, style in enumerate(styles):
        strict = ["--strict"] if round_number % 2 else []  # a crash mid --strict run is no different
        process = cli_process("index", str(data), "--index", str(directory), "--quiet", "--json", *strict,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        moment = kill_at_random_moment(process, directory, rng, style)
        now = assert_consistent_after_crash(directory, ids, embedder)
        assert now >= stored, "a crash lost records that an earlier run had committed"
        log.append(f"kill {round_number + 1} ({style}, {moment}): {now} records kept"
                   + (" [exited before the kill]" if process.returncode == 0 else ""))
        survived += process.returncode == -signal.SIGKILL
        # 0: the run finished before the kill landed (a timed kill after the last batch); no harm.
        assert process.returncode in (-signal.SIGKILL, 0), log[-1]
        stored = now
    with capsys.disabled():
        print(f"\ncrash test seed {SEED}: survived {survived} SIGKILLs\n  " + "\n  ".join(log))
    assert survived >= max(1, KILLS // 2), "too few kills landed while the run was working"

    finish = cli_process("index", str(data), "--index", str(directory), "--quiet", "--json",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = finish.communicate(timeout=1800)
    assert finish.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["embedded"] == RECORDS - stored, "the rerun re-embedded records that were already stored"
    assert (report["indexed"], report["unchanged"]) == (RECORDS - stored, stored)
    assert check_index(directory).ok

    again = cli_process("index", str(data), "--index", str(directory), "--quiet", "--json",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = again.communicate(timeout=600)
    assert json.loads(out.strip().splitlines()[-1])["embedded"] == 0, err

    clean = tmp_path / "clean"
    index_file(Settings(index_dir=clean), data, embedder=embedder)
    assert_same_index(directory, clean, ids)


def assert_same_index(directory: Path, clean: Path, ids: list[str]) -> None:
    """Same paper ids, same vectors within float tolerance, FAISS holding exactly the stored rows."""
    crashed, reference = IndexStore.open(directory), IndexStore.open(clean)
    try:
        assert crashed.count() == reference.count() == len(ids)
        mine, theirs = crashed.embeddings_for(ids), reference.embeddings_for(ids)
        assert set(mine) == set(theirs) == set(ids)
        worst = max(float(np.abs(mine[i] - theirs[i]).max()) for i in ids)
        assert worst < 1e-4, f"vectors differ from a clean build by up to {worst}"
        index, _ = crashed.load_vector_index()
        assert crashed.vector_file_problem is None  # the finishing run saved a matching FAISS file
        assert index.ntotal == len(ids)
    finally:
        crashed.close()
        reference.close()


@pytest.mark.slow
def test_sigkill_during_delete_is_all_or_nothing(tmp_path, embedder):
    data = tmp_path / "papers.jsonl"
    ids = write_records(data, 300)
    directory = tmp_path / "index"
    index_file(Settings(index_dir=directory), data, embedder=embedder)
    victims = ids[10:60]
    rng = random.Random(SEED)
    outcomes = set()
    for _ in range(3):
        process = cli_process("delete", *victims, "--index", str(directory), "--quiet",
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 2.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        store = IndexStore.open(directory)
        present = set(store.get_papers(victims))
        store.close()
        assert present in (set(), set(victims)), "a killed delete removed only some of the papers"
        outcomes.add(len(present))
        assert all(p.repairable for p in check_index(directory).problems)
        if not present:  # put them back for the next round, without re-embedding the rest
            report = index_file(Settings(index_dir=directory), data, embedder=embedder)
            assert (report.embedded, report.unchanged) == (len(victims), len(ids) - len(victims))
    assert check_index(directory).ok


def test_duplicate_ids_across_batches_are_embedded_once_and_never_again(tmp_path, embedder):
    """The last record of an id wins without embedding the earlier ones, so a rerun (after a crash
    or not) finds everything unchanged instead of flipping the paper back and forth."""
    data = tmp_path / "papers.jsonl"
    ids = write_records(data, WRITE_BATCH + 40)
    lines = data.read_text().splitlines()
    lines.insert(3, json.dumps({"id": ids[-1], "title": "An early draft of the last paper"}))
    lines.insert(5, json.dumps({"id": ids[-2], "title": "An early draft of the paper before it"}))
    data.write_text("\n".join(lines) + "\n")
    directory = tmp_path / "index"

    first = index_file(Settings(index_dir=directory), data, embedder=embedder)
    assert (first.embedded, first.indexed, len(first.duplicates)) == (len(ids), len(ids), 2)
    assert "skipped, the last record with this id wins" in first.duplicates[0]
    store = IndexStore.open(directory)
    assert store.get_papers([ids[-1]])[ids[-1]].title.endswith("(study 295)")
    store.close()

    second = index_file(Settings(index_dir=directory), data, embedder=embedder)
    assert (second.embedded, second.indexed, second.unchanged) == (0, 0, len(ids))


@pytest.mark.parametrize("leftover", ["empty file", "tables without metadata"])
def test_a_run_killed_while_creating_the_index_can_be_rerun(tmp_path, embedder, leftover):
    """A kill in the instant between creating papers.sqlite and committing its first metadata."""
    import sqlite3

    from tests.conftest import SAMPLE

    directory = tmp_path / "index"
    directory.mkdir()
    connection = sqlite3.connect(layout.db_file(directory))
    if leftover == "tables without metadata":
        schema.migrate(connection)
    connection.close()
    with pytest.raises(IndexNotBuilt, match="never finished"):
        SearchEngine.open(Settings(index_dir=directory), encoder=embedder)
    report = index_file(Settings(index_dir=directory), SAMPLE, embedder=embedder)
    assert report.indexed == 24 and check_index(directory).ok
