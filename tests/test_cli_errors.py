"""Errors end at the CLI edge: one line on stderr, a documented exit status, never a traceback.

Full and read-only disks are real: small tmpfs mounts (the tests run as root). Where mounting is
not permitted those variants skip, and an injected OSError(ENOSPC) at the file-write layer covers
the mapping.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from api.cli import main
from api.cli_errors import EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_SOME_REJECTED, EXIT_USAGE
from indexer.store import IndexStore, layout, vector_file
from tests.conftest import ROOT, SAMPLE


def one_line_error(capsys, *expected: str) -> str:
    """stderr holds exactly one line, no traceback, naming everything in `expected`."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for part in expected:
        assert part in err, err
    return err


def snapshot(index_dir: Path) -> tuple:
    """What an index holds: papers, their vectors and the write generation."""
    store = IndexStore.open(index_dir)
    try:
        papers = {p.paper_id: p for _, p in store.iter_papers()}
        vectors = store.embeddings_for(sorted(papers))
        return papers, {pid: v.tobytes() for pid, v in vectors.items()}, store.generation
    finally:
        store.close()


@pytest.fixture
def new_papers(tmp_path) -> Path:
    """The sample corpus under new ids: 24 papers an index does not hold yet."""
    path = tmp_path / "new.jsonl"
    path.write_text(SAMPLE.read_text().replace('"id": "seed-', '"id": "new-'))
    return path


# --- real mounts ---------------------------------------------------------------------------------


@contextmanager
def tmpfs(directory: Path, size: str):
    """A tmpfs of `size` at `directory`, or skip when this machine does not allow mounting."""
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
                    "the injected-ENOSPC test covers the mapping")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def _copy_index(source: Path, target: Path) -> Path:
    # Without the ONNX export (87 MB): these tests never encode a query.
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(
        layout.lock_file(source).name, layout.onnx_export_dir(source, "x").parent.name))
    return target


def _fill(directory: Path, leave_bytes: int) -> None:
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    with open(directory / "filler", "wb") as handle:
        handle.write(b"\0" * max(free - leave_bytes, 0))


@pytest.mark.parametrize("command", ["index", "delete"])
def test_a_full_disk_is_one_line_and_leaves_the_index_as_it_was(command, tmp_path, sample_index_dir, new_papers,
                                                                capsys):
    with tmpfs(tmp_path / "small", "4m") as disk:
        index_dir = _copy_index(sample_index_dir, disk / "index")
        before = snapshot(index_dir)
        _fill(disk, leave_bytes=64 * 1024)
        argv = [str(new_papers)] if command == "index" else ["seed-01", "seed-02"]
        assert main([command, *argv, "--index", str(index_dir)]) == EXIT_FAILURE
        one_line_error(capsys, str(index_dir), "disk is full", "Nothing was changed")
        (disk / "filler").unlink()
        assert snapshot(index_dir) == before
        assert main(["check", "--index", str(index_dir)]) == 0


def test_a_write_that_fits_on_a_nearly_full_disk_is_not_refused(tmp_path, sample_index_dir, new_papers, capsys):
    with tmpfs(tmp_path / "snug", "120m") as disk:
        # With the ONNX export this time: a write session would otherwise export one (87 MB).
        index_dir = disk / "index"
        shutil.copytree(sample_index_dir, index_dir, ignore=shutil.ignore_patterns(layout.lock_file(index_dir).name))
        _fill(disk, leave_bytes=3 << 20)
        assert main(["index", str(new_papers), "--index", str(index_dir), "--json"]) == 0, capsys.readouterr().err
        assert len(snapshot(index_dir)[0]) == 48


def test_a_read_only_directory_is_one_line_for_writes(tmp_path, sample_index_dir, new_papers, capsys):
    with tmpfs(tmp_path / "ro", "4m") as disk:
        index_dir = _copy_index(sample_index_dir, disk / "index")
        before = snapshot(index_dir)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        assert main(["index", str(new_papers), "--index", str(index_dir)]) == EXIT_FAILURE
        one_line_error(capsys, str(index_dir), "read-only")
        assert main(["delete", "seed-01", "--index", str(index_dir)]) == EXIT_FAILURE
        one_line_error(capsys, str(index_dir), "read-only")
        assert main(["index", str(new_papers), "--index", str(disk / "new-index")]) == EXIT_FAILURE
        one_line_error(capsys, str(disk / "new-index"), "read-only")
        # Reading from read-only media: an answer, or one line that says where the problem lies.
        if main(["info", "--index", str(index_dir)]) != 0:
            one_line_error(capsys, str(index_dir), "read-only file system")
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        assert snapshot(index_dir) == before


