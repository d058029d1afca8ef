"""Check that the parts of an index agree, and repair what can be repaired.

The parts are papers.sqlite (the records and their embeddings: the source of truth) and its
format version, the model it records (name, fingerprint, dimension), the FAISS file of the
current generation, the BM25 index (its documents are exactly the stored rows), the ONNX export
(its files match the checksums recorded when it was made) and manifest.json. The derived parts
are rebuilt by `repair_index` from the stored records and embeddings (the ONNX export from the
installed model). Rows whose embedding is unusable, or whose text no longer matches its content
hash, are re-embedded from the stored text with the index's own model. A damaged papers.sqlite or
a different installed model cannot be repaired here; the message says what to do instead.

`check_index` only reads, so it also runs on a read-only index (without the write lock, which
cannot be taken there); `repair_index` needs a writable one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer import lexical, vectors
from indexer.build import make_query_export
from indexer.lexical import LexicalWriter
from indexer.store import IndexStore, Upsert, WriteLock, codec, layout, migrate
from models import onnx_digests, onnx_encoder
from models.embedder import Embedder, model_fingerprint
from models.errors import IndexCorrupt, IndexNotBuilt, IndexReadOnly, ModelLoadError
from models.paper import content_hash, embed_text

# A stored vector this far from unit length was not written by the embedder.
_NORM_TOLERANCE = 1e-3
_EXAMPLES = 5


@dataclass(frozen=True)
class Problem:
    """One disagreement: which part, what exactly, and whether `repair_index` can fix it."""

    part: str  # "sqlite", "format", "model", "embeddings", "vectors", "lexical", "onnx", "manifest" or "files"
    message: str
    repairable: bool

    def to_dict(self) -> dict:
        return {"part": self.part, "message": self.message, "repairable": self.repairable}


@dataclass
class CheckReport:
    """What `check_index` found (and, after `repair_index`, what it fixed)."""

    directory: Path
    papers: int | None = None
    generation: int | None = None
    model: str | None = None
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    # Rows to re-embed on repair: rowid -> Paper (unusable embedding or stale content hash).
    stale_rows: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, part: str, message: str, repairable: bool) -> None:
        self.problems.append(Problem(part, message, repairable))

    def to_dict(self) -> dict:
        return {"index": str(self.directory), "ok": self.ok, "papers": self.papers,
                "generation": self.generation, "model": self.model,
                "problems": [p.to_dict() for p in self.problems], "repaired": self.repaired}


# --- checking ---------------------------------------------------------------------------------------


def check_index(directory: str | Path) -> CheckReport:
    """Compare every part of the index in `directory`; the report lists each disagreement.

    Holds the write lock while it looks, so a running `papersearch index` is not mistaken for damage.
    """
    directory = _existing(directory)
    with _locked(directory):
        return _check(directory)


def _check(directory: Path) -> CheckReport:
    report = CheckReport(directory)
    if not layout.db_file(directory).is_file():
        manifest = layout.manifest_file(directory)
        leftovers = [p.name for p in layout.vector_files(directory)] + ([manifest.name] if manifest.is_file() else [])
        if not leftovers:
            raise IndexNotBuilt(_no_index(directory))
        report.add("sqlite", f"{layout.DB_FILE} is missing (only {', '.join(leftovers)} remain). It holds the records "
                   "and embeddings, which the derived files cannot restore: re-index your input files "
                   f"into {directory}, or restore {layout.DB_FILE} from a backup.", False)
        return report
    try:
        store = IndexStore.open(directory, upgrade=False)
    except (IndexCorrupt, IndexNotBuilt, IndexReadOnly) as exc:
        report.add("sqlite", str(exc), False)
        return report
    try:
        damage = store.integrity_problems()
        if damage:
            report.add("sqlite", f"{layout.DB_FILE} is damaged: {'; '.join(damage[:3])}. It is the source of truth and "
                       "cannot be rebuilt from the derived files: re-index your input files into a new "
                       "directory, or restore it from a backup.", False)
            return report
        report.papers, report.generation, report.model = store.count(), store.generation, store.model.name
        if store.format_version < migrate.FORMAT_VERSION:
            report.add("format", f"the index is in format {store.format_version}; this PaperSearch uses "
                       f"{migrate.FORMAT_VERSION} and upgrades it in place (repair, or any search where it is "
                       "writable)", True)
            return report  # what the other checks compare is only defined for the current format
        model_ok = _check_model(store, report)
        _check_rows(store, report, verify_hashes=model_ok)
        _check_vectors(store, report)
        _check_manifest(store, report)
        _check_lexical(store, report)
        _check_onnx(store, report)
        leftovers = [p.name for p in store.leftover_files()]
        if leftovers:
            report.add("files", f"leftover files from an interrupted write: {', '.join(leftovers)}", True)
    except IndexCorrupt as exc:
        report.add("sqlite", str(exc), False)
    finally:
        store.close()
    return report


def _check_model(store: IndexStore, report: CheckReport) -> bool:
    """True when the installed model is the one the index records."""
    model = store.model
    try:
        installed = model_fingerprint(model.name)
    except ModelLoadError as exc:
        report.add("model", f"cannot verify the model: {exc} Searching this index needs that model.", False)
        return False
    if installed != model.fingerprint:
        report.add("model", f"the index was built with {model.name!r} fingerprint {model.fingerprint}, but the "
                   f"installed {model.name!r} has fingerprint {installed}: its vectors would not be comparable "
                   "with the stored ones. Reinstall the model the index was built with, or re-index your "
                   "input files into a new directory.", False)
        return False
    return True


def _check_rows(store: IndexStore, report: CheckReport, verify_hashes: bool = True) -> None:
    """Every stored embedding is usable and every content hash matches the stored text.

    Hashes include the model fingerprint, so they are only compared when the model checked out.
    """
    model = store.model
    broken, stale = [], []
    for rowid, paper, digest, blob in store.iter_stored():
        if not codec.is_vector_blob(blob, model.dimension):
            broken.append((paper.paper_id, f"{len(blob)} bytes instead of {model.dimension * 2}"))
            report.stale_rows[rowid] = paper
            continue
        vector = codec.vector_of(blob, model.dimension)
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(vector).all() or abs(norm - 1.0) > _NORM_TOLERANCE:
            broken.append((paper.paper_id, "not finite" if not np.isfinite(norm) else f"length {norm:.3g}, not 1"))
            report.stale_rows[rowid] = paper
        elif verify_hashes and content_hash(paper, model.fingerprint) != digest:
            stale.append(paper.paper_id)
            report.stale_rows[rowid] = paper
    if broken:
        shown = ", ".join(f"{pid!r} ({why})" for pid, why in broken[:_EXAMPLES])
        report.add("embeddings", f"{len(broken)} stored embedding(s) are unusable: {shown}"
                   f"{' ...' if len(broken) > _EXAMPLES else ''}; repair re-embeds them from the stored text", True)
    if stale:
        shown = ", ".join(repr(p) for p in stale[:_EXAMPLES])
        report.add("embeddings", f"{len(stale)} paper(s) have a text that does not match the content hash their "
                   f"embedding was made for: {shown}{' ...' if len(stale) > _EXAMPLES else ''}; "
                   "repair re-embeds them from the stored text", True)


def _check_vectors(store: IndexStore, report: CheckReport) -> None:
    """The FAISS snapshot exists, is the file saved (checksum), caught up matches SQLite's ids and
    vectors, and has the structure the index type asks for."""
    if not store.keeps_vector_file:
        return  # a flat index is the stored vectors themselves, built from SQLite on every open
    generation = report.generation
    index, problem = store.vector_file_status(generation)
    repair = "; searches still work meanwhile (rebuilt in memory on every open)"
    if index is None:
        report.add("vectors", problem + repair, True)
        return
    file_name = layout.vector_file(store.directory, store.snapshot_generation or generation).name
    wanted = vectors.resolve_index_type(store.index_type, report.papers)
    if index.name != wanted:
        report.add("vectors", f"{file_name} is a {index.name} index but the index type {store.index_type!r} "
                   f"asks for {wanted}", True)
    if not index.holds_vectors:
        return  # compressed codes, not vectors: the ids were compared, and searches re-score exactly
    differing = 0
    try:
        for rowids, matrix in store.iter_embeddings():
            differing += index.count_differing(rowids, matrix)
    except IndexCorrupt:
        return  # unusable embeddings are already reported by _check_rows
    if differing:
        report.add("vectors", f"{file_name} holds different vectors than {layout.DB_FILE} for {differing} "
                   f"paper(s){repair}", True)


def _check_lexical(store: IndexStore, report: CheckReport) -> None:
    """The BM25 index reflects the store's generation and holds exactly the stored rows.

    Ids suffice for the contents: a paper whose text changes gets a new rowid, so a rowid's text
    never changes. (Searches otherwise use an in-memory copy built from the records.)
    """
    folder = layout.lexical_path(store.directory)
    state = lexical.recorded_state(store.directory)
    if state is None:
        report.add("lexical", f"the lexical index in {folder} is missing or has no state file", True)
        return
    if not lexical.is_current(store.directory, store):
        report.add("lexical", f"the lexical index reflects generation {state.get('generation')} with "
                              f"{state.get('papers')} papers, the records generation {store.generation} with "
                              f"{store.count()}", True)
        return
    try:
        documents, indexed = lexical.disk_contents(store.directory)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        report.add("lexical", f"the lexical index in {folder} cannot be opened ({reason})", True)
        return
    stored = store.all_rowids()
    missing, extra = np.setdiff1d(stored, indexed), np.setdiff1d(indexed, stored)
    twice = documents - len(indexed)
    if len(missing) or len(extra) or twice:
        shown = [p.paper_id for p in store.papers_by_rowid(missing[:_EXAMPLES]).values()]
        report.add("lexical", f"the lexical index holds {documents} documents for {len(stored)} stored papers "
                   f"({len(missing)} papers missing from it{': ' + ', '.join(map(repr, shown)) if shown else ''}"
                   f"{' ...' if len(missing) > _EXAMPLES else ''}; {len(extra)} documents without a paper; "
                   f"{twice} indexed twice)", True)


def _check_onnx(store: IndexStore, report: CheckReport) -> None:
    """The ONNX export of the index's model matches the checksums recorded when it was made."""
    fingerprint = store.model.fingerprint
    problem = onnx_digests.export_problem(layout.onnx_export_dir(store.directory, fingerprint),
                                          store.recorded_export(fingerprint))
    if problem:
        report.add("onnx", f"{problem}; searches load sentence-transformers instead meanwhile", True)


