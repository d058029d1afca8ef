"""IndexStore's record reads: one paging helper and one row decoder, whatever the chunk size."""

from __future__ import annotations

from indexer.build import IndexWriter
from indexer.store import IndexStore
from indexer.store.filter_sql import filter_where
from models.config import Settings
from models.query import Filters


def test_paging_visits_every_row_once_in_rowid_order_at_any_chunk_size(fresh_index_dir, embedder):
    with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder) as writer:
        writer.delete(["seed-02", "seed-05", "seed-06"])  # gaps in the row ids
    store = IndexStore.open(fresh_index_dir)
    try:
        whole = list(store.iter_papers(chunk_size=1_000))
        assert len(whole) == 21 and [r for r, _ in whole] == sorted(store.all_rowids().tolist())
        for size in (1, 2, 5, 20, 21):
            assert list(store.iter_papers(chunk_size=size)) == whole
            assert [r for r, *_ in store.iter_stored(chunk_size=size)] == [r for r, _ in whole]
            assert [pid for chunk in store.iter_content_hashes(chunk_size=size) for pid, _ in chunk] == \
                [p.paper_id for _, p in whole]
            assert [r for rowids, _ in store.iter_embeddings(chunk_size=size) for r in rowids.tolist()] == \
                [r for r, _ in whole]
        # The same decoder serves lookups by id and by row id.
        by_rowid = store.papers_by_rowid([r for r, _ in whole])
        assert [by_rowid[r] for r, _ in whole] == [p for _, p in whole]
        assert store.get_papers(["seed-01"])["seed-01"] == whole[0][1]
    finally:
        store.close()


def test_no_filter_selects_everything_and_like_wildcards_are_literal():
    assert filter_where(Filters()) == ("1", [])
    where, params = filter_where(Filters(author="50%_x"))
    assert "ESCAPE" in where and params == ["50\\%\\_x"]
