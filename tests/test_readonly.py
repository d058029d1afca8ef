"""An index this process cannot write: a read-only bind mount (where the test may make one), and
files without write permission for an unprivileged user (where the test may switch to one).

Reads (search, related, recommend, info, check, the API) must work and write nothing; every write
must fail with one line that says the index is read-only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from indexer.store import layout
from models.config import Settings
from search.engine import SearchEngine
from tests.conftest import ROOT, SAMPLE

KEY = "test-key-0123456789"
QUERY = "protein structure prediction"


@contextlib.contextmanager
def read_only_mount(source: Path, target: Path):
    """`source` bind-mounted read-only at `target`; skips the test where mounts are not permitted."""
    target.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root or CAP_SYS_ADMIN)")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield target
    finally:
        subprocess.run(["umount", "--lazy", str(target)], check=True)  # in-process CLI runs leave files open


@pytest.fixture
def mounted(fresh_index_dir, tmp_path):
    """A private copy of the sample index, seen read-only through a bind mount."""
    with read_only_mount(fresh_index_dir, tmp_path / "ro") as target:
        yield target


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def top_ids(directory: Path, embedder, mode: str = "hybrid") -> list[str]:
    engine = SearchEngine.open(Settings(index_dir=directory), encoder=embedder)
    try:
        return [h.paper.paper_id for h in engine.search(QUERY, limit=5, mode=mode)]
    finally:
        engine.close()


def test_every_read_works_on_a_read_only_mount(capsys, fresh_index_dir, mounted, embedder):
    expected = top_ids(fresh_index_dir, embedder)
    assert top_ids(mounted, embedder) == expected
    assert top_ids(mounted, embedder, mode="lexical") == top_ids(fresh_index_dir, embedder, mode="lexical")
    index = ["--index", str(mounted)]
    for argv in (["search", QUERY, "--json"], ["related", "seed-01"], ["recommend", "-p", "seed-01", "seed-02"],
                 ["info", "--json"], ["check"]):
        code, out, err = cli(capsys, *argv, *index)
        assert code == 0, (argv, out, err)
        assert "Traceback" not in err
    code, out, _ = cli(capsys, "check", *index)
    assert "OK:" in out


@pytest.mark.parametrize("argv", [["index", str(SAMPLE)], ["delete", "seed-01"], ["check", "--repair"],
                                  ["rebuild"]])
def test_every_write_on_a_read_only_mount_is_one_line(capsys, mounted, argv):
    code, out, err = cli(capsys, *argv, "--index", str(mounted))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "read-only" in lines[0], err


def test_the_api_serves_a_read_only_mount_and_refuses_writes(mounted, embedder):
    app = create_app(Settings(index_dir=mounted, api_key=KEY), embedder=embedder)
    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "ready"
        hits = client.get("/search", params={"q": QUERY, "limit": 3}).json()
        assert len(hits["results"]) == 3
        assert client.get("/papers/seed-01/related").status_code == 200
        response = client.post("/papers", json=[{"id": "new-1", "title": "A new paper"}],
                               headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "read_only"
        assert "read-only" in response.json()["error"]["message"]
        assert client.delete("/papers/seed-01", headers={"Authorization": f"Bearer {KEY}"}).status_code == 403
        assert client.get("/stats").json()["writes_enabled"] is False


def test_stale_derived_parts_are_reported_not_rebuilt(caplog, fresh_index_dir, tmp_path, embedder):
    """A stale BM25 index and a missing ONNX export: served from memory and torch, with a note each."""
    shutil.rmtree(fresh_index_dir / "onnx")
    layout.lexical_state_file(fresh_index_dir).unlink()
    with read_only_mount(fresh_index_dir, tmp_path / "ro") as mounted:
        before = snapshot(mounted)
        with caplog.at_level("WARNING", logger="papersearch"):
            engine = SearchEngine.open(Settings(index_dir=mounted))  # the query encoder it picks itself
            try:
                assert [h.paper.paper_id for h in engine.search(QUERY, limit=3, mode="lexical")][0] == "seed-01"
            finally:
                engine.close()
        notes = " ".join(r.getMessage() for r in caplog.records)
        assert "lexical (BM25) index" in notes and "in-memory copy" in notes
        assert "no onnx export" in notes and "read-only here" in notes
        assert snapshot(mounted) == before
        code = main(["check", "--index", str(mounted)])
        assert code == 1  # the BM25 index is stale; the missing export is not a fault


def _wal_with_pending_commit(source: Path, target: Path, with_shm: bool) -> None:
    """Copy an index while a writer has a commit in its WAL (not yet checkpointed)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*[p.name for p in layout.db_sidecar_files(source)]))
    db = sqlite3.connect(layout.db_file(target), isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("UPDATE papers SET title='Pending title' WHERE paper_id='seed-01'")
    copy = target.parent / (target.name + "-copy")
    shm = layout.db_sidecar_files(target)[1].name
    shutil.copytree(target, copy, ignore=None if with_shm else shutil.ignore_patterns(shm))
    db.close()
    shutil.rmtree(target)
    copy.rename(target)


@pytest.mark.parametrize("with_shm", [True, False])
def test_a_copy_taken_mid_write_is_read_whole_or_refused(capsys, fresh_index_dir, tmp_path, with_shm):
    source = tmp_path / "copied"
    _wal_with_pending_commit(fresh_index_dir, source, with_shm)
    with read_only_mount(source, tmp_path / "ro") as mounted:
        code, out, err = cli(capsys, "search", QUERY, "--mode", "lexical", "--json", "-k", "1", "--index", str(mounted))
        if with_shm:
            assert code == 0 and "Pending title" in out  # the WAL's commit is read, not dropped
        else:
            assert code == 1 and len(err.strip().splitlines()) == 1
            assert "-wal" in err and "papersearch backup" in err


# --- without write permission: the permission path -------------------------------------------------
# Root ignores file permissions through CAP_DAC_OVERRIDE; a child started without it (and without
# CAP_DAC_READ_SEARCH and CAP_FOWNER) meets them as any user would, while still reading the
# installed packages wherever they live.
DROPPED = "-dac_override,-dac_read_search,-fowner"


def _without_override(argv: list[str]) -> subprocess.CompletedProcess:
    command = ["setpriv", f"--bounding-set={DROPPED}", sys.executable, "-m", "api.cli", *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_without_write_permission_reads_work_and_writes_are_one_line(fresh_index_dir, tmp_path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop the permission override")
    index = tmp_path / "no-write"
    shutil.copytree(fresh_index_dir, index, ignore=shutil.ignore_patterns(
        *[p.name for p in layout.db_sidecar_files(fresh_index_dir)], layout.LOCK_FILE))
    for path in [index, *index.rglob("*")]:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    try:
        before = snapshot(index)
        for argv in (["search", QUERY, "-k", "3"], ["related", "seed-01", "-k", "2"], ["info"], ["check"]):
            done = _without_override([*argv, "--index", str(index)])
            assert done.returncode == 0, (argv, done.stdout, done.stderr)
            assert "in-memory copy" not in done.stderr  # the BM25 index on disk was read, not rebuilt
        for argv in (["delete", "seed-01"], ["check", "--repair"]):
            done = _without_override([*argv, "--index", str(index)])
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 1 and len(lines) == 1 and "not writable" in lines[0], (argv, done.stderr)
        assert snapshot(index) == before
    finally:
        for path in [index, *index.rglob("*")]:
            if path.is_dir():
                os.chmod(path, 0o755)
