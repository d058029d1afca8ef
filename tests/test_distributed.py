"""Distributed indexing on Ray: same directory as the single-process path, no loss on crashes.

The Ray tests run a real local Ray (2 CPUs, 1-2 model replicas of the real bundled model) and are
marked slow; they skip when Ray (the optional extra) is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from api.cli import main
from indexer import distributed
from indexer.build import index_files
from indexer.ingest import read_papers
from indexer.plan import Duplicate, IngestPlan
from indexer.store import IndexStore, codec, layout
from models.config import Settings
from search.engine import SearchEngine
from tests.conftest import ROOT, SAMPLE, SCIFACT_SUBSET
from tests.test_plan import OBSOLETE, RecordingEncoder, write_run_files

SUBSET = SCIFACT_SUBSET
# Vectors are stored as float16: two runs' vectors that differ in the 7th digit may round one step
# apart (a step is 2.4e-4 for components below 0.5).
FLOAT16_STEP = 2.5e-4
QUERIES = ("lightweight OCR", "protein folding", "gene expression in cancer cells", "vitamin D deficiency")


# --- fixtures ---------------------------------------------------------------------------------------


def read_rows(directory: Path) -> dict[str, tuple[int, str, np.ndarray]]:
    """paper_id -> (rowid, content hash, vector), straight from the SQLite file."""
    with sqlite3.connect(layout.db_file(directory)) as db:
        rows = db.execute("SELECT paper_id, rowid, content_hash, embedding FROM papers").fetchall()
    return {pid: (rowid, digest, codec.vector_of(blob, len(blob) // 2)) for pid, rowid, digest, blob in rows}


def assert_same_index(got: Path, want: Path, embedder) -> None:
    """Same records, ids, rowids and vectors (within float16 rounding), and the same search results."""
    got_rows, want_rows = read_rows(got), read_rows(want)
    assert got_rows.keys() == want_rows.keys()
    for pid, (rowid, digest, vector) in want_rows.items():
        assert got_rows[pid][:2] == (rowid, digest)
        np.testing.assert_allclose(got_rows[pid][2], vector, atol=FLOAT16_STEP)
    got_store, want_store = IndexStore.open(got), IndexStore.open(want)
    try:
        assert dict(got_store.iter_papers()) == dict(want_store.iter_papers())
        assert {k: v for k, v in got_store.manifest().items() if k != "updated_at"} == \
               {k: v for k, v in want_store.manifest().items() if k != "updated_at"}
    finally:
        got_store.close()
        want_store.close()
    def listing(directory: Path) -> list[str]:  # SQLite's -wal/-shm exist only while a reader is open
        return sorted(p.name for p in directory.iterdir() if not p.name.endswith(("-wal", "-shm")))

    assert listing(got) == listing(want)
    engines = [SearchEngine.open(Settings(index_dir=d), encoder=embedder) for d in (got, want)]
    try:
        for query in QUERIES:
            a, b = (engine.search(query, limit=10) for engine in engines)
            assert [h.paper.paper_id for h in a] == [h.paper.paper_id for h in b]
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
    finally:
        for engine in engines:
            engine.close()


class RecordingReplica(distributed.EmbedReplica):
    """A replica whose real embedder notes each text it encodes in a file of the test's Ray session."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.embedder = RecordingEncoder(self.embedder, Path(os.environ["PAPERSEARCH_TEST_CRASH_DIR"]) / "encoded")


class CrashOnceReplica(distributed.EmbedReplica):
    """A replica whose process dies on its second batch, once per test run (a lost worker)."""

    calls = 0

    def __call__(self, batch):
        self.calls += 1
        marker = Path(os.environ["PAPERSEARCH_TEST_CRASH_DIR"]) / "crashed"
        if self.calls == 2:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os._exit(1)  # no exception, no cleanup: the worker process is simply gone
        return super().__call__(batch)


# --- without a cluster ----------------------------------------------------------------------------


