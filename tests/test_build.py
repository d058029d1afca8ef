"""Writing an index: incremental re-index, updates, deletes, --strict, duplicates, model mismatch."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from indexer.build import delete_papers, index_file
from indexer.check import check_index
from indexer.store import IndexStore, layout
from models.config import Settings
from models.embedder import Embedder
from models.errors import IndexModelMismatch, InvalidInput
from search.engine import SearchEngine
from tests.conftest import SAMPLE


def _records():
    return [json.loads(line) for line in SAMPLE.read_text().splitlines()]


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _snapshot(directory):
    """File contents of an index, ignoring SQLite's volatile shared-memory file and an empty WAL."""
    wal, shm = (p.name for p in layout.db_sidecar_files(directory))
    files = {p.name: p.read_bytes() for p in sorted(directory.iterdir())
             if p.is_file() and p.name not in (layout.LOCK_FILE, shm)}
    if not files.get(wal, b"x"):
        del files[wal]
    return files


def test_reindexing_the_same_file_embeds_nothing(fresh_index_dir, embedder):
    report = index_file(Settings(index_dir=fresh_index_dir), SAMPLE, embedder=embedder)
    assert (report.indexed, report.embedded, report.unchanged) == (0, 0, 24)


def test_a_changed_record_is_reembedded_and_a_new_one_added(fresh_index_dir, embedder, tmp_path):
    records = _records()
    records[2]["abstract"] += " We also release a mobile demo."
    records[5]["year"] = 2023  # metadata only: no new vector needed
    records.append({"id": "new-1", "title": "A new paper on table recognition", "abstract": "Tables."})
    report = index_file(Settings(index_dir=fresh_index_dir), _write(tmp_path / "v2.jsonl", records), embedder=embedder)
    assert (report.embedded, report.indexed, report.unchanged) == (2, 3, 22)

    store = IndexStore.open(fresh_index_dir)
    assert store.count() == 25
    assert store.get_papers([records[5]["id"]])[records[5]["id"]].year == 2023
    stored = store.embeddings_for(["seed-03"])["seed-03"]
    expected = embedder.encode([records[2]["title"] + " " + records[2]["abstract"]], "document")[0]
    assert np.allclose(stored, expected, atol=2.5e-4)  # stored as float16: one step at |x| < 0.5
    index, _ = store.load_vector_index()
    assert index.ntotal == 25


def test_delete_removes_papers_from_every_part(fresh_index_dir, embedder):
    from search.engine import SearchEngine

    settings = Settings(index_dir=fresh_index_dir)
    deleted, missing = delete_papers(settings, ["seed-17", "no-such-id"])
    assert (deleted, missing) == (["seed-17"], ["no-such-id"])
    engine = SearchEngine.open(settings, encoder=embedder)
    assert engine.store.count() == 23
    assert engine._index.ntotal == 23
    ids = [h.paper.paper_id for h in engine.search("ultra lightweight OCR system", limit=23)]
    assert "seed-17" not in ids and len(ids) == 23
    manifest = json.loads(layout.manifest_file(fresh_index_dir).read_text())
    assert manifest["papers"] == 23


def test_bad_records_are_reported_and_good_ones_indexed(tmp_path, embedder):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": "a", "title": "Graph neural networks"}\n{"title": "no id"}\nnot json\n'
                    '{"id": "b", "title": ""}\n')
    seen = []
    report = index_file(Settings(index_dir=tmp_path / "idx"), path, embedder=embedder, on_reject=seen.append)
    assert report.indexed == 1
    assert [str(r) for r in report.rejected] == [str(r) for r in seen]
    assert [r.location for r in report.rejected] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert "indexed 1, unchanged 0, rejected 3" in report.summary()


def test_strict_leaves_the_index_byte_identical(fresh_index_dir, embedder, tmp_path):
    before = _snapshot(fresh_index_dir)
    records = _records()
    records[0]["title"] = "Changed title that would be re-embedded"
    lines = [json.dumps(r) for r in records] + ['{"id": "bad"}']
    path = tmp_path / "strict.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=r"strict.jsonl:25: .*missing title"):
        index_file(Settings(index_dir=fresh_index_dir), path, strict=True, embedder=embedder)
    assert _snapshot(fresh_index_dir) == before


def test_duplicate_ids_last_one_wins(tmp_path, embedder):
    path = _write(tmp_path / "dups.jsonl", [
        {"id": "d", "title": "First version"}, {"id": "e", "title": "Other"}, {"id": "d", "title": "Second version"}])
    report = index_file(Settings(index_dir=tmp_path / "idx"), path, embedder=embedder)
    assert len(report.duplicates) == 1 and f"{path}:3" in report.duplicates[0]
    store = IndexStore.open(tmp_path / "idx")
    assert store.count() == 2
    assert store.get_papers(["d"])["d"].title == "Second version"


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory):
    """A copy of the bundled model with one config byte changed: same weights, another fingerprint."""
    from models.embedder import resolve_model_path

    target = tmp_path_factory.mktemp("models") / "minilm-copy"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), target)
    config = target / "config_sentence_transformers.json"
    config.write_text(config.read_text().rstrip() + "\n\n")
    return target


def test_another_model_is_a_clear_error(fresh_index_dir, other_model_dir, tmp_path):
    from search.engine import SearchEngine

    before = _snapshot(fresh_index_dir)
    settings = Settings(index_dir=fresh_index_dir, model=str(other_model_dir))
    with pytest.raises(IndexModelMismatch, match="was built with model 'all-MiniLM-L6-v2'"):
        index_file(settings, _write(tmp_path / "one.jsonl", [{"id": "z", "title": "Z"}]))
    with pytest.raises(IndexModelMismatch, match="fingerprint"):
        SearchEngine.open(settings)
    assert _snapshot(fresh_index_dir) == before
    assert Embedder(str(other_model_dir)).fingerprint != IndexStore.open(fresh_index_dir).model.fingerprint


def test_a_stale_faiss_file_is_rebuilt_from_stored_embeddings(hnsw_index_dir):
    store = IndexStore.open(hnsw_index_dir)
    generation = store.generation
    layout.vector_file(hnsw_index_dir, generation).unlink()
    index, loaded_generation = store.load_vector_index()
    assert loaded_generation == generation and index.ntotal == 24


def test_a_flat_index_keeps_each_vector_once_and_switching_kind_moves_the_file(capsys, fresh_index_dir,
                                                                               embedder):
    """Flat is the stored vectors themselves: no FAISS file, built from SQLite on open. A kind that
    is more than that (hnsw) saves one; switching back to flat drops it."""
    from api.cli import main

    assert layout.vector_files(fresh_index_dir) == []
    store = IndexStore.open(fresh_index_dir)
    index, _ = store.load_vector_index()
    assert (index.name, index.ntotal, store.vector_file_problem, store.keeps_vector_file) == ("flat", 24, None, False)
    store.close()
    assert main(["rebuild", "--index", str(fresh_index_dir), "--index-type", "hnsw", "--quiet"]) == 0
    assert [p.name for p in layout.vector_files(fresh_index_dir)] == [layout.vector_file(".", 1).name]
    assert main(["rebuild", "--index", str(fresh_index_dir), "--index-type", "flat", "--quiet"]) == 0
    assert layout.vector_files(fresh_index_dir) == []
    assert check_index(fresh_index_dir).ok
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    try:
        assert engine.index_kind == "flat" and engine.search("lightweight OCR", limit=1, mode="dense")
    finally:
        engine.close()
