"""`papersearch eval`: build (or reuse) an index of a BEIR-layout set with the writer, then query it.

It composes the write side (indexer) and the read side (search), so it lives at the edge, not in
search/, whose modules never write. The metrics themselves are search/metrics.py.

    DATASET_DIR/corpus.jsonl[.gz]    {"_id", "title", "text"}
    DATASET_DIR/queries.jsonl[.gz]   {"_id", "text"}
    DATASET_DIR/qrels/<split>.tsv    query-id <TAB> corpus-id <TAB> score (header line optional)

Metrics follow BEIR (pytrec_eval): nDCG@10 with the judged grade as the gain (linear, so graded
collections such as Cranfield count by grade), Recall@100 and MRR@10 over documents judged > 0.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from indexer.records import NO_TEXT
from indexer.store import layout
from models.config import Settings
from models.embedder import Embedder
from models.errors import InvalidInput
from models.hashing import update_from_file
from search.metrics import score_run

# What one indexing of a corpus leaves beside the index, so the next run reuses it.
_BUILT_MARKER = "built.json"
_SEARCH_DEPTH = 100  # Recall@100 needs the top 100

log = logging.getLogger("papersearch")


@dataclass
class BeirDataset:
    """A judged collection: where its corpus is, its queries and its judgments for one split."""

    name: str
    corpus_path: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str


@dataclass
class EvalReport:
    """The figures for one dataset, split and mode."""

    dataset: str
    split: str
    mode: str
    model: str
    queries: int
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    mean_latency_ms: float
    index_dir: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("ndcg_at_10", "recall_at_100", "mrr_at_10"):
            out[key] = round(out[key], 4)
        out["mean_latency_ms"] = round(out["mean_latency_ms"], 2)
        return out


# --- loading ----------------------------------------------------------------------------------------


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise InvalidInput(f"{directory}: no {stem} or {stem}.gz - is this a BEIR-layout data set folder?")


def _read_jsonl(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise InvalidInput(f"{path}:{number}: malformed JSON ({exc})") from exc


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {doc id: grade}, from a BEIR qrels TSV (the header line is optional)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if not line.strip() or (number == 1 and parts[0] == "query-id"):
                continue
            if len(parts) < 3:
                raise InvalidInput(f"{path}:{number}: expected query-id<TAB>corpus-id<TAB>score")
            try:
                grade = int(float(parts[-1]))
            except ValueError as exc:
                raise InvalidInput(f"{path}:{number}: score {parts[-1]!r} is not a number") from exc
            qrels.setdefault(parts[0], {})[parts[-2]] = grade
    return qrels


def load_beir(directory: str | Path, split: str = "test") -> BeirDataset:
    """The judged queries of one split; the corpus is only located, it is streamed when indexed."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidInput(f"{directory}: no such data set folder")
    corpus = _find(directory, "corpus.jsonl")
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        found = sorted(p.stem for p in (directory / "qrels").glob("*.tsv"))
        raise InvalidInput(f"{qrels_path} does not exist; splits here: {', '.join(found) or 'none'}.")
    qrels = read_qrels(qrels_path)
    texts = {str(q["_id"]): q.get("text", "") for q in _read_jsonl(_find(directory, "queries.jsonl"))}
    missing = [qid for qid in qrels if qid not in texts]
    if missing:
        raise InvalidInput(f"{qrels_path}: {len(missing)} judged query id(s) are not in queries, e.g. {missing[0]!r}")
    # Only queries with at least one relevant document count (BEIR / pytrec_eval skip the rest).
    judged = {qid: grades for qid, grades in qrels.items() if any(g > 0 for g in grades.values())}
    return BeirDataset(directory.name, corpus, {qid: texts[qid] for qid in judged}, judged, split)


# --- index cache ------------------------------------------------------------------------------------


def corpus_digest(path: Path) -> str:
    """sha256 of the corpus's decompressed bytes, so recompressing it keeps the cache."""
    digest = hashlib.sha256()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        update_from_file(digest, handle)
    return digest.hexdigest()


def cache_key(dataset: BeirDataset, model_fingerprint: str) -> str:
    """Folder name for one corpus embedded by one model with this release's indexing code.

    The code's digest is part of the key, so a cached index can never hide a change (or a
    regression) in how papers are read, decoded or stored: such a change builds a new index.
    """
    return f"{dataset.name}-{corpus_digest(dataset.corpus_path)[:16]}-{model_fingerprint}-{indexing_code_digest()}"


def indexing_code_files() -> list[Path]:
    """The source files that decide what an index holds: the whole write side and the record."""
    import indexer
    import models

    return sorted(Path(indexer.__file__).parent.rglob("*.py")) + [Path(models.__file__).parent / "paper.py"]