# --- the same fault injected where the writer writes files ----------------------------------------


def _disk_full_at(monkeypatch, when) -> list[Path]:
    """Make atomic_write_bytes raise ENOSPC for the paths `when` picks; returns the paths it refused."""
    real, refused = layout.atomic_write_bytes, []

    def write(path: Path, data: bytes) -> None:
        if when(Path(path)):
            refused.append(Path(path))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(layout, "atomic_write_bytes", write)  # every index file is written through it
    return refused


@pytest.mark.parametrize("command", ["index", "delete"])
def test_enospc_on_the_first_file_write_is_one_line_and_changes_nothing(command, fresh_index_dir, new_papers,
                                                                        monkeypatch, capsys):
    before = snapshot(fresh_index_dir)
    refused = _disk_full_at(monkeypatch, lambda path: True)
    argv = [str(new_papers)] if command == "index" else ["seed-01"]
    assert main([command, *argv, "--index", str(fresh_index_dir)]) == EXIT_FAILURE
    assert refused
    one_line_error(capsys, str(refused[0]), "disk is full")
    monkeypatch.undo()
    assert snapshot(fresh_index_dir) == before


@pytest.mark.parametrize("command", ["index", "delete"])
def test_enospc_on_the_vectors_file_leaves_the_index_as_it_was(command, hnsw_index_dir, new_papers, monkeypatch,
                                                               capsys):
    """(An HNSW index: a flat one keeps no vectors file.) The last write of a session commits
    together with its vectors file when a new snapshot is due (here: every write), so a full disk
    there rolls the records back too; once there is room, the same command succeeds."""
    monkeypatch.setattr(vector_file, "SNAPSHOT_MIN_CHANGES", 0)
    monkeypatch.setattr(vector_file, "SNAPSHOT_CHANGE_SHARE", 0.0)
    before = snapshot(hnsw_index_dir)
    refused = _disk_full_at(monkeypatch, lambda path: layout.is_vector_file(path))
    argv = [str(new_papers)] if command == "index" else ["seed-01"]
    assert main([command, *argv, "--index", str(hnsw_index_dir)]) == EXIT_FAILURE
    assert refused
    one_line_error(capsys, "disk is full")
    monkeypatch.undo()
    monkeypatch.setattr(vector_file, "SNAPSHOT_MIN_CHANGES", 0)
    monkeypatch.setattr(vector_file, "SNAPSHOT_CHANGE_SHARE", 0.0)
    assert snapshot(hnsw_index_dir) == before
    assert main(["check", "--index", str(hnsw_index_dir)]) == 0, capsys.readouterr()
    assert main([command, *argv, "--index", str(hnsw_index_dir)]) == 0, capsys.readouterr().err
    assert snapshot(hnsw_index_dir) != before


# --- paths that are not what they should be --------------------------------------------------------


def test_an_index_path_that_is_a_file(tmp_path, new_papers, capsys):
    not_a_dir = tmp_path / "notes.txt"
    not_a_dir.write_text("hello")
    for argv in (["search", "ocr"], ["info"], ["index", str(new_papers)], ["delete", "x"]):
        assert main([*argv, "--index", str(not_a_dir)]) == EXIT_FAILURE
        one_line_error(capsys, str(not_a_dir), "is a file")
    assert main(["index", str(new_papers), "--index", str(not_a_dir / "index")]) == EXIT_FAILURE
    one_line_error(capsys, str(not_a_dir), "not a directory")
    assert not_a_dir.read_text() == "hello"


@pytest.mark.parametrize("argv", [["search", "ocr"], ["related", "seed-01"], ["recommend", "-p", "seed-01"],
                                  ["info"], ["check"], ["delete", "seed-01"]])
