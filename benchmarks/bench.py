"""`python -m benchmarks.bench`: PaperSearch's speed and quality figures, printed as tables.

Also `papersearch bench ...` (same arguments). Sections (run the ones named, default: encode query ann):
    encode  raw model encode papers/s next to indexing papers/s, per backend, in the same run
    query   query encoding and search latency p50/p99, QPS at concurrency 1 and 8, startup,
            memory per paper, nDCG@10 (BEIR corpus with qrels)
    ann     HNSW recall@10 against exact search and per-query time, on real embeddings
    scale   the 100k arXiv corpus: startup, latency, memory, recall and lexical engines at scale
    peer    txtai on the same corpus and model files (indexing time, latency, nDCG@10), then LanceDB
            and Chroma from the same stored vectors (build, disk, RSS, latency, nDCG@10), ratios
    http    the HTTP API at concurrency 1 and 8 (needs api.app.create_app)
    feeds   a feed reader's poll over HTTP: fresh document, cached 200, 304 (sample or --index)
    mcp     `papersearch mcp` round trip per tool over stdio (sample or --index)
    facets  hybrid/dense/lexical search with and without facets and sort=date, on the scale index
    related related-by-id and recommend latency per mode, hybrid against dense (--related-index)
    memory  disk per paper by part and serving RSS per paper, as slopes over index sizes

Example:
    python -m benchmarks.bench encode query --corpus ../shared/data/scifact --sample 300
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from benchmarks.measure import ROOT, load_average
from benchmarks.tables import Table
from indexer.store import layout

SECTIONS = ("encode", "query", "ann", "scale", "peer", "http", "feeds", "mcp", "facets", "related", "memory")
DEFAULT_SECTIONS = ("encode", "query", "ann")


def build_parser(prog: str = "python -m benchmarks.bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", metavar="SECTION",
                        help=f"any of {', '.join(SECTIONS)} (default: {' '.join(DEFAULT_SECTIONS)})")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "scifact",
                        help="BEIR folder (corpus, queries, qrels/test.tsv); default ../shared/data/scifact")
    parser.add_argument("--scale-corpus", type=Path,
                        default=ROOT.parent / "shared" / "data" / "arxiv-daily-2025-2026" / "papers.jsonl.gz",
                        help="large papers.jsonl(.gz) for the scale section")
    parser.add_argument("--index", type=Path, default=None,
                        help="an existing index of --corpus for the query section (copied, never changed); "
                             "default: WORKDIR/corpus-index, built or copied from $PAPERSEARCH_BENCH_SEED")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("PAPERSEARCH_BENCH_DIR",
                                                                         Path.home() / ".cache" / "papersearch-bench")),
                        help="where benchmark indexes and caches live ($PAPERSEARCH_BENCH_DIR)")
    parser.add_argument("--sample", type=int, default=300, help="papers encoded in the encode section (300)")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8", help="encode section backends")
    parser.add_argument("--batch-size", type=int, default=8, help="papers per model call (8, the indexing default)")
    parser.add_argument("--threads", type=int, default=0, help="model and FAISS threads (0: all cores)")
    parser.add_argument("--queries", type=int, default=300, help="queries timed per measurement (300)")
    parser.add_argument("--scale-size", type=int, default=100_000, help="papers in the scale section")
    parser.add_argument("--scale-tokens", type=int, default=40,
                        help="scale section: tokens of each record MiniLM embeds (40; a full abstract is 256)")
    parser.add_argument("--skip-lexical", action="store_true", help="scale section: skip the lexical engines")
    parser.add_argument("--peer-docs", type=int, default=1000,
                        help="documents in the peer comparison (judged ones first; 0: whole corpus)")
    parser.add_argument("--int8-index", action="store_true",
                        help="query section: also embed the whole corpus with onnx-int8 for its nDCG@10")
    parser.add_argument("--http-search", default=None,
                        help="http section: search route with {query} and {mode}, "
                             "default /search?q={query}&limit=10&mode={mode}")
    parser.add_argument("--related-index", type=Path, default=None,
                        help="related section: this index instead of the --corpus one (read only), e.g. a 100k "
                             "stand-in built with benchmarks/memory_flat.py's StandInEncoder")
    parser.add_argument("--memory-sizes", default="1000,2500,5000",
                        help="memory section: papers in each cut of the index (1000,2500,5000)")
    parser.add_argument("--memory-index", type=Path, default=None,
                        help="memory section: cut this index (read only) instead of the --corpus one, "
                             "e.g. a 100k stand-in from benchmarks/standin_index.py")
    parser.add_argument("--memory-index-type", default="auto",
                        help="memory section: vector index kind of the cuts (auto, flat, hnsw, ivfpq)")
    parser.add_argument("--json", type=Path, default=None, help="also write every table to this JSON file")
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks.bench") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    sections = args.sections or list(DEFAULT_SECTIONS)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"# PaperSearch benchmark: {' '.join(sections)}\n")
    print(f"- command: {prog} {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"- machine: {os.cpu_count()} cores, load average at start {load_average()}; "
          f"threads setting {args.threads or 'all cores'}\n")
    problem = _missing_input(sections, args)
    if problem:
        print(f"error: {problem}; see --help.", file=sys.stderr)
        return 1
    tables: list[Table] = []
    for section in sections:
        for table in _run_section(section, args):
            print(table.render(), flush=True)
            tables.append(table)
    if args.json:
        args.json.write_text(json.dumps([t.to_dict() for t in tables], indent=2, default=str))
    return 0


def _missing_input(sections: list[str], args) -> str | None:
    """What a section needs and cannot find, before anything runs (None when all is there)."""
    reads_corpus = (set(sections) - {"scale", "feeds", "mcp", "facets"}
                    - ({"related"} if args.related_index else set())
                    - ({"memory"} if args.memory_index else set()))
    if reads_corpus:  # every other section reads the BEIR corpus
        for stem in ("corpus", "queries"):
            if not any((args.corpus / f"{stem}{ext}").is_file() for ext in (".jsonl", ".jsonl.gz")):
                return (f"no {stem}.jsonl(.gz) in {args.corpus}: pass --corpus DIR, a BEIR folder with "
                        "corpus.jsonl[.gz], queries.jsonl[.gz] and qrels/test.tsv")
        if not (args.corpus / "qrels" / "test.tsv").is_file():
            return f"no qrels/test.tsv in {args.corpus}: pass --corpus DIR, a BEIR folder"
    scale_index = args.workdir / f"scale-{args.scale_size}-{args.scale_tokens}tok-index"
    scaled = {"scale", "facets"} & set(sections)
    if scaled and not args.scale_corpus.is_file() and not layout.db_file(scale_index).is_file():
        return f"no {args.scale_corpus}: pass --scale-corpus FILE (papers.jsonl[.gz]) for the scale section"
    return None


# A section's module when its name is not the section's: a benchmarks/http.py would shadow the
# standard library's `http` for any script run by path from benchmarks/ (load.py was).
_SECTION_MODULES = {"http": "http_api"}


def _run_section(section: str, args) -> Iterable[Table]:
    """The tables of one section, as they are measured (benchmarks/<section>.py unless renamed above)."""
    return importlib.import_module(f"benchmarks.{_SECTION_MODULES.get(section, section)}").run(args)


def corpus_index(args) -> Path:
    """An index of --corpus for reading benchmarks: --index copied, else built once in WORKDIR."""
    from indexer.build import IndexWriter, index_file
    from indexer.store import IndexStore
    from models.config import Settings

    target = args.workdir / f"{args.corpus.name}-index"
    source = args.index or (Path(os.environ["PAPERSEARCH_BENCH_SEED"]) if os.environ.get("PAPERSEARCH_BENCH_SEED")
                            else None)
    if not layout.db_file(target).is_file():
        if source is not None:
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
        else:
            from benchmarks.measure import beir_file

            print(f"(building {target} from {args.corpus}: embeds the whole corpus once)", file=sys.stderr)
            index_file(Settings(index_dir=target, backend="onnx", threads=args.threads),
                       beir_file(args.corpus, "corpus"), fmt="beir")
    store = IndexStore.open(target)
    store.close()
    with IndexWriter(Settings(index_dir=target, threads=args.threads)) as writer:
        writer.ensure_query_export()  # a copied index may predate ONNX exports
    return target


if __name__ == "__main__":
    sys.exit(main())
