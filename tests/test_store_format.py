"""Index format compatibility: an index made by an earlier release opens (upgraded in place when the
format moved on), and one of a newer format is refused with one line.

tests/fixtures/index-format1 is the 24 sample papers indexed by the release before the read-only
and backup work (format 1), committed without its ONNX export. It is only ever opened from a copy.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from api.cli import main
from indexer.check import check_index, repair_index
from indexer.store import IndexStore, layout, migrate
from models.config import Settings
from models.errors import IndexCorrupt
from search.engine import SearchEngine

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "index-format1"
QUERY = "protein structure prediction"
SEED_02_TITLE = "PP-LiteSeg: A Superior Real-Time Semantic Segmentation Model"


@pytest.fixture
def old_index(tmp_path) -> Path:
    target = tmp_path / "format1"
    shutil.copytree(FIXTURE, target)
    return target


def meta(directory: Path, key: str) -> str | None:
    with sqlite3.connect(f"file:{layout.db_file(directory)}?mode=ro", uri=True) as db:
        row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    db.close()
    return row[0] if row else None


def test_the_fixture_is_small_and_format_1():
    """Format 1 for good: when the format moves on, this fixture is what the new step must open."""
    size = sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file())
    assert size < 400_000, size
    assert json.loads(layout.manifest_file(FIXTURE).read_text())["format_version"] == 1
    assert not (FIXTURE / layout.ONNX_DIR).exists()


def test_an_index_of_the_previous_release_opens_searches_and_checks_clean(old_index, embedder):
    engine = SearchEngine.open(Settings(index_dir=old_index), encoder=embedder)
    try:
        for mode in ("dense", "lexical", "hybrid"):
            hits = engine.search(QUERY, limit=3, mode=mode)
            assert hits[0].paper.paper_id == "seed-01", mode
        assert engine.store.count() == 24 and engine.store.vector_file_problem is None
    finally:
        engine.close()
    assert check_index(old_index).ok


def _add_a_table(db: sqlite3.Connection, directory: Path) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS format_two_probe (x INTEGER)")


CURRENT = migrate.FORMAT_VERSION
NEXT = CURRENT + 1


@pytest.fixture
def format_two(monkeypatch):
    """The next release's format, with a real step to it (what a vector storage change would add)."""
    monkeypatch.setattr(migrate, "FORMAT_VERSION", NEXT)
    monkeypatch.setitem(migrate.MIGRATIONS, CURRENT, migrate.Migration("add the probe table", _add_a_table))


def test_an_older_format_is_upgraded_in_place_on_open(format_two, old_index, embedder):
    assert [p.part for p in check_index(old_index).problems] == ["format"]  # check reports, writes nothing
    assert meta(old_index, "format_version") == "1"  # as the previous release made it
    engine = SearchEngine.open(Settings(index_dir=old_index), encoder=embedder)
    try:
        assert engine.search(QUERY, limit=1)[0].paper.paper_id == "seed-01"
    finally:
        engine.close()
    assert meta(old_index, "format_version") == str(NEXT)
    assert json.loads(layout.manifest_file(old_index).read_text())["format_version"] == NEXT
    with sqlite3.connect(layout.db_file(old_index)) as db:
        assert db.execute("SELECT count(*) FROM format_two_probe").fetchone() == (0,)
    db.close()
    assert check_index(old_index).ok


def test_repair_upgrades_and_a_new_index_runs_the_same_steps(format_two, old_index, tmp_path, embedder,
                                                            sample_index_dir):  # its export is linked, not traced
    report = repair_index(old_index)
    assert report.ok and any(f"upgraded the index format from {CURRENT} to {NEXT}" in line for line in report.repaired)
    from indexer.build import add_papers
    from models.paper import Paper

    fresh = tmp_path / "new"
    add_papers(Settings(index_dir=fresh), [Paper(paper_id="p1", title="A paper")], embedder=embedder)
    assert meta(fresh, "format_version") == str(NEXT)
    with sqlite3.connect(layout.db_file(fresh)) as db:
        assert db.execute("SELECT count(*) FROM format_two_probe").fetchone() == (0,)
    db.close()