def test_read_shard_streams_blocks_and_passes_rejections(tmp_path):
    lines = [json.dumps({"id": f"x{i}", "title": f"Paper {i}", "abstract": "Text."}) for i in range(300)]
    lines.insert(5, "{not json")
    path = tmp_path / "papers.jsonl"
    path.write_text("\n".join(lines) + "\n")
    blocks = list(distributed.read_shard({"path": np.array([str(path)], dtype=object)}))
    assert [len(b["paper"]) for b in blocks] == [distributed.READ_BLOCK, 301 - distributed.READ_BLOCK]
    rejected = [(str(b["location"][i]), str(b["rejection"][i]))
                for b in blocks for i, text in enumerate(b["paper"]) if not text]
    assert len(rejected) == 1 and rejected[0][0].endswith(":6")
    first = distributed.paper_from_json(blocks[0]["paper"][0])
    assert (first.paper_id, first.title, first.abstract) == ("x0", "Paper 0", "Text.")


def test_stored_keys_identify_stored_papers(sample_index_dir):
    store = IndexStore.open(sample_index_dir)
    try:
        keys = distributed.stored_keys(store)
        hashes = [pair for chunk in store.iter_content_hashes() for pair in chunk]
    finally:
        store.close()
    assert len(keys) == 24 and np.all(keys[:-1] < keys[1:])
    pid, digest = hashes[0]
    assert distributed._key(pid, digest) in set(keys.tolist())
    assert distributed._key(pid, "0" * 64) not in set(keys.tolist())  # changed text: embed again


def test_read_shard_follows_the_plan(tmp_path):
    """Records the plan skips leave the read stage as duplicates, so no replica embeds them."""
    paths = write_run_files(tmp_path)
    plan = IngestPlan.scan(paths)
    skipped = []
    for ordinal, path in enumerate(paths):
        batch = {"path": np.array([str(path)], dtype=object), "ordinal": np.array([ordinal])}
        blocks = list(distributed.read_shard(batch, winners=[plan.winners]))
        got = [distributed._item(block, row) for block in blocks for row in range(len(block["paper"]))]
        assert got == list(plan.follow(ordinal, read_papers(path)))
        assert not any(item.paper.title.startswith(OBSOLETE) for item in got if hasattr(item, "paper"))
        skipped.append([item.paper_id for item in got if isinstance(item, Duplicate)])
    assert skipped == [["dup", "cross"], []]


def test_missing_ray_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra looks like
    code = main(["index", str(SAMPLE), "--index", str(tmp_path / "i"), "--ray"])
    assert code == 1
    assert "pip install 'papersearch[ray]'" in capsys.readouterr().err


# --- on a local Ray ------------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_path_equals_single_process_on_sample(ray_local, tmp_path, sample_index_dir, embedder):
    report, run = distributed.index_files_ray(Settings(index_dir=tmp_path / "ray"), [SAMPLE],
                                              options=distributed.RayOptions(replicas=2), embedder=embedder)
    assert (report.indexed, report.embedded, report.encode_seconds) == (24, 24, 0.0)  # all on the replicas
    assert run.replicas == 2
    assert_same_index(tmp_path / "ray", sample_index_dir, embedder)


@pytest.mark.slow
def test_a_repeated_id_is_embedded_once_on_ray_as_in_one_process(ray_local, tmp_path, embedder):
    """'dup' repeats more than WRITE_BATCH records apart, 'cross' across files: both paths embed
    only the last record of each, and make the same index and the same report."""
    paths = [p.resolve() for p in write_run_files(tmp_path)]
    log = ray_local / "encoded"
    log.unlink(missing_ok=True)
    single_encoder = RecordingEncoder(embedder)
    single = index_files(Settings(index_dir=tmp_path / "single"), paths, embedder=single_encoder)
    report, _ = distributed.index_files_ray(Settings(index_dir=tmp_path / "ray"), paths,
                                            options=distributed.RayOptions(replicas=1), embedder=embedder,
                                            replica=RecordingReplica)
    encoded = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert not any(text.startswith(OBSOLETE) for text in encoded)
    assert sorted(encoded) == sorted(single_encoder.texts) and len(set(encoded)) == len(encoded) == report.embedded
    assert report.encode_seconds == 0.0  # the driver encoded nothing
    assert report.duplicates == single.duplicates and len(report.duplicates) == 2
    assert [str(r) for r in report.rejected] == [str(r) for r in single.rejected] and len(report.rejected) == 2
    assert (report.indexed, report.unchanged, report.accepted, report.rejection) == \
           (single.indexed, single.unchanged, single.accepted, single.rejection)
    got, want = read_rows(tmp_path / "ray"), read_rows(tmp_path / "single")
    assert got.keys() == want.keys()
    for pid, (rowid, digest, vector) in want.items():
        assert got[pid][:2] == (rowid, digest)
        np.testing.assert_allclose(got[pid][2], vector, atol=FLOAT16_STEP)


