"""Readers next to writers: a SearchEngine open while another process (or thread) writes to the same
index never sees a partial state and picks up the new data through refresh()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from indexer.build import WRITE_BATCH, IndexReport, IndexWriter
from indexer.check import check_index, repair_index
from indexer.store import IndexStore, layout
from models.config import Settings
from models.paper import Paper
from models.query import Filters
from search.engine import SearchEngine
from tests.conftest import ROOT
from tests.test_crash import write_records

SAMPLE_PAPERS = 24


def cli(*argv: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.Popen([sys.executable, "-m", "api.cli", *argv], cwd=ROOT, env=env, **kwargs)


@pytest.mark.slow
def test_reader_sees_only_whole_batches_while_another_process_indexes(tmp_path, fresh_index_dir, embedder):
    data = tmp_path / "more.jsonl"
    added = 1_200
    write_records(data, added)
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    writer = cli("index", str(data), "--index", str(fresh_index_dir), "--quiet", "--json",
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, int] = {}  # generation -> vectors the reader held
    checker = IndexStore.open(fresh_index_dir)
    try:
        while writer.poll() is None:
            engine.refresh()
            held = engine._index.ntotal
            seen[engine.generation] = held
            assert (held - SAMPLE_PAPERS) % WRITE_BATCH == 0 or held == SAMPLE_PAPERS + added, \
                f"the reader loaded {held} vectors: part of a write batch"
            ids = faiss_ids(engine)
            assert np.isin(ids, checker.all_rowids()).all(), "the reader holds ids with no record"
            hits = engine.search("protein folding on small devices", limit=10)
            assert len(hits) == 10
            time.sleep(0.05)
        out, err = writer.communicate()
        assert writer.returncode == 0, err
        assert json.loads(out.splitlines()[-1])["indexed"] == added
        engine.refresh()  # may find nothing new: the loop can already have caught the last batch
        assert engine._index.ntotal == SAMPLE_PAPERS + added
        assert engine.generation == checker.generation
        checker.load_vector_index()
        assert checker.vector_file_problem is None  # the writer saved a file that matches SQLite
        top = engine.search("Protein folding improves graph neural networks", limit=50)
        assert any(hit.paper.paper_id.startswith("p0") for hit in top)
    finally:
        checker.close()
        engine.close()
    intermediate = [g for g, held in seen.items() if SAMPLE_PAPERS < held < SAMPLE_PAPERS + added]
    print(f"reader observed {len(seen)} generations, {len(intermediate)} of them mid-run")
    assert intermediate, "the reader never caught the writer mid-run; the test proved nothing"


def faiss_ids(engine: SearchEngine) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(engine._index.faiss.id_map)


def test_refresh_picks_up_a_delete_made_by_another_process(fresh_index_dir, embedder):
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    victim = engine.search("protein structure prediction", limit=1)[0].paper.paper_id
    assert engine.refresh() is False  # nothing changed: cheap, no reload
    done = cli("delete", victim, "--index", str(fresh_index_dir), stdout=subprocess.PIPE,
               stderr=subprocess.PIPE, text=True)
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    assert engine.refresh() is True
    assert victim not in [h.paper.paper_id for h in engine.search("protein structure prediction", limit=24)]
    assert engine._index.ntotal == SAMPLE_PAPERS - 1
    engine.close()


def test_row_ids_are_never_reused_so_a_stale_snapshot_cannot_mislabel(fresh_index_dir, embedder):
    """Delete the paper with the highest row id, add another: a reader that has not refreshed yet
    must not show the new paper under the old paper's vector."""
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    last_rowid = int(faiss_ids(engine).max())
    last = engine.store.papers_by_rowid([last_rowid])[last_rowid]
    with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder) as writer:
        writer.delete([last.paper_id])
        writer.upsert([Paper("newcomer", "Medieval tax records of northern Italian monasteries")], IndexReport())
    new_rowid = engine.store.rowids_for(["newcomer"])["newcomer"]
    assert new_rowid > last_rowid

    stale_hits = engine.search(last.title, limit=5)  # no refresh: the snapshot still has the old vector
    assert "newcomer" not in [h.paper.paper_id for h in stale_hits]
    assert last.paper_id not in [h.paper.paper_id for h in stale_hits]  # deleted rows are dropped
    engine.refresh()
    assert engine.search("medieval monastery tax records", limit=1)[0].paper.paper_id == "newcomer"
    engine.close()


def test_filtered_search_on_a_stale_hnsw_snapshot(fresh_index_dir, embedder):
    """Filters come from the live SQLite; rows newer than an HNSW snapshot must not break it."""
    assert repair_index(fresh_index_dir, index_type="hnsw").ok
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    assert engine.index_kind == "hnsw"
    with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder) as writer:
        writer.upsert([Paper("late", "Protein folding with diffusion models", year=2024)], IndexReport())
    # Dense only: the point is the stale HNSW snapshot (the lexical side follows SQLite per query).
    hits = engine.search("protein folding", limit=5, filters=Filters(year_from=2000), mode="dense")
    assert hits and "late" not in [h.paper.paper_id for h in hits]
    engine.refresh()
    hits = engine.search("protein folding", limit=5, filters=Filters(year_from=2000), mode="dense")
    assert "late" in [h.paper.paper_id for h in hits]
    engine.close()


def test_threads_sharing_one_engine_can_refresh_and_search_together(tmp_path, fresh_index_dir, embedder):
    """The API's threadpool shares one engine (one SQLite connection) across requests."""
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    assert layout.vector_files(fresh_index_dir) == []  # flat: every load builds from SQLite in a read transaction
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        try:
            start.wait()
            for number in range(30):
                engine.store.load_vector_index()
                engine.refresh(wait=number % 2 == 0)
                engine.related("seed-01", limit=3)
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.close()
    assert not errors, errors[:3]
    assert check_index(fresh_index_dir).ok


def test_refresh_wait_sees_your_own_write_even_while_another_thread_reloads(fresh_index_dir, embedder):
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder) as writer:
        writer.upsert([Paper("mine", "Bee colony collapse and neonicotinoid pesticides")], IndexReport())
    engine._refresh_lock.acquire()  # another request thread is in the middle of a reload
    threading.Timer(0.5, engine._refresh_lock.release).start()
    assert engine.refresh() is False  # does not wait: keeps serving the previous snapshot
    assert engine.refresh(wait=True) is True
    assert engine.search("neonicotinoids and bees", limit=1)[0].paper.paper_id == "mine"
    engine.close()