def test_a_missing_step_is_refused_before_any_step_runs(monkeypatch, old_index):
    monkeypatch.setattr(migrate, "FORMAT_VERSION", NEXT)
    with pytest.raises(IndexCorrupt, match=f"No upgrade from index format {CURRENT} to {NEXT}"):
        IndexStore.open(old_index)
    assert meta(old_index, "format_version") == "1"  # not even the steps that exist ran


@pytest.mark.parametrize("where", ["sqlite", "manifest"])
@pytest.mark.parametrize("command", [["search", QUERY], ["info"], ["check"], ["delete", "seed-01"]])
def test_a_newer_format_is_refused_with_one_line(capsys, old_index, where, command):
    if where == "sqlite":
        with sqlite3.connect(layout.db_file(old_index)) as db:
            db.execute("UPDATE meta SET value='99' WHERE key='format_version'")
        db.close()
    else:
        path = layout.manifest_file(old_index)
        path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
    before = {p.name: p.read_bytes() for p in old_index.iterdir() if p.is_file()}
    code = main([*command, "--index", str(old_index)])
    captured = capsys.readouterr()
    if command == ["check"]:  # check reports it as its one (unrepairable) problem
        assert code == 1 and "format 99" in captured.out and "Upgrade PaperSearch" in captured.out
    else:
        lines = captured.err.strip().splitlines()
        assert code == 1 and len(lines) == 1, captured.err
        assert "index format 99" in lines[0] and "Upgrade PaperSearch" in lines[0]
    after = {p.name: p.read_bytes() for p in old_index.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k in before} == before  # nothing rewritten


# --- format 2: float16 vectors and compressed abstracts beside format-1 rows ------------------------


def _stored_forms(directory: Path) -> dict[str, tuple[int, type]]:
    """paper_id -> (embedding bytes, type of the stored abstract), read with plain sqlite3."""
    with sqlite3.connect(f"file:{layout.db_file(directory)}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT paper_id, length(embedding), abstract FROM papers").fetchall()
    db.close()
    return {pid: (size, type(abstract)) for pid, size, abstract in rows}


def test_rows_of_both_formats_read_alike_after_the_upgrade(old_index, embedder):
    from indexer.build import add_papers
    from models.paper import Paper

    old = IndexStore.open(old_index, upgrade=False)
    before = {paper.paper_id: paper for _, paper in old.iter_papers()}
    old.close()
    new = Paper(paper_id="new-1", title="Lightweight OCR for receipts",
                abstract="We recognise text on shop receipts with a small convolutional network. " * 3)
    add_papers(Settings(index_dir=old_index), [new], embedder=embedder)  # upgrades to format 2 first
    assert meta(old_index, "format_version") == str(migrate.FORMAT_VERSION)
    forms = _stored_forms(old_index)
    assert forms["new-1"] == (embedder.info.dimension * 2, bytes)  # float16, a zstd frame
    assert forms["seed-01"] == (embedder.info.dimension * 4, str)  # format-1 rows are left as they were
    store = IndexStore.open(old_index)
    try:
        assert {p.paper_id: p for _, p in store.iter_papers() if p.paper_id in before} == before
        assert store.get_papers(["new-1"])["new-1"] == new
        vectors = store.embeddings_for(["new-1", "seed-01"])
        assert {k: v.dtype for k, v in vectors.items()} == {"new-1": np.float32, "seed-01": np.float32}
    finally:
        store.close()
    engine = SearchEngine.open(Settings(index_dir=old_index), encoder=embedder)
    try:
        assert engine.search("OCR on shop receipts", limit=1, mode="dense")[0].paper.paper_id == "new-1"
        assert engine.search(QUERY, limit=1, mode="hybrid")[0].paper.paper_id == "seed-01"
        assert engine.related("new-1", limit=3)  # a float16 row as the query
    finally:
        engine.close()
    assert check_index(old_index).ok


def test_a_damaged_compressed_abstract_is_one_line_naming_the_file(capsys, fresh_index_dir):
    with sqlite3.connect(layout.db_file(fresh_index_dir)) as db:
        db.execute("UPDATE papers SET abstract=? WHERE paper_id='seed-02'", (b"\x28\xb5\x2f\xfd garbage",))
    db.close()
    code = main(["search", SEED_02_TITLE, "--mode", "lexical", "--index", str(fresh_index_dir)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "stored abstract cannot be decompressed" in lines[0], lines
