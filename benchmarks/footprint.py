"""Bytes on disk per part of an index directory, an index cut to N papers, and a fitted line.

The one place a benchmark counts an index's disk: every file under the directory is put in
exactly one part, so the parts add up to what `du` sees (the ONNX query encoder is kept apart:
it is a fixed ~100 MB per model, not a cost per paper). RSS per paper is a slope over several
index sizes (`fit_line`), never one total divided by the papers, which would charge the fixed
cost of Python, onnxruntime and the model to every paper.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from indexer.store import layout

RECORDS = "records (SQLite without embeddings)"
EMBEDDINGS = "stored embeddings (SQLite)"
FREE_PAGES = "SQLite free pages (VACUUM reclaims)"
VECTORS = "vector index file(s) (FAISS)"
LEXICAL = "BM25 (lexical/)"
OTHER = "WAL, manifest, other"
ENCODER = "query encoder (onnx/)"
PARTS = (RECORDS, EMBEDDINGS, FREE_PAGES, VECTORS, LEXICAL, OTHER)  # the index; ENCODER is apart


def disk_parts(directory: str | Path) -> dict[str, int]:
    """Bytes on disk of each part (PARTS, then ENCODER), as the files add up."""
    directory = Path(directory)
    parts = dict.fromkeys((*PARTS, ENCODER), 0)
    lexical, encoder = layout.lexical_path(directory), layout.onnx_export_dir(directory, "-").parent
    database = layout.db_file(directory)
    # Before listing: reading the database may create its -shm file, which then counts as well.
    embeddings, free = _database_split(database) if database.is_file() else (0, 0)
    for path in list(directory.rglob("*")):
        if not path.is_file():
            continue
        size = path.stat().st_size
        if path == database:
            parts[EMBEDDINGS] += embeddings
            parts[FREE_PAGES] += free
            parts[RECORDS] += size - embeddings - free
        elif layout.is_vector_file(path):
            parts[VECTORS] += size
        elif path.is_relative_to(lexical):
            parts[LEXICAL] += size
        elif path.is_relative_to(encoder):
            parts[ENCODER] += size
        else:
            parts[OTHER] += size
    return parts


def tree_bytes(path: str | Path) -> int:
    """Bytes of every file under `path`: a peer system's folder, which has no parts here."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def index_bytes(parts: dict[str, int]) -> int:
    """The index's own bytes: every part but the query encoder."""
    return sum(parts[p] for p in PARTS)


def _database_split(database: Path) -> tuple[int, int]:
    """(bytes of stored embedding blobs, bytes of free pages) in the SQLite file.

    The blobs are summed over every table with an `embedding` column, so the figure stays right
    wherever the store keeps them; page headers and b-tree overhead stay with the records.
    """
    from indexer.store.schema import connect

    db = connect(database, read_only=True)
    try:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        embeddings = 0
        for table in tables:
            columns = {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}
            if "embedding" in columns:
                embeddings += db.execute(f'SELECT coalesce(sum(length(embedding)), 0) FROM "{table}"').fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0] * page_size
        return embeddings, free
    finally:
        db.close()


def cut_index(source: str | Path, target: str | Path, papers: int, index_type: str = "auto") -> int:
    """A new index in `target` of the first `papers` papers of `source`, from its stored vectors.

    Written through the ordinary IndexWriter with the stored embeddings given, so nothing is
    re-embedded and the new index has the current format whatever the source's was. The source
    is only read, never upgraded. Returns the papers written.
    """
    from indexer.build import IndexReport, IndexWriter
    from indexer.store import IndexStore
    from models.config import Settings

    source, target = Path(source), Path(target)
    shutil.rmtree(target, ignore_errors=True)
    store = IndexStore.open(source, upgrade=False)  # read as it is: an older format stays untouched
    try:
        fingerprint = store.model.fingerprint
        export = layout.onnx_export_dir(source, fingerprint)
        if export.is_dir():  # the writer would otherwise export the model again
            shutil.copytree(export, layout.onnx_export_dir(target, fingerprint))
        written = 0
        with IndexWriter(Settings(index_dir=target, backend="onnx", index_type=index_type)) as writer:
            batch: list = []
            for _, paper in store.iter_papers():
                if written + len(batch) >= papers:
                    break
                batch.append(paper)
                if len(batch) == 2_000:
                    written += _write_from(writer, store, batch, fingerprint, IndexReport)
                    batch = []
            written += _write_from(writer, store, batch, fingerprint, IndexReport, publish=True)
        return written
    finally:
        store.close()


def _write_from(writer, store, papers: list, fingerprint: str, report_type, publish: bool = False) -> int:
    """Write `papers` with their stored vectors, keyed by the content hash the writer computes."""
    from models.paper import content_hash

    vectors = store.embeddings_for([p.paper_id for p in papers])
    given = {content_hash(p, fingerprint): vectors[p.paper_id] for p in papers}
    writer.upsert(papers, report_type(), precomputed=given, publish=publish)
    return len(papers)


@dataclass
class Line:
    """A least-squares line y = intercept + slope * x, and how well it fits (R²)."""

    intercept: float
    slope: float
    r2: float


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> Line:
    """The least-squares line through the points (at least two distinct x)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if n < 2 or sxx == 0:
        raise ValueError("a line needs at least two distinct sizes")
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_x
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    total = sum((y - mean_y) ** 2 for y in ys)
    return Line(intercept, slope, 1 - residual / total if total else math.nan)
