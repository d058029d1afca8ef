"""`papersearch check` / `check --repair` / `rebuild`: damage each part of a real index and make
sure the CLI names it (exit 1, no traceback), the engine never serves it, and repair restores
what can be restored."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import faiss
import numpy as np
import pytest

from api.cli import main
from indexer.build import index_file
from indexer.check import check_index, repair_index
from indexer.store import IndexStore, WriteLock, layout
from models.config import Settings
from models.errors import IndexCorrupt, IndexNotBuilt
from search.engine import SearchEngine
from tests.conftest import SAMPLE

QUERY = "protein structure prediction"
# The FAISS file of the sample index after its one write.
VECTORS_1 = layout.vector_file(".", 1).name


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run the CLI in-process; an uncaught exception (a traceback for a user) fails the test."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def vector_file(directory: Path) -> Path:
    (path,) = layout.vector_files(directory)
    return path


def sql(directory: Path, statement: str, params=()) -> None:
    """Change papers.sqlite behind PaperSearch's back, as a user or a broken disk might."""
    with sqlite3.connect(layout.db_file(directory)) as db:
        db.execute(statement, params)
    db.close()


def ranking(directory: Path, embedder) -> list[tuple[str, float]]:
    engine = SearchEngine.open(Settings(index_dir=directory), encoder=embedder)
    try:
        return [(h.paper.paper_id, round(h.score, 5)) for h in engine.search(QUERY, limit=24)]
    finally:
        engine.close()


@pytest.fixture(scope="module")
def expected(sample_index_dir, embedder) -> list[tuple[str, float]]:
    return ranking(sample_index_dir, embedder)


def test_a_healthy_index_checks_clean(capsys, fresh_index_dir):
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 0, out
    assert "24 papers" in out and "OK" in out
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir), "--json")
    assert json.loads(out) == {"index": str(fresh_index_dir), "ok": True, "papers": 24, "generation": 1,
                               "model": "all-MiniLM-L6-v2", "problems": [], "repaired": []}


# --- the derived parts: FAISS file and manifest --------------------------------------------------


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _flip_vector_bytes(path: Path) -> None:
    """Same size, still a valid FAISS file, different vectors."""
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 2, len(data) // 2 + 64):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def _other_index_same_ids(path: Path) -> None:
    """A valid file with the right name, count and ids but another index's vectors."""
    index = faiss.read_index(str(path))
    ids = faiss.vector_to_array(index.id_map)
    matrix = index.reconstruct_batch(ids)
    other = faiss.IndexIDMap2(faiss.IndexFlatIP(index.d))
    other.add_with_ids(np.roll(matrix, 1, axis=0), ids)
    faiss.write_index(other, str(path))


@pytest.mark.parametrize("damage, words", [
    (_delete, "is missing"),
    (_truncate, "checksum differs"),
    (_flip_vector_bytes, "checksum differs"),
    (_other_index_same_ids, "checksum differs"),
])
def test_damaged_faiss_file_is_named_never_served_and_repaired(capsys, hnsw_index_dir, embedder, expected,
                                                               damage, words):
    damage(vector_file(hnsw_index_dir))
    code, out = cli(capsys, "check", "--index", str(hnsw_index_dir))
    assert code == 1
    assert f"[vectors] {VECTORS_1}" in out and words in out and "(repairable)" in out
    assert ranking(hnsw_index_dir, embedder) == expected  # rebuilt in memory, not read from the bad file

    code, out = cli(capsys, "check", "--repair", "--index", str(hnsw_index_dir))
    assert code == 0, out
    assert f"repaired: rebuilt {VECTORS_1} (hnsw) from 24 stored embeddings" in out
    assert check_index(hnsw_index_dir).ok
    assert IndexStore.open(hnsw_index_dir).load_vector_index()[0].ntotal == 24
    assert ranking(hnsw_index_dir, embedder) == expected


