"""A database damaged under an open store: every read answers IndexCorrupt, never a raw SQLite error.

The damage lands after the store was opened (a disk failing under a running server), so the
open-time checks cannot catch it; each read must.
"""

from __future__ import annotations

import inspect
import random

import numpy as np
import pytest

from indexer.store import IndexStore, layout
from models.errors import IndexCorrupt
from models.query import Filters

# Each read of the store, called the way its callers call it.
READS = {
    "generation": lambda s: s.generation,
    "model": lambda s: s.model,
    "index_type": lambda s: s.index_type,
    "count": lambda s: s.count(),
    "manifest": lambda s: s.manifest(),
    "stored_hashes": lambda s: s.stored_hashes(["seed-01"]),
    "get_papers": lambda s: s.get_papers(["seed-01"]),
    "papers_by_rowid": lambda s: s.papers_by_rowid([1, 2]),
    "rowids_for": lambda s: s.rowids_for(["seed-01"]),
    "embeddings_for": lambda s: s.embeddings_for(["seed-01"]),
    "embeddings_by_rowid": lambda s: s.embeddings_by_rowid(np.array([1, 2])),
    "iter_embeddings": lambda s: list(s.iter_embeddings()),
    "sample_embeddings": lambda s: s.sample_embeddings(10),
    "iter_content_hashes": lambda s: list(s.iter_content_hashes()),
    "iter_papers": lambda s: list(s.iter_papers()),
    "iter_stored": lambda s: list(s.iter_stored()),
    "filter_rowids": lambda s: s.filter_rowids(Filters(year_from=2000)),
    "all_rowids": lambda s: s.all_rowids(),
    "build_vector_index": lambda s: s.build_vector_index(),
    "load_vector_index": lambda s: s.load_vector_index(),
    "vector_file_status": lambda s: s.vector_file_status(1),
    "leftover_files": lambda s: s.leftover_files(),
    "last_indexed": lambda s: s.last_indexed(),
    "corpus_summary": lambda s: s.corpus_summary(),
    "resolve_ids": lambda s: s.resolve_ids(["10.1000/x", "arXiv:2101.00001"]),
    "indexed_times": lambda s: s.indexed_times(["seed-01", "seed-02"]),
    "identifier_keys": lambda s: s.identifier_keys(["seed-01"]),
    "papers_with_keys": lambda s: s.papers_with_keys([("doi", "10.1000/x")]),
    "facet_rows": lambda s: s.facet_rows([1, 2]),
    "harvest_state": lambda s: s.harvest_state("http://example.org/oai|oai_dc|"),
    "snapshot_generation": lambda s: s.snapshot_generation,
    "changes_since_snapshot": lambda s: s.changes_since_snapshot,
    "snapshot_due": lambda s: s.snapshot_due(),
    "keeps_vector_file": lambda s: s.keeps_vector_file,
    "recorded_export": lambda s: s.recorded_export(s.model.fingerprint),
}
# Public members that are not reads of the database (or report damage as their answer).
NOT_READS = {"open", "create", "close", "write", "set_index_type", "save_vector_index", "drop_vector_files",
             "write_manifest",
             "check_model", "remove_temp_files", "size_on_disk", "integrity_problems",
             "upgrade", "record_export", "require_writable", "copy_database_to", "set_harvest_state"}


def _damage_pages(directory) -> None:
    """Overwrite every page after the first (the header) with garbage, in place."""
    path = layout.db_file(directory)
    page = 4096  # the header's page is larger (16 KB), so this hits it too: still damage
    garbage = random.Random(11).randbytes(path.stat().st_size - page)
    with path.open("r+b") as handle:
        handle.seek(page)
        handle.write(garbage)


def test_every_public_read_is_covered():
    public = {name for name, _ in inspect.getmembers(IndexStore) if not name.startswith("_")}
    public -= {"directory", "vector_file_problem", "writable", "format_version"}  # plain attributes
    assert public - NOT_READS == set(READS), "add a new read of the store to READS"


@pytest.mark.parametrize("name", sorted(READS))
def test_a_read_of_a_damaged_database_raises_index_corrupt(fresh_index_dir, name):
    store = IndexStore.open(fresh_index_dir)
    try:
        _damage_pages(fresh_index_dir)
        with pytest.raises(IndexCorrupt, match="is damaged") as caught:
            READS[name](store)
        assert "papersearch check" in str(caught.value)  # the next step to take
    finally:
        store.close()


def test_the_integrity_check_reports_the_damage_instead_of_raising(fresh_index_dir):
    store = IndexStore.open(fresh_index_dir)
    try:
        _damage_pages(fresh_index_dir)
        assert store.integrity_problems()
    finally:
        store.close()
