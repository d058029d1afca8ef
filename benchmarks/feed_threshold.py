"""How api/feeds.py's DEFAULT_MIN_SCORE was chosen: dense scores of feed candidates, by band.

    python -m benchmarks.feed_threshold --index ARXIV_INDEX [--csfcube ../shared/data/csfcube-dev]

1. Topic queries over an index of recent arXiv records (a few thousand of
   ../shared/data/arxiv-daily-2025-2026, which has no relevance judgments): for each score band the
   number of papers and their titles, to be read and judged on topic or not.
2. With --csfcube FOLDER --csfcube-index DIR (an index of its corpus, e.g. the one `papersearch
   eval` keeps): the precision of a related-papers feed at each threshold, from CSFCube's graded
   judgments (grade >= 1 is relevant; unjudged papers are left out), and judged papers per query.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

BANDS = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 1.01)
QUERIES = ("retrieval-augmented generation for question answering", "3D gaussian splatting",
           "exoplanet atmospheres transmission spectroscopy", "robot manipulation from demonstrations",
           "speech recognition", "graph neural networks for molecules")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="an index of recent arXiv records")
    parser.add_argument("--csfcube", type=Path, default=None, help="the CSFCube BEIR folder (optional)")
    parser.add_argument("--csfcube-index", type=Path, default=None, help="an index of the CSFCube corpus")
    parser.add_argument("--titles", type=int, default=4, help="titles shown per band and query")
    args = parser.parse_args(argv)
    from models.config import Settings
    from search.engine import SearchEngine

    engine = SearchEngine.open(Settings(index_dir=args.index))
    for query in QUERIES:
        hits = engine.search(query, limit=100, mode="dense", snippets=False)
        print(f"\n## {query}")
        for low, high in zip(BANDS, BANDS[1:], strict=False):
            band = [hit for hit in hits if low <= hit.score < high]
            print(f"  [{low:.2f}, {min(high, 1):.2f}): {len(band)} papers")
            for hit in band[-args.titles:]:  # the lowest-scoring ones: where the threshold bites
                print(f"      {hit.score:.3f}  {hit.paper.title[:110]}")
    engine.close()
    if args.csfcube and args.csfcube_index:
        _csfcube(args.csfcube, args.csfcube_index)
    return 0


def _csfcube(folder: Path, index_dir: Path) -> None:
    from api.evaluate import read_qrels
    from models.config import Settings
    from search.engine import SearchEngine

    qrels = read_qrels(folder / "qrels" / "test.tsv")
    with gzip.open(folder / "queries.jsonl.gz", "rt", encoding="utf-8") as lines:
        sources = {q["_id"]: q["metadata"]["paper_id"] for q in map(json.loads, lines)}
    engine = SearchEngine.open(Settings(index_dir=index_dir))
    scored: list[tuple[float, bool]] = []
    for query_id, judged in qrels.items():
        for hit in engine.related(paper_id=sources[query_id], limit=100, mode="dense"):
            if hit.paper.paper_id in judged:
                scored.append((hit.score, judged[hit.paper.paper_id] >= 1))
    engine.close()
    print(f"\n## CSFCube related papers (dense), {len(qrels)} queries, judged hits in the top 100")
    print("  threshold  judged hits passing  precision")
    for threshold in BANDS[:-1]:
        passing = [relevant for score, relevant in scored if score >= threshold]
        precision = sum(passing) / len(passing) if passing else float("nan")
        print(f"  {threshold:9.2f}  {len(passing):19d}  {precision:9.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
