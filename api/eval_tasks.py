"""`papersearch eval --task related|recommend`: related work and recommendations on a BEIR-layout set.

- related: every query names a corpus paper (`metadata.paper_id`, as in csfcube-dev); the run
  is `related(paper_id)`, which never returns the paper itself, scored against that query's
  judgments. Queries that share a paper (csfcube's facets) share its ranking.
- recommend: for each query with at least two relevant papers (grade > 0), sorted by id, the
  1st, 3rd, 5th, ... are liked and the 2nd, 4th, ... held out. The run is `recommend(liked)`,
  scored against the query's judgments without the liked papers (which recommend never
  returns anyway); queries with fewer than two relevant papers are left out.

Both score every mode on the same index that `eval` builds for search (api/evaluate.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from api.evaluate import EvalReport, _find, _read_jsonl, load_beir, open_dataset_engine
from models.config import Settings
from models.embedder import Embedder
from models.errors import InvalidInput
from models.query import EVAL_TASKS
from search.metrics import score_run

TASKS = EVAL_TASKS  # models.query is their one home
_DEPTH = 100  # Recall@100 needs the top 100


def query_papers(directory: str | Path, query_ids: list[str]) -> dict[str, str]:
    """query id -> the corpus paper it names (`metadata.paper_id`); InvalidInput when one names none."""
    named = {}
    for record in _read_jsonl(_find(Path(directory), "queries.jsonl")):
        metadata = record.get("metadata") or {}
        if isinstance(metadata, dict) and metadata.get("paper_id") not in (None, ""):
            named[str(record["_id"])] = str(metadata["paper_id"])
    missing = [qid for qid in query_ids if qid not in named]
    if missing:
        raise InvalidInput(f"{directory}: {len(missing)} judged queries name no paper (metadata.paper_id), "
                           f"e.g. {missing[0]!r}; --task related needs a set whose queries are corpus papers, "
                           "such as csfcube-dev.")
    return named


def recommendation_splits(qrels: dict[str, dict[str, int]]) -> dict[str, tuple[list[str], dict[str, int]]]:
    """query id -> (liked paper ids, the judgments left to score), by the rule in the module docstring."""
    splits = {}
    for qid, grades in qrels.items():
        relevant = sorted(doc for doc, grade in grades.items() if grade > 0)
        if len(relevant) < 2:
            continue
        liked = relevant[0::2]
        held = {doc: grade for doc, grade in grades.items() if doc not in set(liked)}
        splits[qid] = (liked, held)
    return splits


def _timed_run(requests: dict[str, object], call) -> tuple[dict[str, list[str]], float]:
    """Run `call(request)` once per distinct request; returns (query id -> paper ids, mean seconds per call)."""
    answers: dict[object, list[str]] = {}
    spent = 0.0
    for request in requests.values():
        if request in answers:
            continue
        started = time.perf_counter()
        hits = call(request)
        spent += time.perf_counter() - started
        answers[request] = [hit.paper.paper_id for hit in hits]
    return {qid: answers[request] for qid, request in requests.items()}, spent / max(len(answers), 1)


def evaluate_task(dataset_dir: str | Path, settings: Settings, task: str, split: str = "test",
                  modes: tuple[str, ...] = ("hybrid",), embedder: Embedder | None = None) -> list[EvalReport]:
    """Build or reuse the dataset's index, then score `related` or `recommend` in each mode."""

    if task not in ("related", "recommend"):
        raise InvalidInput(f"Unknown eval task {task!r}; choose one of: {', '.join(TASKS)}.")
    dataset = load_beir(dataset_dir, split)
    qrels = dataset.qrels
    if task == "related":
        named = query_papers(dataset_dir, list(qrels))
        requests: dict[str, object] = {qid: named[qid] for qid in qrels}
    else:
        splits = recommendation_splits(qrels)
        if not splits:
            raise InvalidInput(f"{dataset_dir}: no judged query has two relevant papers to split into liked "
                               "and held out.")
        requests = {qid: tuple(liked) for qid, (liked, _) in splits.items()}
        qrels = {qid: held for qid, (_, held) in splits.items()}
    engine, embedder, index_dir = open_dataset_engine(dataset, settings, embedder, _DEPTH)
    try:
        _check_known(engine, requests, dataset_dir)
        reports = []
        for mode in modes:
            if task == "related":
                def call(paper_id, mode=mode):
                    return engine.related(paper_id=paper_id, limit=_DEPTH, mode=mode)
            else:
                def call(liked, mode=mode):
                    return engine.recommend(list(liked), limit=_DEPTH, mode=mode)
            call(next(iter(requests.values())))  # warm caches outside the timing
            run, seconds = _timed_run(requests, call)
            metrics = score_run(run, qrels)
            reports.append(EvalReport(dataset.name, split, mode, embedder.name, len(qrels),
                                      mean_latency_ms=seconds * 1000, index_dir=str(index_dir),
                                      extra={"task": task}, **metrics))
        return reports
    finally:
        engine.close()


def _check_known(engine, requests: dict[str, object], dataset_dir: str | Path) -> None:
    """InvalidInput naming the query papers the index does not hold (e.g. rejected while indexing)."""
    wanted = {pid for request in requests.values() for pid in ([request] if isinstance(request, str) else request)}
    missing = sorted(wanted - set(engine.store.rowids_for(sorted(wanted))))
    if missing:
        raise InvalidInput(f"{dataset_dir}: {len(missing)} paper(s) named by queries or judgments are not in "
                           f"the indexed corpus, e.g. {missing[0]!r}.")
