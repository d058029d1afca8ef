"""The `papersearch` command line. Each subcommand builds Settings, calls indexer/search, prints.

Exit statuses (api/cli_errors.py maps every failure to one of them, with one line on stderr):

    0    success
    1    failure: a user's mistake (unknown id, no index, bad input file) or an environment
         fault (full disk, read-only or missing directory); `index` when every record was rejected
    2    usage error: unknown option, value out of range, arguments that conflict
    3    `index`: some records were rejected (listed on stderr), the rest were indexed
    130  interrupted (Ctrl-C)
    141  the output pipe closed early (`papersearch search ... | head`): stops quietly
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from api.cli_errors import UsageError, run_command
from api.cli_index import check_room_to_write, cmd_index
from api.cli_output import print_check, print_eval, print_hits
from api.serve_flags import add_serve_flags, serve_overrides
from indexer.vectors import INDEX_TYPES  # names only: FAISS is not imported for `--help`
from models.config import Settings, default_index_dir
from models.errors import InvalidInput, PaperSearchError

# The vocabulary only: `--help` never imports the engine.
from models.query import DEFAULT_MODE, EVAL_TASKS, MODES, RELATED_DEFAULT_MODE

EXAMPLES = {
    "index": "papersearch index papers.jsonl --index ./my-index   (on a cluster: --ray ray://head:10001)",
    "search": 'papersearch search "lightweight OCR" --index ./my-index --limit 5',
    "related": "papersearch related 2101.00001 --index ./my-index   (or --text 'pasted abstract')",
    "recommend": "papersearch recommend --positive ID1 ID2 --negative ID3 --index ./my-index",
    "delete": "papersearch delete ID1 ID2 --index ./my-index",
    "info": "papersearch info --index ./my-index",
    "eval": "papersearch eval ../shared/data/scifact --split test --mode dense lexical hybrid",
    "check": "papersearch check --index ./my-index   (add --repair to fix what can be fixed)",
    "rebuild": "papersearch rebuild --index ./my-index --index-type hnsw",
    "serve": "papersearch serve --index ./my-index --port 8000   (or: papersearch serve --sample)",
    "shards": "papersearch shards split --index ./big --out ./shards --count 2 && "
              "papersearch shards search 'protein folding' --shard ./shards/shard-0 --shard ./shards/shard-1",
}


def _whole_number(minimum: int, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum], else a usage error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


PORT = _whole_number(0, 65535)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", dest="index_dir", type=Path, default=None,
                        help=f"index directory (default: $PAPERSEARCH_INDEX or {default_index_dir()})")
    parser.add_argument("--model", default=None,
                        help="sentence-transformers model name or path (default: the index's own, "
                             "else the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", "-k", type=_whole_number(1), default=10, help="how many results (default 10)")
    parser.add_argument("--offset", type=_whole_number(0), default=0, help="skip this many results (paging)")
    parser.add_argument("--year-from", type=int, help="only papers from this year on")
    parser.add_argument("--year-to", type=int, help="only papers up to this year")
    parser.add_argument("--category", help="only this category (e.g. cs.CV, or cs for all cs.*)")
    parser.add_argument("--author", help="only papers with an author matching this (case-insensitive)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="papersearch", description="Semantic search over scientific paper abstracts.",
        epilog="Example: papersearch index papers.jsonl && papersearch search 'protein folding'")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog=f"Example: {EXAMPLES[name]}" if name in EXAMPLES else None)
        _add_common(p)
        return p

    p = command("index", "Add or update papers from a file (JSONL, CSV, arXiv dump, BEIR corpus; .gz too).")
    p.add_argument("paths", nargs="+", type=Path, help="input file(s)")
    p.add_argument("--format", choices=("jsonl", "csv", "arxiv", "beir"), help="force the input format")
    p.add_argument("--strict", action="store_true", help="reject the whole run if any record is bad")
    p.add_argument("--batch-size", type=_whole_number(1), default=None,
                   help="papers per model call (default 8; 64 or more on a GPU)")
    p.add_argument("--backend", choices=("torch", "onnx", "onnx-int8"), default=None,
                   help="encoder runtime: torch (sentence-transformers, default), onnx (same vectors, "
                        "faster on CPUs) or onnx-int8 (faster still, slightly different vectors)")
    p.add_argument("--index-type", choices=INDEX_TYPES, default=None,
                   help="vector index structure (default auto: flat when small, HNSW when large, "
                        "compressed IVF-PQ from 1M papers)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="embed on a Ray cluster (needs the 'ray' extra): ADDRESS like ray://head:10001, "
                        "else $RAY_ADDRESS, else a small local Ray")
    p.add_argument("--replicas", type=_whole_number(1), default=None,
                   help="with --ray: model replicas (default: one per GPU, else one per CPU)")

    p = command("search", "Rank papers by relevance to a free-text query.")
    p.add_argument("query", help="free text, e.g. 'lightweight OCR'")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                   help="ranking: dense (embeddings), lexical (BM25) or hybrid (both fused; default)")
    p.add_argument("--no-snippets", dest="snippets", action="store_false",
                   help="leave out the matching abstract sentences")
    _add_filters(p)

    p = command("related", "Papers related to a stored paper (by id) or to a pasted abstract (--text).")
    p.add_argument("paper_id", nargs="?", help="the paper's id")
    p.add_argument("--text", help="an abstract or draft instead of a paper id ('-' reads stdin)")
    p.add_argument("--mode", choices=MODES, default=RELATED_DEFAULT_MODE,
                   help="ranking: dense (embeddings), lexical (BM25 over the paper's distinctive terms) "
                        "or hybrid (both fused; default)")
    _add_filters(p)

    p = command("recommend", "Papers like the liked ones (--positive) and unlike the disliked (--negative).")
    p.add_argument("--positive", "-p", nargs="+", required=True, metavar="ID", help="liked paper ids")
    p.add_argument("--negative", "-n", nargs="*", default=[], metavar="ID", help="disliked paper ids")
    p.add_argument("--mode", choices=MODES, default=RELATED_DEFAULT_MODE,
                   help="ranking: dense (embeddings), lexical (BM25 over the liked papers' distinctive terms) "
                        "or hybrid (both fused; default)")
    _add_filters(p)

    p = command("delete", "Remove papers from the index.")
    p.add_argument("paper_ids", nargs="+", metavar="ID")

    command("info", "Show what an index holds: papers, model, dimension, index type, size on disk.")

    p = command("check", "Verify that records, embeddings, model, FAISS file and manifest agree.")
    p.add_argument("--repair", action="store_true",
                   help="rebuild the derived parts (FAISS file, manifest) from the stored embeddings")

    p = command("rebuild", "Rebuild the FAISS file and manifest from the stored embeddings (no re-embedding).")
    p.add_argument("--index-type", choices=INDEX_TYPES, default=None,
                   help="switch the vector index structure while rebuilding")

    p = command("serve", "Serve the JSON API, the search page (/) and the widget (/widget.js) over HTTP.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=PORT, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--sample", action="store_true",
                   help="if the index directory holds no index yet, build it from the bundled 24-paper sample")
    add_serve_flags(p)  # the server limits of the settings table (docs/configuration.md)

    p = sub.add_parser("eval", help="Measure ranking quality on a BEIR-layout data set.",
                       description="Build (or reuse, keyed by corpus and model) an index of a BEIR-layout data "
                                   "set (corpus.jsonl[.gz], queries.jsonl[.gz], qrels/SPLIT.tsv) under "
                                   "$PAPERSEARCH_CACHE (default ~/.cache/papersearch/eval), run every judged "
                                   "query and print nDCG@10, Recall@100, MRR@10 and mean query latency.",
                       epilog=f"Example: {EXAMPLES['eval']}")
    p.add_argument("dataset_dir", type=Path, metavar="DATASET_DIR", help="folder in BEIR layout")
    p.add_argument("--split", default="test", help="qrels split to score (default test)")
    p.add_argument("--task", choices=EVAL_TASKS, default="search",
                   help="search (the queries' text; default), related (related papers of the paper each query "
                        "names in metadata.paper_id) or recommend (from half of each query's relevant papers)")
    p.add_argument("--mode", nargs="+", choices=MODES, default=list(MODES),
                   help="one or more rankings to score (default: all three)")
    p.add_argument("--model", default=None, help="sentence-transformers model name or path (default bundled MiniLM)")
    p.add_argument("--cache", dest="eval_cache_dir", type=Path, default=None,
                   help="where built indexes are kept (default $PAPERSEARCH_CACHE or ~/.cache/papersearch/eval)")
    p.add_argument("--json", action="store_true", help="print one JSON object per mode")
    # Only listed here: main() hands everything after "bench" to benchmarks.bench, whose own
    # parser owns the sections and options (one home for them).
    sub.add_parser("bench", add_help=False,
                   help="Print speed and quality figures: indexing vs encode rate, latency, QPS, memory, "
                        "ANN recall, txtai side by side ('papersearch bench --help').")
    p = command("shards", "Split an index into shards, search them, or serve them on Ray Serve.")
    p.add_argument("action", choices=("split", "search", "serve"),
                   help="split: --index into --count shards under --out; search QUERY / serve: over --shard dirs")
    p.add_argument("query", nargs="?", help="with search: free text")
    p.add_argument("--shard", dest="shard_dirs", action="append", type=Path, default=[], metavar="DIR",
                   help="a shard index directory (repeat for each shard)")
    p.add_argument("--out", type=Path, help="with split: directory to create shard-0, shard-1, ... in")
    p.add_argument("--count", type=int, default=2, help="with split: number of shards (default 2)")
    p.add_argument("--host", default="127.0.0.1", help="with serve: address to listen on")
    p.add_argument("--port", type=PORT, default=8000, help="with serve: port (default 8000)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="with serve: Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    _add_filters(p)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(index_dir=args.index_dir, model=args.model,
                                 batch_size=getattr(args, "batch_size", None),
                                 index_type=getattr(args, "index_type", None),
                                 backend=getattr(args, "backend", None), **serve_overrides(args))
    if settings.index_dir.exists() and not settings.index_dir.is_dir():
        raise InvalidInput(f"{settings.index_dir} is a file, not an index directory; pass a directory with --index "
                           "(a new one is created by 'papersearch index').")
    return settings


def _filters(args: argparse.Namespace):
    from models.query import Filters

    return Filters(year_from=args.year_from, year_to=args.year_to, category=args.category, author=args.author)


# --- subcommands --------------------------------------------------------------------------------


def _open_engine(args: argparse.Namespace):
    from search.engine import SearchEngine

    return SearchEngine.open(_settings(args))


def cmd_search(args: argparse.Namespace) -> int:
    engine = _open_engine(args)
    print_hits(engine.search(args.query, limit=args.limit, offset=args.offset, filters=_filters(args),
                              mode=args.mode, snippets=args.snippets), args.json)
    return 0


def cmd_related(args: argparse.Namespace) -> int:
    if args.paper_id is not None and args.text is not None:
        raise UsageError(f"give a paper id or --text, not both (got {args.paper_id!r} and --text).")
    text = sys.stdin.read() if args.text == "-" else args.text
    if args.paper_id is None and text is None:
        raise PaperSearchError("Give a paper id, or --text with an abstract. Example: " + EXAMPLES["related"])
    engine = _open_engine(args)
    hits = engine.related(paper_id=args.paper_id, text=text, limit=args.limit, offset=args.offset,
                          filters=_filters(args), mode=args.mode)
    print_hits(hits, args.json)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    both = sorted(set(args.positive) & set(args.negative))
    if both:
        raise UsageError(f"{', '.join(map(repr, both))} cannot be both liked (--positive) and disliked (--negative).")
    engine = _open_engine(args)
    print_hits(engine.recommend(args.positive, args.negative, limit=args.limit, offset=args.offset,
                                filters=_filters(args), mode=args.mode), args.json)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from indexer.build import delete_papers

    settings = _settings(args)
    check_room_to_write(settings)
    deleted, missing = delete_papers(settings, args.paper_ids)
    for pid in missing:
        print(f"not in the index: {pid}", file=sys.stderr)
    if args.json:
        print(json.dumps({"deleted": deleted, "not_found": missing}))
    else:
        print(f"deleted {len(deleted)}, not found {len(missing)}")
    return 1 if missing and not deleted else 0


def cmd_info(args: argparse.Namespace) -> int:
    from indexer import vectors
    from indexer.store import IndexStore

    settings = _settings(args)
    store = IndexStore.open(settings.index_dir)
    manifest = store.manifest()
    count = manifest["papers"]
    info = {
        "index": str(settings.index_dir),
        "papers": count,
        "model": manifest["model"]["name"],
        "model_fingerprint": manifest["model"]["fingerprint"],
        "dimension": manifest["dimension"],
        "index_type": vectors.resolve_index_type(manifest["index_type"], count),
        "index_type_setting": manifest["index_type"],
        "generation": manifest["generation"],
        "size_bytes": store.size_on_disk(),
    }
    if args.json:
        print(json.dumps(info))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            shown = f"{value / 1e6:.1f} MB" if key == "size_bytes" else value
            print(f"{key:<{width}}  {shown}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from api.evaluate import evaluate

    settings = Settings.from_env(model=args.model, eval_cache_dir=args.eval_cache_dir)
    reports = evaluate(args.dataset_dir, settings, split=args.split, modes=tuple(dict.fromkeys(args.mode)),
                       task=args.task)
    print_eval(reports, args.task, args.json)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from indexer.check import check_index, repair_index

    directory = _settings(args).index_dir
    report = repair_index(directory) if args.repair else check_index(directory)
    return print_check(report, args.json)


def cmd_rebuild(args: argparse.Namespace) -> int:
    from indexer.check import repair_index

    report = repair_index(_settings(args).index_dir, force=True, index_type=args.index_type)
    return print_check(report, args.json)


def cmd_serve(args: argparse.Namespace) -> int:
    from api.server import serve

    return serve(_settings(args), host=args.host, port=args.port, sample=args.sample, quiet=args.quiet)


def cmd_shards(args: argparse.Namespace) -> int:
    if args.action == "split":
        from indexer.split import split_index

        if args.out is None:
            raise PaperSearchError("shards split needs --out DIR. Example: " + EXAMPLES["shards"])
        targets = [args.out / f"shard-{number}" for number in range(args.count)]
        counts = split_index(_settings(args).index_dir, targets)
        for target, count in zip(targets, counts, strict=True):
            print(json.dumps({"shard": str(target), "papers": count}) if args.json else f"{target}: {count} papers")
        return 0
    if len(args.shard_dirs) < 1:
        raise PaperSearchError("Name the shards with --shard DIR (once per shard). Example: " + EXAMPLES["shards"])
    if args.action == "search":
        from search.shards import ShardRouter

        if not args.query:
            raise PaperSearchError("shards search needs a query. Example: " + EXAMPLES["shards"])
        router = ShardRouter.open_local(args.shard_dirs, settings=_settings(args))
        try:
            print_hits(router.search(args.query, limit=args.limit, offset=args.offset, filters=_filters(args)),
                        args.json)
        finally:
            router.close()
        return 0
    from indexer.distributed import RayOptions, connect

    connect(RayOptions(address=args.ray or None, quiet=False), _settings(args))
    from api import ray_serve

    print(f"serving {len(args.shard_dirs)} shard(s) on http://{args.host}:{args.port}/search?q=...", file=sys.stderr)
    ray_serve.run(args.shard_dirs, host=args.host, port=args.port, model=args.model)
    return 0


COMMANDS = {"index": lambda args: cmd_index(args, _settings(args)), "search": cmd_search, "related": cmd_related,
            "recommend": cmd_recommend,
            "delete": cmd_delete, "info": cmd_info, "check": cmd_check, "rebuild": cmd_rebuild,
            "serve": cmd_serve, "eval": cmd_eval, "shards": cmd_shards}


def _bench(argv: list[str]) -> int:
    """The benchmarks are a checkout-only tool (never installed): found beside this package's source."""
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "benchmarks" / "bench.py").is_file():
        print(f"error: 'papersearch bench' runs from a source checkout (no benchmarks/ beside {checkout}); "
              "clone the repository and run pip install -e '.[bench]' there.", file=sys.stderr)
        return 1
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        from benchmarks import bench
    except ImportError as exc:  # a benchmark's own dependency (the 'bench' extra) is missing
        print(f"error: a benchmark dependency is missing ({exc}); run pip install -e '.[bench]'.", file=sys.stderr)
        return 1
    return bench.main(argv, prog="papersearch bench")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: argparse prints them and exits 2
    return run_command(lambda: COMMANDS[args.command](args), f"papersearch {args.command}",
                       where=lambda: _settings(args).index_dir)


if __name__ == "__main__":
    sys.exit(main())
