"""The write pipeline: read -> hash -> embed what changed -> store -> update the FAISS index.

Each batch is one SQLite transaction, so a crash loses at most the batch in flight and a rerun
skips everything already stored (same content hash). The FAISS file is saved once at the end;
if the run dies first, the next open rebuilds it from the stored embeddings.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer import vectors
from indexer.ingest import Delete, Inputs, Note, Parsed, Rejection, Skipped
from indexer.lexical import LexicalWriter
from indexer.plan import Duplicate, IngestPlan
from indexer.store import IndexStore, Upsert, WriteLock, onnx_export_dir
from models.config import DEFAULT_MODEL, Settings
from models.embedder import Embedder, create_embedder, model_fingerprint
from models.errors import IndexNotBuilt, PaperSearchError
from models.paper import Paper, content_hash, embed_text

# Records looked up and written per transaction; a multiple of the model batch keeps the
# model busy while bounding what a crash can lose.
WRITE_BATCH = 256

Progress = Callable[[int], None]

log = logging.getLogger("papersearch")


@dataclass
class IndexReport:
    """What an indexing run did."""

    indexed: int = 0          # new or changed papers written
    embedded: int = 0         # of those, how many needed the model
    unchanged: int = 0        # identical to what was stored
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    accepted: int = 0         # input records that decoded to a paper (duplicates included)
    wholly_rejected: list[str] = field(default_factory=list)  # input files none of whose records decoded
    seconds: float = 0.0
    encode_seconds: float = 0.0
    export_seconds: float = 0.0   # one-time ONNX export for torch-free searches (in `seconds` too)
    deleted: int = 0          # papers the input withdrew (PubMed DeleteCitation, OAI deleted records)
    delete_unknown: int = 0   # withdrawn ids the index did not hold
    skipped: dict[str, int] = field(default_factory=dict)  # records the source marks as not papers, by reason
    notes: list[str] = field(default_factory=list)  # records indexed after a repair (e.g. abstract gaps)

    @property
    def rejection(self) -> str:
        """"none", "some" or "all": whether any, or every, input record was rejected.

        An input with no records at all rejected none. ("some" means the rest went into the index.)
        """
        if not self.rejected:
            return "none"
        return "some" if self.accepted else "all"

    def account(self, item: Parsed | Rejection | Duplicate,
                on_reject: Callable[[Rejection], None] | None = None) -> Paper | None:
        """Count one record of a run's plan; returns its paper when it is to be written."""
        if isinstance(item, Rejection):
            self.rejected.append(item)
            if on_reject:
                on_reject(item)
            return None
        self.accepted += 1
        if isinstance(item, Duplicate):
            self.duplicates.append(str(item))
            return None
        return item.paper

    def summary(self) -> str:
        extra = f", deleted {self.deleted}" if self.deleted or self.delete_unknown else ""
        extra += f" ({self.delete_unknown} not in the index)" if self.delete_unknown else ""
        if self.skipped:
            extra += f", skipped {sum(self.skipped.values())} (" + ", ".join(
                f"{reason} {count}" for reason, count in sorted(self.skipped.items())) + ")"
        return (f"indexed {self.indexed}, unchanged {self.unchanged}, rejected {len(self.rejected)}{extra} "
                f"(embedded {self.embedded} in {self.seconds:.1f}s)")


def model_name_for(settings: Settings, directory: Path) -> str:
    """The model to use: the one asked for, else the index's own, else the default."""
    if settings.model:
        return settings.model
    try:
        store = IndexStore.open(directory)
    except IndexNotBuilt:
        return DEFAULT_MODEL
    try:
        return store.model.name
    finally:
        store.close()


