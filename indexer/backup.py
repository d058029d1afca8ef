"""`papersearch backup`: a consistent, self-checking copy of an index, taken while writers go on.

1. papers.sqlite through SQLite's online backup, in one step: the copy holds the database as of
   one committed transaction, so every write acknowledged before the backup started is in it, and
   no half of a later one. In WAL mode neither blocks the other: a server keeps writing.
   The copy's generation G says which derived files agree with it.
2. The FAISS file of G is copied when the source still has it and it verifies against the copy
   (its checksum recorded for G, its ids the copy's rows); otherwise it is rebuilt from the copied
   embeddings (no model needed).
3. The BM25 index is copied when its state names G and its documents are exactly the copy's rows
   (a rowid's text never changes, so equal ids mean equal contents); otherwise it is rebuilt from
   the copied records. A tantivy commit racing the copy just means a rebuild.
4. The ONNX export is copied (its files never change once made) and checked against the checksums
   the copy records; one that does not match is left out (searches then load sentence-transformers
   and `papersearch rebuild` makes a new one).
5. manifest.json is written for the copy, then `check_index` runs on it. Everything is written into
   a temp folder beside DEST and renamed into place only when the check passes: DEST is either
   absent or a complete index that checks clean.

The source is only read (read-only SQLite, no lock), so a read-only index can be backed up too; an
index of an older format is upgraded in the copy, never in the source.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer import lexical
from indexer.check import check_index
from indexer.lexical import LexicalWriter
from indexer.store import IndexStore, layout
from models import onnx_digests, onnx_encoder
from models.errors import IndexCorrupt, IndexNotBuilt, InvalidInput


@dataclass
class BackupReport:
    """What `backup_index` wrote: the copy's size and generation, and how each derived part got there."""

    directory: Path
    papers: int = 0
    generation: int = 0
    copied: list[str] = field(default_factory=list)   # parts copied from the source and verified
    rebuilt: list[str] = field(default_factory=list)  # parts rebuilt from the copied records
    left_out: list[str] = field(default_factory=list)  # parts not in the copy, and why
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"backup": str(self.directory), "papers": self.papers, "generation": self.generation,
                "copied": self.copied, "rebuilt": self.rebuilt, "left_out": self.left_out,
                "seconds": round(self.seconds, 2)}


def backup_index(source: str | Path, destination: str | Path) -> BackupReport:
    """Copy the index in `source` into the new directory `destination` (see the module docstring)."""
    started = time.perf_counter()
    source, destination = Path(source), Path(destination)
    _check_places(source, destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".backup"))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it owner-only; an index is meant to be shared with readers
        report = _copy(source, staging)
        checked = check_index(staging)
        if not checked.ok:
            problems = "; ".join(f"[{p.part}] {p.message}" for p in checked.problems[:3])
            raise IndexCorrupt(f"The copy of {source} did not check clean ({problems}); nothing was written to "
                               f"{destination}. Run 'papersearch check --index {source}'.")
        os.replace(staging, destination)  # onto an empty directory, or a new name
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.directory = destination
    report.seconds = time.perf_counter() - started
    return report


def _check_places(source: Path, destination: Path) -> None:
    if not layout.db_file(source).is_file():
        raise IndexNotBuilt(f"No index in {source} to back up - give its directory with --index.")
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise InvalidInput(f"{destination} already exists and is not an empty directory; back up into a new one.")
    inside = destination.resolve()
    if inside == source.resolve() or source.resolve() in inside.parents:
        raise InvalidInput(f"{destination} is inside the index {source}; back up to a directory outside it.")


def _copy(source: Path, target: Path) -> BackupReport:
    origin = IndexStore.open(source, upgrade=False)  # read-only; an older format is upgraded in the copy
    try:
        origin.copy_database_to(layout.db_file(target))
    finally:
        origin.close()
    store = IndexStore.open(target, writable=True)  # nobody else knows the staging folder: no lock needed
    try:
        report = BackupReport(target, papers=store.count(), generation=store.generation)
        _vectors(source, store, report)
        _lexical(source, store, report)
        _onnx(source, store, report)
        store.write_manifest()
    finally:
        store.close()
    return report


def _vectors(source: Path, store: IndexStore, report: BackupReport) -> None:
    if not store.keeps_vector_file:
        return  # a flat index is built from the copied database on open
    generation = store.generation
    # The copy's own record names the snapshot it catches up from (it may lag behind `generation`).
    saved_for = store.snapshot_generation
    name = layout.vector_file(store.directory, generation if saved_for is None else saved_for)
    try:
        shutil.copyfile(source / name.name, name)  # gone already if a writer moved on
    except FileNotFoundError:
        pass
    index, _ = store.vector_file_status(generation)
    # Verified by checksum too, not by ids alone: a file a writer saved after the database was
    # copied may have the same name, but its checksum is recorded only in a later transaction.
    if index is not None and saved_for is not None:
        report.copied.append(name.name)
        return
    name.unlink(missing_ok=True)
    store.save_vector_index(store.build_vector_index(), generation)
    report.rebuilt.append(layout.vector_file(store.directory, generation).name)


def _lexical(source: Path, store: IndexStore, report: BackupReport) -> None:
    folder = layout.lexical_path(store.directory)
    state = lexical.recorded_state(source)
    if state is not None and state.get("generation") == store.generation:
        try:
            shutil.copytree(layout.lexical_path(source), folder)
            if lexical.is_current(store.directory, store):
                documents, rowids = lexical.disk_contents(store.directory)
                if documents == len(rowids) and np.array_equal(rowids, store.all_rowids()):
                    report.copied.append(f"{folder.name}/ (BM25)")
                    return
        except (OSError, ValueError, shutil.Error):
            pass  # a tantivy commit or merge removed files under the copy: rebuild instead
    writer = LexicalWriter(store.directory, store)
    writer.rebuild()
    writer.close()
    report.rebuilt.append(f"{folder.name}/ (BM25)")


def _onnx(source: Path, store: IndexStore, report: BackupReport) -> None:
    fingerprint = store.model.fingerprint
    origin, folder = layout.onnx_export_dir(source, fingerprint), layout.onnx_export_dir(store.directory, fingerprint)
    if not onnx_encoder.is_exported(origin):
        return  # the source has none either (`check` does not require one)
    shutil.copytree(origin, folder, ignore=shutil.ignore_patterns(".*"))  # not an export in progress
    problem = onnx_digests.export_problem(folder, store.recorded_export(fingerprint))
    if problem is None:
        report.copied.append(f"{layout.ONNX_DIR}/{fingerprint}/")
        return
    shutil.rmtree(layout.onnx_export_dir(store.directory, "x").parent)
    report.left_out.append(f"the ONNX export ({problem}); 'papersearch rebuild' on the copy makes a new one")
