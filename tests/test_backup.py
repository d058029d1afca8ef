"""`papersearch backup`: a copy that checks clean and holds every write acknowledged before it
started, taken while another thread keeps writing through the real IndexWriter."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from api.cli import main
from indexer import lexical
from indexer.backup import backup_index
from indexer.build import add_papers
from indexer.check import check_index
from indexer.store import IndexStore, layout
from models.config import Settings
from models.paper import Paper
from tests.test_check import ranking


def ids_in(directory: Path) -> set[str]:
    store = IndexStore.open(directory)
    try:
        return {paper.paper_id for _, paper in store.iter_papers()}
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])  # flat keeps no FAISS file; hnsw's is copied
def test_a_backup_is_a_clean_copy_that_searches_alike(capsys, fresh_index_dir, hnsw_index_dir, tmp_path, embedder,
                                                      kind):
    source = hnsw_index_dir if kind == "hnsw" else fresh_index_dir
    target = tmp_path / "backup"
    assert main(["backup", "--index", str(source), str(target)]) == 0
    out = capsys.readouterr().out
    assert "24 papers, generation 1, checked OK" in out
    assert "copied:" in out and "lexical/" in out
    assert (layout.vector_file(target, 1).name in out) == (kind == "hnsw")
    saved = [layout.vector_file(".", 1).name] if kind == "hnsw" else []
    assert [p.name for p in layout.vector_files(target)] == saved
    assert check_index(target).ok
    assert ranking(target, embedder) == ranking(source, embedder)
    assert not list(tmp_path.glob(".*backup"))  # no staging folder left behind


def test_derived_parts_that_do_not_match_the_copy_are_rebuilt(hnsw_index_dir, tmp_path, embedder):
    layout.vector_file(hnsw_index_dir, 1).unlink()
    layout.lexical_state_file(hnsw_index_dir).unlink()
    report = backup_index(hnsw_index_dir, tmp_path / "backup")
    assert report.rebuilt == [layout.vector_file(".", 1).name, "lexical/ (BM25)"]
    assert check_index(tmp_path / "backup").ok
    assert ranking(tmp_path / "backup", embedder) == ranking(hnsw_index_dir, embedder)


def test_a_write_in_progress_is_not_copied_and_does_not_block_the_backup(fresh_index_dir, tmp_path):
    writer = sqlite3.connect(layout.db_file(fresh_index_dir), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a writer half-way through its transaction
    writer.execute("DELETE FROM papers WHERE paper_id='seed-01'")
    try:
        done: list = []
        thread = threading.Thread(target=lambda: done.append(backup_index(fresh_index_dir, tmp_path / "backup")))
        thread.start()
        thread.join(timeout=120)
        assert done, "the backup waited for the writer"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert "seed-01" in ids_in(tmp_path / "backup")


@pytest.mark.slow
def test_every_write_acknowledged_before_the_backup_is_in_the_copy(fresh_index_dir, tmp_path, embedder):
    settings = Settings(index_dir=fresh_index_dir)
    acknowledged: list[tuple[float, str]] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_writing() -> None:
        try:
            for number in range(200):  # bounded: about a write per second here, stopped after the backup
                if stop.is_set():
                    return
                paper = Paper(paper_id=f"live-{number:03d}", title=f"Live paper {number} on protein folding")
                add_papers(settings, [paper], embedder=embedder)
                acknowledged.append((time.monotonic(), paper.paper_id))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while len(acknowledged) < 3 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
        started = time.monotonic()
        report = backup_index(fresh_index_dir, tmp_path / "backup")
        finished = time.monotonic()
    finally:
        stop.set()
        thread.join(timeout=120)
    assert not failures, failures
    before = {pid for at, pid in acknowledged if at < started}
    during = [pid for at, pid in acknowledged if started <= at < finished]
    copied = ids_in(tmp_path / "backup")
    assert len(before) >= 3 and before <= copied
    # A prefix of the writes, never a gap: the copy is one committed state.
    live = sorted(pid for pid in copied if pid.startswith("live-"))
    assert live == [f"live-{n:03d}" for n in range(len(live))]
    assert report.papers == len(copied) == 24 + len(live)
    assert check_index(tmp_path / "backup").ok
    documents, rowids = lexical.disk_contents(tmp_path / "backup")
    assert documents == len(copied)
    print(f"backup took {finished - started:.1f}s; {len(before)} writes before it, {len(during)} during it")


def test_refusals_are_one_line(capsys, fresh_index_dir, tmp_path):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "something").write_text("x")
    for argv in (["backup", "--index", str(fresh_index_dir), str(occupied)],
                 ["backup", "--index", str(fresh_index_dir), str(fresh_index_dir / "inside")],
                 ["backup", "--index", str(tmp_path / "nothing"), str(tmp_path / "copy")]):
        assert main(argv) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert (occupied / "something").read_text() == "x" and not (fresh_index_dir / "inside").exists()


def test_a_damaged_source_leaves_no_backup(capsys, fresh_index_dir, tmp_path):
    with sqlite3.connect(layout.db_file(fresh_index_dir)) as db:  # a record changed behind the index's back
        db.execute("UPDATE papers SET embedding=zeroblob(16) WHERE paper_id='seed-02'")
    db.close()
    assert main(["backup", "--index", str(fresh_index_dir), str(tmp_path / "backup")]) == 1
    err = capsys.readouterr().err
    assert "did not check clean" in err and "embeddings" in err
    assert not (tmp_path / "backup").exists() and not list(tmp_path.glob(".*backup"))


def test_a_read_only_index_is_backed_up_without_writing_to_it(fresh_index_dir, tmp_path):
    from tests.test_readonly import read_only_mount

    with read_only_mount(fresh_index_dir, tmp_path / "ro") as source:
        report = backup_index(source, tmp_path / "backup")
    assert report.papers == 24 and not report.rebuilt
    assert check_index(tmp_path / "backup").ok