def indexing_code_digest() -> str:
    """sha256 (12 hex digits) of `indexing_code_files()`, names and contents."""
    digest = hashlib.sha256()
    for path in indexing_code_files():
        digest.update(str(path.relative_to(path.parents[1])).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def prepare_index(dataset: BeirDataset, settings: Settings, embedder: Embedder) -> Path:
    """The index of the dataset's corpus for this model: reused from the cache, else built there."""
    from indexer.build import index_file

    folder = Path(settings.eval_cache_dir) / cache_key(dataset, embedder.fingerprint)
    index_dir = folder / "index"
    marker = folder / _BUILT_MARKER
    if marker.is_file() and layout.db_file(index_dir).is_file():
        _note_empty(dataset, json.loads(marker.read_text()).get("empty_documents", []))
        return index_dir
    # index_file is incremental: an index copied in under this key re-embeds nothing.
    report = index_file(Settings(index_dir=index_dir, model=embedder.name, batch_size=settings.batch_size,
                                 index_type="flat"), dataset.corpus_path, fmt="beir", embedder=embedder)
    # A document with neither title nor text (Cranfield has two) cannot be found by any ranking: it
    # is left out with a note. Any other rejection would make a ranking look poorer than it is (a
    # judged paper missing is never found), so eval refuses, and writes no marker, until it is fixed.
    empty = [str(r) for r in report.rejected if r.reason.endswith(NO_TEXT)]
    others = [r for r in report.rejected if not r.reason.endswith(NO_TEXT)]
    if others:
        raise InvalidInput(f"{dataset.corpus_path}: {len(others)} corpus record(s) could not be indexed, "
                           f"so eval would score a partial corpus; the first: {others[0]}")
    _note_empty(dataset, empty)
    marker.write_text(json.dumps({"corpus": str(dataset.corpus_path), "model": embedder.name,
                                  "indexed": report.indexed, "unchanged": report.unchanged,
                                  "rejected": len(report.rejected), "empty_documents": empty,
                                  "seconds": round(report.seconds, 1)}) + "\n")
    return index_dir


def _note_empty(dataset: BeirDataset, empty: list[str]) -> None:
    if empty:
        log.warning("note: %s: %d corpus document(s) hold no text at all and are left out (the first: %s)",
                    dataset.corpus_path, len(empty), empty[0])


# --- running ----------------------------------------------------------------------------------------


def run_queries(engine, queries: dict[str, str], mode: str,
                depth: int = _SEARCH_DEPTH) -> tuple[dict[str, list[str]], float]:
    """Rank the top `depth` papers for each query; returns (run, mean seconds per query)."""
    run: dict[str, list[str]] = {}
    spent = 0.0
    for qid, text in queries.items():
        started = time.perf_counter()
        hits = engine.search(text, limit=depth, mode=mode, snippets=False)
        spent += time.perf_counter() - started
        run[qid] = [hit.paper.paper_id for hit in hits]
    return run, spent / max(len(queries), 1)


def open_dataset_engine(dataset: BeirDataset, settings: Settings, embedder: Embedder | None, depth: int):
    """(engine, embedder, index dir) over the dataset's index, built or reused; pages up to `depth` deep."""
    from models.config import DEFAULT_MODEL
    from search.engine import SearchEngine

    embedder = embedder or Embedder(settings.model or DEFAULT_MODEL, threads=settings.threads,
                                    batch_size=settings.batch_size)
    index_dir = prepare_index(dataset, settings, embedder)
    engine = SearchEngine.open(Settings(index_dir=index_dir, max_limit=max(settings.max_limit, depth)),
                               encoder=embedder)
    return engine, embedder, index_dir


def evaluate(dataset_dir: str | Path, settings: Settings, split: str = "test", modes: tuple[str, ...] = ("hybrid",),
             embedder: Embedder | None = None, task: str = "search") -> list[EvalReport]:
    """Build or reuse the dataset's index, then score each mode on the split's judged queries.

    `task` "related" or "recommend" scores those instead of search (api/eval_tasks.py).
    """
    if task != "search":
        from api.eval_tasks import evaluate_task

        return evaluate_task(dataset_dir, settings, task, split, modes, embedder)

    dataset = load_beir(dataset_dir, split)
    engine, embedder, index_dir = open_dataset_engine(dataset, settings, embedder, _SEARCH_DEPTH)
    try:
        engine.search("warm up", limit=1, mode="hybrid", snippets=False)  # load the model outside the timing
        reports = []
        for mode in modes:
            run, seconds = run_queries(engine, dataset.queries, mode)
            metrics = score_run(run, dataset.qrels)
            reports.append(EvalReport(dataset.name, split, mode, embedder.name, len(dataset.queries),
                                      mean_latency_ms=seconds * 1000, index_dir=str(index_dir), **metrics))
        return reports
    finally:
        engine.close()