def test_a_missing_index_directory(argv, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main([*argv, "--index", str(missing)]) == EXIT_FAILURE
    one_line_error(capsys, str(missing), "papersearch index")
    assert not missing.exists()  # reading (or deleting from) nothing creates nothing


def test_a_directory_or_missing_file_as_input(tmp_path, capsys):
    folder = tmp_path / "papers"
    folder.mkdir()
    assert main(["index", str(folder), "--index", str(tmp_path / "index")]) == EXIT_FAILURE
    one_line_error(capsys, str(folder), "is a directory")
    assert main(["index", str(tmp_path / "absent.jsonl"), "--index", str(tmp_path / "index")]) == EXIT_FAILURE
    one_line_error(capsys, "absent.jsonl", "no such input file")
    assert not (tmp_path / "index").exists()  # checked before the index is touched


# --- exit statuses of index -------------------------------------------------------------------------


def test_every_record_rejected_is_a_failure(fresh_index_dir, tmp_path, capsys):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a"}\n{"id": "b"}\n')
    assert main(["index", str(broken), "--index", str(fresh_index_dir)]) == EXIT_FAILURE
    assert "every record was rejected (2)" in capsys.readouterr().err
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"id": "ok-1", "title": "A title", "abstract": "Some text."}\n{"id": "c"}\n')
    assert main(["index", str(mixed), "--index", str(fresh_index_dir)]) == EXIT_SOME_REJECTED
    # Two files, one of them wholly rejected: the run failed.
    assert main(["index", str(mixed), str(broken), "--index", str(fresh_index_dir)]) == EXIT_FAILURE
    assert "ok-1" in snapshot(fresh_index_dir)[0]


# --- usage errors: exit 2 ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv, named", [
    (["serve", "--port", "99999"], "--port"),
    (["shards", "serve", "--port", "-1"], "--port"),
    (["index", "x.jsonl", "--batch-size", "0"], "--batch-size"),
    (["search", "ocr", "--limit", "-1"], "--limit"),
    (["search", "ocr", "--limit", "0"], "--limit"),
    (["related", "seed-01", "--offset", "-5"], "--offset"),
    (["index", "x.jsonl", "--ray", "--replicas", "0"], "--replicas"),
])
def test_numbers_out_of_range_are_usage_errors(argv, named, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert named in err and "must be" in err and "Traceback" not in err


def test_conflicting_arguments_are_refused(sample_index_dir, capsys):
    index = ["--index", str(sample_index_dir)]
    assert main(["related", "seed-03", "--text", "protein folding", *index]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("papersearch related: error:") and "not both" in err
    assert main(["recommend", "-p", "seed-03", "seed-17", "-n", "seed-17", *index]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("papersearch recommend: error:") and "'seed-17'" in err


# --- the real command in a subprocess -----------------------------------------------------------------


def _cli(*argv: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "api.cli", *argv], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def test_a_closed_output_pipe_stops_quietly(sample_index_dir):
    # The reader closes before the command prints, as `| head -1` does once it has its line.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = _cli("search", "protein folding", "--index", str(sample_index_dir), "--json", "-k", "24",
                       stdout=write_end)
    finally:
        os.close(write_end)
    _, err = process.communicate(timeout=300)
    assert process.returncode == EXIT_BROKEN_PIPE, err
    assert err == ""


def test_exit_statuses_of_the_real_command(sample_index_dir, tmp_path):
    usage = _cli("related", "seed-03", "--text", "x", "--index", str(sample_index_dir), stdout=subprocess.DEVNULL)
    assert usage.wait(timeout=300) == EXIT_USAGE and "not both" in usage.stderr.read()
    port = _cli("serve", "--port", "99999", stdout=subprocess.DEVNULL)
    assert port.wait(timeout=300) == EXIT_USAGE and "between 0 and 65535" in port.stderr.read()
    missing = _cli("search", "ocr", "--index", str(tmp_path / "nowhere"), stdout=subprocess.DEVNULL)
    assert missing.wait(timeout=300) == EXIT_FAILURE
    err = missing.stderr.read()
    assert err.count("\n") == 1 and "No index in" in err
    for process in (usage, port, missing):
        process.stderr.close()