def _check_manifest(store: IndexStore, report: CheckReport) -> None:
    path = layout.manifest_file(store.directory)
    if not path.is_file():
        report.add("manifest", f"{layout.MANIFEST_FILE} is missing", True)
        return
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(found, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        report.add("manifest", f"{layout.MANIFEST_FILE} is unreadable ({exc})", True)
        return
    truth = store.manifest()
    wrong = [f"{key} is {found.get(key)!r}, should be {value!r}"
             for key, value in truth.items() if key != "updated_at" and found.get(key) != value]
    if wrong:
        report.add("manifest", f"{layout.MANIFEST_FILE} disagrees with {layout.DB_FILE}: {'; '.join(wrong)}", True)


# --- repairing --------------------------------------------------------------------------------------


def repair_index(directory: str | Path, force: bool = False, index_type: str | None = None,
                 embedder: Embedder | None = None) -> CheckReport:
    """Rebuild the derived parts from SQLite (always with `force`), then check again.

    Re-embeds only rows whose stored embedding is unusable or stale, with the index's own model.
    Returns the report of the check made after repairing, with `repaired` listing what was done.
    """
    directory = _existing(directory)
    with WriteLock(directory, wait=False):
        before = _check(directory)
        if any(p.part == "sqlite" for p in before.problems):
            return before  # nothing derived can be trusted to a damaged source of truth
        if before.ok and not force and index_type is None:
            return before
        done = _repair(directory, before, index_type, embedder, force)
        after = _check(directory)
    after.repaired = done
    return after


def _repair(directory: Path, before: CheckReport, index_type: str | None, embedder: Embedder | None,
            force: bool = False) -> list[str]:
    done: list[str] = []
    store = IndexStore.open(directory, writable=True, upgrade=False)
    try:
        done.extend(store.upgrade())
        if before.stale_rows and not any(p.part == "model" for p in before.problems):
            done.append(_reembed(store, before.stale_rows, embedder))
        if index_type is not None and index_type != store.index_type:
            store.set_index_type(index_type)
            done.append(f"set the index type to {index_type}")
        if store.keeps_vector_file:
            index = store.build_vector_index()
            generation = store.generation
            store.save_vector_index(index, generation)
            done.append(f"rebuilt {layout.vector_file(directory, generation).name} ({index.name}) from "
                        f"{index.ntotal} stored embeddings")
        removed = store.leftover_files()
        for path in removed:
            path.unlink(missing_ok=True)
        if removed:
            done.append(f"removed {', '.join(p.name for p in removed)}")
        store.write_manifest()
        done.append(f"rewrote {layout.MANIFEST_FILE}")
        parts = {p.part for p in before.problems} | ({"lexical", "onnx"} if force else set())
        if parts & {"lexical", "format"} or before.stale_rows:
            writer = LexicalWriter(directory, store)
            writer.rebuild()  # even when its state file claims it is current: its ids were wrong
            writer.close()
            done.append(f"rebuilt the lexical index from {store.count()} stored records")
        if "onnx" in parts and "model" not in parts:
            # A damaged export is replaced; a missing one made (by `rebuild`); a sound one kept.
            damaged = any(p.part == "onnx" for p in before.problems)
            folder = layout.onnx_export_dir(directory, store.model.fingerprint)
            if damaged or not onnx_encoder.is_exported(folder):
                made = make_query_export(store, embedder or Embedder(store.model.name), replace=True)
                done.extend([made] if made else [])
    finally:
        store.close()
    return done


def _reembed(store: IndexStore, rows: dict, embedder: Embedder | None) -> str:
    model = store.model
    embedder = embedder or Embedder(model.name)
    papers = list(rows.values())
    matrix = embedder.encode([embed_text(p) for p in papers], "document")
    store.write([Upsert(p, content_hash(p, model.fingerprint), v) for p, v in zip(papers, matrix, strict=True)])
    return f"re-embedded {len(papers)} paper(s) from their stored text"


# --- helpers ----------------------------------------------------------------------------------------


def _existing(directory: str | Path) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise IndexNotBuilt(_no_index(directory))
    return directory


def _no_index(directory: Path) -> str:
    return f"No index in {directory} - run 'papersearch index papers.jsonl --index {directory}' first."


class _locked:
    """The write lock when the directory allows taking it; a read-only index is checked as is
    (nothing can be writing it from here)."""

    def __init__(self, directory: Path):
        self._lock = WriteLock(directory, wait=False)
        self._held = False

    def __enter__(self) -> None:
        try:
            self._lock.__enter__()
            self._held = True
        except IndexReadOnly:
            self._held = False

    def __exit__(self, *exc) -> None:
        if self._held:
            self._lock.__exit__(*exc)