@pytest.mark.parametrize("damage, words", [
    (_truncate, "cannot be read"),
    (_flip_vector_bytes, f"holds different vectors than {layout.DB_FILE} for"),
])
def test_damage_is_found_without_a_recorded_checksum(capsys, hnsw_index_dir, damage, words):
    """Indexes saved before checksums were recorded (or a crash between save and record)."""
    sql(hnsw_index_dir, "DELETE FROM meta WHERE key='vectors_digest'")
    damage(vector_file(hnsw_index_dir))
    code, out = cli(capsys, "check", "--index", str(hnsw_index_dir))
    assert code == 1 and words in out, out
    assert repair_index(hnsw_index_dir).ok


def test_a_rerun_of_index_rewrites_a_damaged_file_even_when_nothing_changed(hnsw_index_dir, embedder):
    _flip_vector_bytes(vector_file(hnsw_index_dir))
    report = index_file(Settings(index_dir=hnsw_index_dir), SAMPLE, embedder=embedder)
    assert (report.indexed, report.embedded, report.unchanged) == (0, 0, 24)
    assert check_index(hnsw_index_dir).ok


def test_a_rerun_of_index_removes_temp_files_of_a_killed_save(fresh_index_dir, embedder):
    handle, name = layout.temp_file_for(layout.vector_file(fresh_index_dir, 7))  # as a save killed mid-way
    os.close(handle)
    leftover = Path(name)
    leftover.write_bytes(b"half a file")
    problems = check_index(fresh_index_dir).problems
    assert [(p.part, p.repairable) for p in problems] == [("files", True)]
    index_file(Settings(index_dir=fresh_index_dir), SAMPLE, embedder=embedder)
    assert not leftover.exists()
    assert check_index(fresh_index_dir).ok


@pytest.mark.parametrize("damage, words", [
    (lambda p: p.unlink(), f"{layout.MANIFEST_FILE} is missing"),
    (lambda p: os.truncate(p, 10), f"{layout.MANIFEST_FILE} is unreadable"),
    (lambda p: p.write_text(p.read_text().replace('"papers": 24', '"papers": 25')), "papers is 25, should be 24"),
    (lambda p: p.write_text(p.read_text().replace('"fingerprint": "', '"fingerprint": "0')), "model is"),
])
def test_damaged_manifest_is_named_and_rewritten(capsys, fresh_index_dir, damage, words):
    damage(layout.manifest_file(fresh_index_dir))
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 1 and "[manifest]" in out and words in out, out
    code, out = cli(capsys, "check", "--repair", "--index", str(fresh_index_dir))
    assert code == 0 and f"rewrote {layout.MANIFEST_FILE}" in out, out
    assert json.loads(layout.manifest_file(fresh_index_dir).read_text())["papers"] == 24


def test_index_type_changed_without_a_new_file_is_reported_and_rebuilt(capsys, fresh_index_dir):
    sql(fresh_index_dir, "UPDATE meta SET value='hnsw' WHERE key='index_type'")
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 1 and f"{VECTORS_1} is missing" in out  # a flat index keeps no file; hnsw needs one
    assert repair_index(fresh_index_dir).ok
    code, out = cli(capsys, "info", "--index", str(fresh_index_dir), "--json")
    assert json.loads(out)["index_type"] == "hnsw"


def test_rebuild_switches_structure_without_re_embedding(capsys, fresh_index_dir, embedder, expected):
    code, out = cli(capsys, "rebuild", "--index", str(fresh_index_dir), "--index-type", "hnsw")
    assert code == 0, out
    assert "set the index type to hnsw" in out and f"rebuilt {VECTORS_1} (hnsw)" in out
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    assert engine.index_kind == "hnsw"
    engine.close()
    assert ranking(fresh_index_dir, embedder)[:5] == expected[:5]


# --- the source of truth: papers.sqlite ----------------------------------------------------------


