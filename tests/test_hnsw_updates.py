"""Edits to an HNSW index: deletes leave tombstones instead of rebuilding the graph, updates add
one node, searches never return a removed paper yet still fill every page, and the graph is
rebuilt once tombstones pass their share."""

from __future__ import annotations

import dataclasses

import numpy as np

from indexer.build import IndexReport, IndexWriter
from indexer.check import check_index
from indexer.ingest import read_papers
from indexer.store import IndexStore, vector_file
from indexer.vectors import hnsw
from models.config import Settings
from search.engine import SearchEngine
from tests.conftest import SAMPLE

QUERIES = ("lightweight OCR", "protein structure prediction", "large language model training")


def _to_hnsw(index_dir, embedder) -> None:
    with IndexWriter(Settings(index_dir=index_dir, index_type="hnsw"), embedder=embedder):
        pass  # switching the structure rebuilds the graph from the stored vectors


def _saved_index(index_dir):
    store = IndexStore.open(index_dir)
    try:
        index, _ = store.load_vector_index()
        return index, store.vector_file_problem, store.count()
    finally:
        store.close()


def _exact_ranking(index_dir, vector: np.ndarray, k: int) -> list[int]:
    """Brute force over the live stored embeddings: the oracle HNSW must agree with here."""
    store = IndexStore.open(index_dir)
    try:
        blocks = list(store.iter_embeddings())
    finally:
        store.close()
    rowids = np.concatenate([r for r, _ in blocks])
    scores = np.concatenate([m for _, m in blocks]) @ vector
    return rowids[np.argsort(-scores, kind="stable")[:k]].tolist()


def _dense_ranking(engine: SearchEngine, query: str, k: int) -> tuple[list[str], list[int]]:
    vector = engine.encoder.encode([query], "query")[0]
    rowids, _ = engine._dense(vector, k, None)
    hits = engine.search(query, limit=k, mode="dense", snippets=False)
    return [h.paper.paper_id for h in hits], rowids.tolist()


def test_delete_leaves_a_tombstone_and_searches_skip_it(fresh_index_dir, embedder):
    _to_hnsw(fresh_index_dir, embedder)
    total = _saved_index(fresh_index_dir)[0].ntotal
    with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder) as writer:
        assert writer.delete(["seed-03"]) == (["seed-03"], [])

    index, problem, count = _saved_index(fresh_index_dir)
    assert problem is None  # the saved file is accepted as is, not rebuilt on open
    assert index.name == "hnsw"
    assert index.ntotal == total and index.live_count() == count == total - 1
    assert check_index(fresh_index_dir).ok

    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir))
    try:
        for query in QUERIES:
            ids, rowids = _dense_ranking(engine, query, count)
            assert "seed-03" not in ids
            assert len(ids) == count  # the tombstone takes no place on a page
            vector = engine.encoder.encode([query], "query")[0]
            assert rowids == _exact_ranking(fresh_index_dir, vector, count)
        related = [h.paper.paper_id for h in engine.related(paper_id="seed-02", limit=count - 1)]
        assert "seed-03" not in related and len(related) == count - 1
    finally:
        engine.close()


def test_update_adds_one_node_and_finds_the_new_text(fresh_index_dir, embedder):
    _to_hnsw(fresh_index_dir, embedder)
    total = _saved_index(fresh_index_dir)[0].ntotal
    paper = next(item.paper for item in read_papers(SAMPLE) if getattr(item, "paper", None)
                 and item.paper.paper_id == "seed-10")
    edited = dataclasses.replace(paper, title="Bioluminescent jellyfish proteins as ocean temperature sensors",
                                 abstract="We show that bioluminescent jellyfish proteins report ocean "
                                          "temperature through the colour of their light.")
    with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder) as writer:
        report = IndexReport()
        writer.upsert([edited], report)
        assert report.embedded == 1

    index, problem, count = _saved_index(fresh_index_dir)
    assert problem is None and count == total
    assert index.ntotal == total + 1 and index.live_count() == total  # old node: a tombstone
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir))
    try:
        top = engine.search("jellyfish light as a thermometer", limit=1, mode="dense")[0]
        assert top.paper.paper_id == "seed-10" and top.paper.title == edited.title
        ids, _ = _dense_ranking(engine, "jellyfish light as a thermometer", count)
        assert sorted(ids) == sorted(set(ids)) and len(ids) == count  # the old version never shows up
    finally:
        engine.close()


def test_graph_is_rebuilt_once_tombstones_pass_their_share(fresh_index_dir, embedder, monkeypatch):
    # Every write saves a snapshot here, so the saved structure is the one under test.
    monkeypatch.setattr(vector_file, "SNAPSHOT_MIN_CHANGES", 0)
    monkeypatch.setattr(vector_file, "SNAPSHOT_CHANGE_SHARE", 0.0)
    _to_hnsw(fresh_index_dir, embedder)
    total = _saved_index(fresh_index_dir)[0].ntotal
    within = int(hnsw.HNSW_MAX_DEAD_SHARE * total)  # this many may wait as tombstones
    ids = [f"seed-{n:02d}" for n in range(1, within + 2)]
    with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder) as writer:
        writer.delete(ids[:within])
    index, _, count = _saved_index(fresh_index_dir)
    assert index.ntotal == total and count == total - within

    with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder) as writer:
        writer.delete(ids[within:])
    index, problem, count = _saved_index(fresh_index_dir)
    assert problem is None and index.name == "hnsw"
    assert index.ntotal == index.live_count() == count == total - within - 1  # a fresh graph


def test_an_hnsw_file_searches_at_the_current_depth(fresh_index_dir, embedder):
    import faiss

    _to_hnsw(fresh_index_dir, embedder)
    store = IndexStore.open(fresh_index_dir, writable=True)
    try:
        index, _ = store.load_vector_index()
        faiss.downcast_index(index.faiss.index).hnsw.efSearch = 16  # as saved under older defaults
        store.save_vector_index(index, store.generation)
        loaded, _ = store.load_vector_index()
        assert store.vector_file_problem is None
        assert faiss.downcast_index(loaded.faiss.index).hnsw.efSearch == hnsw.HNSW_EF_SEARCH
    finally:
        store.close()
