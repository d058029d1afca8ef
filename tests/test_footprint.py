"""Disk per part, index cuts and fitted lines (benchmarks/footprint.py), and `bench memory` end to end."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from benchmarks import footprint
from indexer.store import IndexStore, layout
from models.config import Settings


def test_parts_add_up_to_the_files(fresh_index_dir):
    (fresh_index_dir / "notes.txt").write_bytes(b"x" * 1234)  # a stray file counts, as "other"
    parts = footprint.disk_parts(fresh_index_dir)
    assert sum(parts.values()) == footprint.tree_bytes(fresh_index_dir)
    assert footprint.index_bytes(parts) == footprint.tree_bytes(fresh_index_dir) - parts[footprint.ENCODER]
    assert parts[footprint.VECTORS] == sum(p.stat().st_size for p in layout.vector_files(fresh_index_dir))
    assert parts[footprint.LEXICAL] == footprint.tree_bytes(layout.lexical_path(fresh_index_dir)) > 0
    assert parts[footprint.OTHER] >= 1234
    store = IndexStore.open(fresh_index_dir)
    papers, dimension = store.count(), store.model.dimension
    store.close()
    # float32 or float16, whichever the store keeps: every stored vector, nothing else
    assert parts[footprint.EMBEDDINGS] in (papers * dimension * 4, papers * dimension * 2)
    assert parts[footprint.RECORDS] > 0


def test_free_pages_are_apart_from_records(fresh_index_dir):
    import sqlite3

    database = layout.db_file(fresh_index_dir)
    db = sqlite3.connect(database)
    db.execute("CREATE TABLE filler (x BLOB)")
    db.execute("INSERT INTO filler VALUES (zeroblob(500000))")
    db.commit()
    db.execute("DROP TABLE filler")  # its pages go to the free list, the file keeps its size
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    parts = footprint.disk_parts(fresh_index_dir)
    assert parts[footprint.FREE_PAGES] >= 400_000
    assert parts[footprint.RECORDS] + parts[footprint.EMBEDDINGS] + parts[footprint.FREE_PAGES] == \
        database.stat().st_size


def test_cut_keeps_the_stored_vectors_and_leaves_the_source_alone(sample_index_dir, tmp_path, embedder):
    from search.engine import SearchEngine

    database = layout.db_file(sample_index_dir)
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    written = footprint.cut_index(sample_index_dir, tmp_path / "cut", 10)
    assert written == 10
    source, cut = IndexStore.open(sample_index_dir), IndexStore.open(tmp_path / "cut")
    try:
        first = [paper.paper_id for _, paper in source.iter_papers()][:10]
        assert [paper.paper_id for _, paper in cut.iter_papers()] == first
        wanted, got = source.embeddings_for(first), cut.embeddings_for(first)
        for pid in first:
            np.testing.assert_allclose(got[pid], wanted[pid], atol=1e-3)  # float16 storage allowed
    finally:
        source.close()
        cut.close()
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    engine = SearchEngine.open(Settings(index_dir=tmp_path / "cut"), encoder=embedder)
    try:
        hits = engine.search("neural networks", limit=20, mode="hybrid")
        assert hits and {h.paper.paper_id for h in hits} <= set(first)
    finally:
        engine.close()


def test_fit_line():
    line = footprint.fit_line([1000, 2500, 5000], [200e6 + 1500 * n for n in (1000, 2500, 5000)])
    assert line.intercept == pytest.approx(200e6)
    assert line.slope == pytest.approx(1500)
    assert line.r2 == pytest.approx(1.0)
    noisy = footprint.fit_line([1, 2, 3, 4], [1.0, 3.0, 2.0, 4.0])
    assert noisy.slope == pytest.approx(0.8)
    assert 0 < noisy.r2 < 1
    with pytest.raises(ValueError):
        footprint.fit_line([5, 5], [1.0, 2.0])


@pytest.mark.slow
def test_bench_memory_prints_parts_and_a_slope(sample_index_dir, tmp_path, capsys, monkeypatch):
    from benchmarks import bench, memory

    monkeypatch.setattr(memory, "PROCESSES_PER_SIZE", 1)  # two fresh processes are enough here
    assert bench.main(["memory", "--memory-index", str(sample_index_dir), "--memory-sizes", "8,24,99",
                       "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| 8 papers | 24 papers | slope, bytes/paper |" in out  # 99 is capped to the 24 there are
    assert footprint.EMBEDDINGS in out and footprint.VECTORS in out
    assert "fit: RSS = " in out and "bytes/paper x papers" in out