@pytest.mark.slow
def test_ray_path_equals_single_process_on_scifact(ray_local, tmp_path, scifact_subset, scifact_reference,
                                                   embedder):
    report, _ = distributed.index_files_ray(Settings(index_dir=tmp_path / "ray"), [scifact_subset],
                                            options=distributed.RayOptions(replicas=2), embedder=embedder)
    assert (report.indexed, report.embedded) == (SUBSET, SUBSET)
    assert_same_index(tmp_path / "ray", scifact_reference, embedder)


@pytest.mark.slow
def test_lost_replica_loses_and_duplicates_nothing(ray_local, tmp_path, scifact_subset, scifact_reference,
                                                   embedder):
    marker = ray_local / "crashed"
    marker.unlink(missing_ok=True)
    report, _ = distributed.index_files_ray(Settings(index_dir=tmp_path / "ray"), [scifact_subset],
                                            options=distributed.RayOptions(replicas=1), embedder=embedder,
                                            replica=CrashOnceReplica)
    assert marker.exists(), "the replica never crashed, so this test proved nothing"
    assert (report.indexed, report.encode_seconds) == (SUBSET, 0.0)
    assert_same_index(tmp_path / "ray", scifact_reference, embedder)


@pytest.mark.slow
def test_rerun_skips_stored_papers(ray_local, tmp_path, embedder):
    half = tmp_path / "half.jsonl"
    lines = SAMPLE.read_text().splitlines()
    half.write_text("\n".join(lines[:12]) + "\n")
    settings = Settings(index_dir=tmp_path / "ray")
    distributed.index_files_ray(settings, [half], options=distributed.RayOptions(replicas=1), embedder=embedder)
    generation = IndexStore.open(tmp_path / "ray").generation
    report, _ = distributed.index_files_ray(settings, [SAMPLE], options=distributed.RayOptions(replicas=1),
                                            embedder=embedder)
    assert (report.indexed, report.unchanged, report.embedded) == (12, 12, 12)
    again, _ = distributed.index_files_ray(settings, [SAMPLE], options=distributed.RayOptions(replicas=1),
                                           embedder=embedder)
    assert (again.indexed, again.unchanged, again.embedded) == (0, 24, 0)
    assert IndexStore.open(tmp_path / "ray").generation == generation + 1  # the no-op rerun wrote nothing


@pytest.mark.slow
def test_cli_index_with_ray(ray_local, tmp_path, capsys):
    code = main(["index", str(SAMPLE), "--index", str(tmp_path / "i"), "--ray", "--replicas", "1", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["indexed"], out["rejected"], out["ray"]["replicas"]) == (24, 0, 1)
    assert main(["search", "protein folding", "--index", str(tmp_path / "i"), "--json", "--limit", "1"]) == 0
    assert "Fold" in json.loads(capsys.readouterr().out)["title"]


@pytest.mark.slow
def test_driver_killed_mid_run_resumes(tmp_path, scifact_subset, scifact_reference, embedder):
    """SIGKILL the whole `papersearch index --ray` process group after its first commit, then rerun."""
    pytest.importorskip("ray")
    index = tmp_path / "ray"
    command = [sys.executable, "-m", "api.cli", "index", str(scifact_subset), "--index", str(index),
               "--ray", "--replicas", "1", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": ""}
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    committed = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        committed = _count(index)
        if committed:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert 0 < committed < SUBSET, f"expected a partial index at the kill, found {committed} papers"
    survived = _count(index)
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    out = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert out["unchanged"] == survived and out["indexed"] == SUBSET - survived
    assert_same_index(index, scifact_reference, embedder)


def _count(index: Path) -> int:
    try:
        with sqlite3.connect(f"file:{layout.db_file(index)}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT count(*) FROM papers").fetchone()[0]
    except sqlite3.Error:
        return 0