class IndexWriter:
    """A write session on one index directory: holds the lock, the store and the lexical writer.

    Writes go to SQLite (and BM25) only; the vector file is a snapshot that readers catch up from
    SQLite (indexer/store/vector_file.py), saved anew here only when enough rows have changed, so a
    small write costs what it changes rather than a rewrite of every vector."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, wait_for_lock: bool = True,
                 verify_snapshot: bool = False):
        self.settings = settings
        self.directory = Path(settings.index_dir)
        self._embedder = embedder
        self._lock = WriteLock(self.directory, wait=wait_for_lock)
        self.store: IndexStore | None = None
        # Reading the whole snapshot to verify its checksum is worth it in a bulk run (it then repairs
        # a damaged file), not in a server's write of a few papers (readers and `check` verify).
        self._verify_snapshot = verify_snapshot
        self._force_snapshot = False  # index type changed, or snapshot damaged: the next flush saves one
        self._lexical: LexicalWriter | None = None

    @property
    def embedder(self) -> Embedder:
        """The document encoder for `settings.backend` (sentence-transformers or its ONNX export)."""
        if self._embedder is None:
            name = model_name_for(self.settings, self.directory)
            export_dir = onnx_export_dir(self.directory, model_fingerprint(name))
            # No busy-waiting threads, even here: on a shared laptop or server they burn the cores
            # other work needs, and a batch's matrix products are long enough not to miss it.
            self._embedder = create_embedder(name, self.settings.backend, export_dir, threads=self.settings.threads,
                                             batch_size=self.settings.batch_size)
        return self._embedder

    def ensure_query_export(self) -> None:
        """Give the index the ONNX export that searches use, so they never import torch.

        Done once per index and model (a few seconds, torch already loaded when documents were
        embedded). A model the exporter cannot handle only costs a warning: searches then fall
        back to sentence-transformers.
        """
        make_query_export(self.store, self.embedder)

    def __enter__(self) -> IndexWriter:
        self._lock.__enter__()
        self._faiss_threads = vectors.set_threads(self.settings.threads)  # builds use every core
        try:
            self.store = IndexStore.create(self.directory, self.embedder.info)
            if self.settings.index_type != "auto" or self.store.index_type == "auto":
                if self.settings.index_type != self.store.index_type:
                    self.store.set_index_type(self.settings.index_type)
                    self._force_snapshot = True
            self._lexical = LexicalWriter(self.directory, self.store).open()  # rebuilt here if stale
            if self._verify_snapshot and self.store.count():
                self.store.load_vector_index()  # leaves why the file was not usable, if it was not
                self._force_snapshot |= self.store.vector_file_problem is not None
            self.store.remove_temp_files()  # from a run killed while saving; we hold the lock
        except BaseException:
            vectors.set_threads(self._faiss_threads)
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.store is not None:
                self.flush()
                if exc_type is None:
                    self.ensure_query_export()  # any write session (CLI or API) leaves one behind
                if self._lexical is not None:
                    self._lexical.close()
                self.store.close()
        finally:
            vectors.set_threads(self._faiss_threads)  # a server's searches keep their own bound
            self._lock.__exit__(exc_type, exc, tb)

    def flush(self) -> None:
        """Save the manifest, and a new vector snapshot when one is due (cheap otherwise)."""
        store = self.store
        if not store.keeps_vector_file:
            store.drop_vector_files()  # a flat index is built from SQLite on open; none to save
        elif self._snapshot_wanted():
            store.save_vector_index(self._current_vectors(), store.generation)
            self._force_snapshot = False
        store.write_manifest()

    def _snapshot_wanted(self) -> bool:
        return self.store.keeps_vector_file and (self._force_snapshot or self.store.snapshot_due())

    def _current_vectors(self):
        """The vector index of the store's current rows: the snapshot caught up, else rebuilt.

        Reads through the store's connection without a transaction of its own, so it also works
        inside a write transaction (seeing that write's rows); the write lock keeps others out."""
        store = self.store
        wanted = vectors.resolve_index_type(store.index_type, store.count())
        index, _ = (None, None) if self._force_snapshot else store.vector_file_status(store.generation)
        if index is None or index.name != wanted or index.live_count() != store.count() or index.prefers_rebuild():
            index = store.build_vector_index()
        return index

    # --- upsert and delete ----------------------------------------------------------------------

    def upsert(self, papers: list[Paper], report: IndexReport,
               precomputed: Mapping[str, np.ndarray] | None = None, publish: bool = False) -> None:
        """Store papers, embedding only those whose text (or model) changed."""
        self.commit(self.prepare(papers, report, precomputed), report, publish=publish)

    def prepare(self, papers: list[Paper], report: IndexReport,
                precomputed: Mapping[str, np.ndarray] | None = None) -> list[Upsert]:
        """The slow half of `upsert`: hash and embed what changed, writing nothing.

        The API embeds here while searches go on, then commits and swaps in the new generation
        in one short exclusive step. `precomputed` maps content hashes to vectors made elsewhere
        (the Ray path embeds on a cluster); a paper whose hash it lacks is embedded here as usual.
        """
        latest: dict[str, Paper] = {}
        for paper in papers:  # within one batch the last record of an id wins
            latest[paper.paper_id] = paper
        stored = self.store.stored_hashes(latest)
        fingerprint = self.embedder.fingerprint
        upserts: list[Upsert] = []
        to_embed: list[Upsert] = []
        for paper in latest.values():
            digest = content_hash(paper, fingerprint)
            previous = stored.get(paper.paper_id)
            if previous and previous[0] == digest:
                if previous[1] == paper:
                    report.unchanged += 1
                    continue
                upserts.append(Upsert(paper, digest, None))  # metadata changed, vector still right
            else:
                item = Upsert(paper, digest, None)
                to_embed.append(item)
                upserts.append(item)
        if to_embed:
            report.embedded += len(to_embed)
            for item in to_embed:
                item.vector = (precomputed or {}).get(item.content_hash)
            to_embed = [item for item in to_embed if item.vector is None]
        if to_embed:
            started = time.perf_counter()
            matrix = self.embedder.encode([embed_text(u.paper) for u in to_embed], "document")
            report.encode_seconds += time.perf_counter() - started
            for item, vector in zip(to_embed, matrix, strict=True):
                item.vector = vector
        return upserts

    def commit(self, upserts: list[Upsert], report: IndexReport, publish: bool = False) -> None:
        """The quick half of `upsert`: write prepared papers in one transaction.

        `publish` saves the vectors file inside that transaction (see `_write`): for the last write
        of a session, so a full disk leaves the index as it was instead of half-published.
        """
        if upserts:
            self._write(upserts, (), publish)
            report.indexed += len(upserts)

    def delete(self, paper_ids: Iterable[str], publish: bool = False) -> tuple[list[str], list[str]]:
        """Remove papers from every part of the index. Returns (deleted ids, unknown ids)."""
        result = self._write([], list(dict.fromkeys(paper_ids)), publish)
        return result.deleted, result.missing

    def _write(self, upserts: list[Upsert], delete_ids: list[str], publish: bool):
        """One store write, then the vector and lexical indexes kept in step with it.

        With `publish`, a due vector snapshot of the new generation is written before SQLite commits:
        if that fails (ENOSPC), SQLite rolls back and the index stays as it was.
        """
        def vectors_for(result, generation):
            if not self._snapshot_wanted():
                return None  # readers catch the older snapshot up with this write's rows
            self._force_snapshot = False
            return self._current_vectors()

        forced = self._force_snapshot
        try:
            # The lexical documents are queued as the rows are written, so tantivy analyses them on its
            # own thread while SQLite works.
            result = self.store.write(upserts, delete_ids, with_vectors=vectors_for if publish else None,
                                      rows=self._lexical)
        except BaseException:
            self._force_snapshot = forced  # rolled back: the snapshot is still owed
            self._lexical.rollback()  # its queued documents go too: SQLite hands out their rowids again
            raise
        # Committed per write, right after SQLite's commit: readers see new papers in both
        # indexes at once, and a crash in between leaves a stale sidecar, so a rebuild (a crash
        # before SQLite's commit loses the uncommitted documents along with the rows).
        self._lexical.commit()
        return result


def make_query_export(store: IndexStore, encoder, replace: bool = False) -> str | None:
    """Export `encoder`'s model into the index (unless there is one, or `replace`) and record its checksums.

    Returns what was done, or None. The caller holds the write lock. A model the exporter does not
    cover only costs a warning.
    """
    from models import onnx_digests, onnx_encoder

    if not isinstance(encoder, Embedder | onnx_encoder.OnnxEmbedder):
        return None  # a custom encoder has nothing to export
    folder = onnx_export_dir(store.directory, encoder.fingerprint)
    done = None
    if replace or not onnx_encoder.is_exported(folder):
        if not isinstance(encoder, Embedder):
            return None  # an ONNX encoder runs an export; only sentence-transformers can make one
        shutil.rmtree(folder, ignore_errors=True)  # a damaged export is derived data
        try:
            onnx_encoder.export(encoder, folder)
        except (PaperSearchError, RuntimeError, ImportError, ValueError) as exc:
            log.warning("warning: no ONNX export for %s (%s); searches will load sentence-transformers.",
                        encoder.name, exc)
            return None
        done = f"exported the model to {folder}"
    recorded = store.recorded_export(encoder.fingerprint)
    if recorded is None or done or set(recorded) != set(onnx_digests.export_files(folder)):
        store.record_export(encoder.fingerprint, onnx_digests.file_digests(folder))
    return done


# --- whole files ------------------------------------------------------------------------------------


def index_files(settings: Settings, paths: Sequence[str | Path], fmt: str | None = None, strict: bool = False,
                progress: Progress | None = None, on_reject: Callable[[Rejection], None] | None = None,
                embedder: Embedder | None = None, on_note: Callable[[Note], None] | None = None) -> IndexReport:
    """Index input files into `settings.index_dir` as one run and report what happened.

    `paths` may name directories and globs of part files; each file's format is told on its own.
    The run follows one IngestPlan (as the Ray path does): an id repeated anywhere in the files is
    embedded once, for its last record. With `strict`, any rejected record aborts the run before
    anything is written. Deletes in the input (PubMed DeleteCitation, OAI deleted records) are
    applied in their place in the stream, after the records before them are written.
    """
    report = IndexReport()
    started = time.perf_counter()
    with Inputs(paths, fmt) as inputs:
        plan = IngestPlan.scan(inputs.files, fmt)
        if strict:
            plan.refuse_rejections()
        with IndexWriter(settings, embedder=embedder, verify_snapshot=True) as writer:
            _follow_plan(writer, inputs, plan, report, progress, on_reject, on_note)
            exported = time.perf_counter()
            writer.ensure_query_export()
            report.export_seconds = time.perf_counter() - exported
        for rejection in inputs.joins.rejected:  # unreadable lines of the S2 abstracts dataset
            report.account(rejection, on_reject)
    report.seconds = time.perf_counter() - started
    return report


def _follow_plan(writer: IndexWriter, inputs: Inputs, plan: IngestPlan, report: IndexReport,
                 progress: Progress | None, on_reject: Callable[[Rejection], None] | None,
                 on_note: Callable[[Note], None] | None) -> None:
    batch: list[Paper] = []
    # One embedded batch is held back, so the last one is committed together with the vectors file
    # (`publish`): a run of one batch that meets a full disk leaves the index exactly as it was; a
    # longer run keeps the batches committed before it, as after a crash, and a rerun finishes it.
    held: list[Upsert] = []
    deletes: list[str] = []

    def write_batches() -> None:
        nonlocal held, batch
        writer.commit(held, report)
        held = writer.prepare(batch, report) if batch else []
        if progress and batch:
            progress(len(batch))
        batch = []

    def apply_deletes(publish: bool = False) -> None:
        deleted, unknown = writer.delete(deletes, publish=publish)
        report.deleted += len(deleted)
        report.delete_unknown += len(unknown)
        deletes.clear()

    for ordinal, path in enumerate(inputs.files):
        accepted_before, rejected_before = report.accepted, len(report.rejected)
        for item in plan.follow(ordinal, inputs.read(path)):
            if isinstance(item, Delete):
                if batch or held:
                    write_batches()
                    write_batches()  # the held batch too: what came before the delete is stored first
                deletes.append(item.paper_id)
                continue
            if isinstance(item, Skipped):
                report.skipped[item.reason] = report.skipped.get(item.reason, 0) + 1
                continue
            if isinstance(item, Note):
                report.notes.append(str(item))
                if on_note:
                    on_note(item)
                continue
            paper = report.account(item, on_reject)
            if paper is None:
                continue
            if deletes:
                apply_deletes()
            batch.append(paper)
            if len(batch) >= WRITE_BATCH:
                write_batches()
        if report.accepted == accepted_before and len(report.rejected) > rejected_before:
            report.wholly_rejected.append(str(path))
    if deletes:  # the input ended with deletes: everything before them is stored already
        apply_deletes(publish=True)
        return
    if batch:
        writer.commit(held, report)
        held = writer.prepare(batch, report)
    writer.commit(held, report, publish=True)
    if progress and batch:
        progress(len(batch))


def index_file(settings: Settings, path: str | Path, fmt: str | None = None, strict: bool = False,
               progress: Progress | None = None, on_reject: Callable[[Rejection], None] | None = None,
               embedder: Embedder | None = None, on_note: Callable[[Note], None] | None = None) -> IndexReport:
    """Index one input file (or directory, or glob): `index_files` with a single path."""
    return index_files(settings, [path], fmt=fmt, strict=strict, progress=progress, on_reject=on_reject,
                       embedder=embedder, on_note=on_note)


def delete_papers(settings: Settings, paper_ids: list[str]) -> tuple[list[str], list[str]]:
    """Delete papers by id from an existing index. Returns (deleted, unknown)."""
    store = IndexStore.open(settings.index_dir)  # raises IndexNotBuilt with a clear message
    store.close()
    with IndexWriter(settings) as writer:
        return writer.delete(paper_ids, publish=True)  # one transaction with its vectors file


def add_papers(settings: Settings, papers: Iterable[Paper], embedder: Embedder | None = None) -> IndexReport:
    """Add or replace papers given as `Paper`s (the Python API's `index_file`); the last record of an id wins."""
    report = IndexReport()
    started = time.perf_counter()
    with IndexWriter(settings, embedder=embedder) as writer:
        writer.upsert(list(papers), report, publish=True)
    report.seconds = time.perf_counter() - started
    return report

