"""Writes cost what they change: the vector file is a snapshot that readers catch up from SQLite.

A small write leaves the FAISS file alone; a reader of a later generation applies the rows
written since (and drops the rows gone since); a new snapshot is saved once enough has changed.
The file tests use an HNSW index: a flat one keeps no file (it is built from SQLite on every open),
and its engine refresh catches up in memory the same way.
"""

from __future__ import annotations

import numpy as np
import pytest

from indexer.build import IndexWriter, add_papers, delete_papers
from indexer.check import check_index
from indexer.store import IndexStore, layout, vector_file
from models.config import Settings
from models.paper import Paper
from search.engine import SearchEngine

NEW = [Paper(paper_id=f"new-{n}", title=f"Snapshot lag {n}: optical character recognition on receipts",
             abstract="A lightweight OCR model for scanned shop receipts.", year=2024) for n in range(3)]


def _files(directory):
    return {p.name: p.read_bytes() for p in layout.vector_files(directory)}


def test_a_small_write_leaves_the_vector_file_and_readers_catch_up(hnsw_index_dir, embedder):
    settings = Settings(index_dir=hnsw_index_dir)
    before = _files(hnsw_index_dir)
    add_papers(settings, NEW, embedder=embedder)
    delete_papers(settings, ["seed-01"])
    assert _files(hnsw_index_dir) == before  # not rewritten, not renamed

    store = IndexStore.open(hnsw_index_dir)
    assert store.snapshot_generation < store.generation and store.changes_since_snapshot == 4
    index, _ = store.load_vector_index()
    assert store.vector_file_problem is None
    assert np.array_equal(np.sort(index.live_ids()), store.all_rowids())
    store.close()

    engine = SearchEngine.open(settings, encoder=embedder)
    found = [h.paper.paper_id for h in engine.search("OCR for shop receipts", limit=5, mode="dense")]
    assert set(found[:3]) == {"new-0", "new-1", "new-2"}
    assert "seed-01" not in [h.paper.paper_id for h in engine.search("a", limit=30, mode="dense")]
    engine.close()
    assert check_index(hnsw_index_dir).ok  # a lagging snapshot is a healthy index


def test_an_engine_refresh_applies_only_the_new_rows(fresh_index_dir, embedder):
    settings = Settings(index_dir=fresh_index_dir)
    engine = SearchEngine.open(settings, encoder=embedder)
    old_index = engine._index
    add_papers(settings, NEW[:1], embedder=embedder)
    assert engine.refresh(wait=True)
    assert engine._index is not old_index  # a changed copy: searches on the old one were never disturbed
    assert old_index.live_count() == 24 and engine._index.live_count() == 25
    assert engine.search("OCR for shop receipts", limit=1, mode="dense")[0].paper.paper_id == "new-0"
    engine.close()


def test_a_new_snapshot_is_saved_once_enough_changed(hnsw_index_dir, embedder, monkeypatch):
    monkeypatch.setattr(vector_file, "SNAPSHOT_MIN_CHANGES", 2)
    settings = Settings(index_dir=hnsw_index_dir)
    add_papers(settings, NEW[:2], embedder=embedder)  # 2 changes: not yet more than 2
    store = IndexStore.open(hnsw_index_dir)
    assert store.snapshot_generation < store.generation
    store.close()
    add_papers(settings, NEW[2:], embedder=embedder)  # 3 changes: due
    store = IndexStore.open(hnsw_index_dir)
    assert store.snapshot_generation == store.generation and store.changes_since_snapshot == 0
    assert [p.name for p in layout.vector_files(hnsw_index_dir)] == [layout.vector_file(".", store.generation).name]
    store.close()


def test_a_damaged_lagging_snapshot_is_never_served(hnsw_index_dir, embedder):
    add_papers(Settings(index_dir=hnsw_index_dir), NEW, embedder=embedder)
    (path,) = layout.vector_files(hnsw_index_dir)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    store = IndexStore.open(hnsw_index_dir)
    index, _ = store.load_vector_index()
    assert "checksum differs" in store.vector_file_problem
    assert np.array_equal(np.sort(index.live_ids()), store.all_rowids())  # rebuilt from SQLite instead
    store.close()
    assert not check_index(hnsw_index_dir).ok


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_other_index_kinds_catch_up_too(fresh_index_dir, embedder, kind):
    settings = Settings(index_dir=fresh_index_dir, index_type=kind)
    with IndexWriter(settings, embedder=embedder):
        pass  # saves the new structure (the type changed)
    add_papers(Settings(index_dir=fresh_index_dir), NEW, embedder=embedder)
    delete_papers(Settings(index_dir=fresh_index_dir), ["seed-02"])
    store = IndexStore.open(fresh_index_dir)
    index, _ = store.load_vector_index()
    assert store.vector_file_problem is None and index.name == kind
    assert np.array_equal(np.sort(index.live_ids()), store.all_rowids())
    store.close()