def _garbage_in_the_middle(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        handle.write(os.urandom(8192))


@pytest.mark.parametrize("damage, words", [
    (lambda p: os.truncate(p, p.stat().st_size // 2), "database disk image is malformed"),
    (lambda p: os.truncate(p, 0), "holds no PaperSearch tables"),
    (lambda p: p.write_bytes(os.urandom(4096) + p.read_bytes()[4096:]), "not a readable SQLite database"),
    (_garbage_in_the_middle, f"{layout.DB_FILE} is damaged"),  # SQLite's words depend on the page hit
])
def test_damaged_sqlite_gives_a_clear_message_everywhere(capsys, fresh_index_dir, damage, words):
    damage(layout.db_file(fresh_index_dir))
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 1 and "[sqlite]" in out and words in out and "(not repairable here)" in out, out
    code, out = cli(capsys, "check", "--repair", "--index", str(fresh_index_dir))
    assert code == 1 and "repaired:" not in out
    code, out = cli(capsys, "search", QUERY, "--index", str(fresh_index_dir))
    assert code == 1 and out.startswith("error: ") and layout.DB_FILE in out, out
    assert layout.lexical_state_file(fresh_index_dir).exists()  # repair did not throw away the derived files either


def test_missing_sqlite_is_not_mistaken_for_an_empty_directory(capsys, fresh_index_dir):
    layout.db_file(fresh_index_dir).unlink()
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 1 and f"{layout.DB_FILE} is missing (only {layout.MANIFEST_FILE} remain)" in out
    code, out = cli(capsys, "search", QUERY, "--index", str(fresh_index_dir))
    assert code == 1 and "No index in" in out


def test_a_row_removed_behind_our_back_is_found_and_the_vectors_follow(capsys, hnsw_index_dir, embedder):
    sql(hnsw_index_dir, "DELETE FROM papers WHERE rowid = 5")
    code, out = cli(capsys, "check", "--index", str(hnsw_index_dir))
    assert code == 1
    assert "holds 24 vectors for 23 stored papers (0 papers missing from it, 1 vectors without a paper)" in out
    assert "[manifest]" in out and "papers is 24, should be 23" in out
    engine = SearchEngine.open(Settings(index_dir=hnsw_index_dir), encoder=embedder)
    assert engine._index.ntotal == 23  # the engine rebuilt from SQLite instead of trusting the file
    engine.close()
    assert repair_index(hnsw_index_dir).ok


def test_a_changed_text_or_broken_embedding_is_re_embedded_by_repair(capsys, fresh_index_dir, embedder):
    store = IndexStore.open(fresh_index_dir)
    original = store.embeddings_for(["seed-03"])["seed-03"]
    store.close()
    sql(fresh_index_dir, "UPDATE papers SET embedding = ? WHERE paper_id = 'seed-03'", (b"\0" * 10,))
    sql(fresh_index_dir, "UPDATE papers SET title = title || ' (edited)' WHERE rowid = 2")
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 1
    assert "1 stored embedding(s) are unusable: 'seed-03' (10 bytes instead of 768)" in out
    assert "1 paper(s) have a text that does not match the content hash" in out
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    with pytest.raises(IndexCorrupt, match="the stored embedding of 'seed-03' is damaged"):
        engine.related("seed-03")
    engine.close()

    report = repair_index(fresh_index_dir, embedder=embedder)
    assert report.ok, report.problems
    assert report.repaired[0] == "re-embedded 2 paper(s) from their stored text"
    store = IndexStore.open(fresh_index_dir)
    assert np.allclose(store.embeddings_for(["seed-03"])["seed-03"], original, atol=2.5e-4)  # float16 steps
    store.close()


def test_wrong_model_fingerprint_is_reported_and_not_papered_over(capsys, fresh_index_dir):
    sql(fresh_index_dir, "UPDATE meta SET value='0123456789abcdef' WHERE key='model_fingerprint'")
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 1
    assert "[model] the index was built with 'all-MiniLM-L6-v2' fingerprint 0123456789abcdef" in out
    assert "[embeddings]" not in out  # hashes cannot be judged against an unknown model
    code, out = cli(capsys, "check", "--repair", "--index", str(fresh_index_dir))
    assert code == 1 and f"rewrote {layout.MANIFEST_FILE}" in out and "(not repairable here)" in out
    code, out = cli(capsys, "search", QUERY, "--index", str(fresh_index_dir))
    assert code == 1 and "fingerprint 0123456789abcdef" in out


def test_an_index_whose_creation_never_committed_says_so(capsys, fresh_index_dir):
    sql(fresh_index_dir, "DELETE FROM meta")
    with pytest.raises(IndexNotBuilt, match="was never finished"):
        IndexStore.open(fresh_index_dir)
    code, out = cli(capsys, "search", QUERY, "--index", str(fresh_index_dir))
    assert code == 1 and "was never finished" in out


def test_check_refuses_to_judge_an_index_being_written(capsys, fresh_index_dir):
    with WriteLock(fresh_index_dir):
        code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 1 and "Another process is writing" in out


def test_check_of_a_directory_without_an_index(capsys, tmp_path):
    code, out = cli(capsys, "check", "--index", str(tmp_path / "nothing"))
    assert code == 1 and "No index in" in out


# --- the BM25 index and the ONNX export ------------------------------------------------------------


def _drop_lexical_documents(directory: Path, rowids: list[int]) -> None:
    """Delete documents from tantivy behind PaperSearch's back, leaving a state file that claims it is current."""
    from indexer import lexical

    state = layout.lexical_state_file(directory).read_bytes()
    index = lexical.open_index(layout.lexical_path(directory))
    writer = index.writer(heap_size=15_000_000, num_threads=1)
    for rowid in rowids:
        writer.delete_documents_by_term(lexical.ROWID_FIELD, rowid)
    writer.commit()
    writer.wait_merging_threads()
    layout.lexical_state_file(directory).write_bytes(state)


@pytest.mark.parametrize("damage, words", [
    (lambda d: __import__("shutil").rmtree(layout.lexical_path(d)), "is missing or has no state file"),
    (lambda d: _drop_lexical_documents(d, [1, 2]), "holds 22 documents for 24 stored papers (2 papers missing"),
])
def test_a_damaged_bm25_index_is_named_and_rebuilt(capsys, fresh_index_dir, damage, words):
    damage(fresh_index_dir)
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 1 and "[lexical]" in out and words in out and "(repairable)" in out, out
    code, out = cli(capsys, "check", "--repair", "--index", str(fresh_index_dir))
    assert code == 0, out
    assert "rebuilt the lexical index from 24 stored records" in out
    from indexer import lexical

    documents, rowids = lexical.disk_contents(fresh_index_dir)
    assert documents == 24 and rowids.tolist() == list(range(1, 25))


def _onnx_model(directory: Path) -> Path:
    (folder,) = (directory / layout.ONNX_DIR).iterdir()
    return folder / "model.onnx"


@pytest.mark.parametrize("recorded", [True, False])
def test_an_onnx_export_cut_in_half_is_named_and_re_exported(capsys, fresh_index_dir, recorded):
    if not recorded:  # an export made before its checksums were recorded: found by loading it
        sql(fresh_index_dir, "DELETE FROM meta WHERE key='onnx_export'")
    else:
        assert IndexStore.open(fresh_index_dir).recorded_export(
            IndexStore.open(fresh_index_dir).model.fingerprint), "the writer records the export's checksums"
    _truncate(_onnx_model(fresh_index_dir))
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 1 and "[onnx]" in out and "(repairable)" in out, out
    assert ("model.onnx" in out and "checksum differs" in out) if recorded else "cannot be loaded" in out
    code, out = cli(capsys, "check", "--repair", "--index", str(fresh_index_dir))
    assert code == 0, out
    assert "exported the model to" in out
    assert check_index(fresh_index_dir).ok
    from models.onnx_encoder import OnnxEmbedder

    vector = OnnxEmbedder(_onnx_model(fresh_index_dir).parent).encode([QUERY], "query")[0]
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4  # a working export again


def test_a_missing_onnx_export_is_not_a_fault_and_rebuild_makes_it(capsys, fresh_index_dir):
    __import__("shutil").rmtree(fresh_index_dir / layout.ONNX_DIR)  # as a copy made without it
    code, out = cli(capsys, "check", "--index", str(fresh_index_dir))
    assert code == 0, out
    code, out = cli(capsys, "rebuild", "--index", str(fresh_index_dir))
    assert code == 0 and "exported the model to" in out, out
    assert _onnx_model(fresh_index_dir).is_file() and check_index(fresh_index_dir).ok
