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

from api import cli_backup, cli_feed, cli_harvest, cli_mcp, cli_shards
from api.cli_args import PORT, add_common, add_filters, add_output_format, filters_from, settings_from, whole_number
from api.cli_errors import UsageError, run_command
from api.cli_index import check_room_to_write, cmd_index
from api.cli_output import print_check, print_eval, print_hits
from api.serve_flags import add_serve_flags
from indexer.ingest import FORMATS as INPUT_FORMATS
from indexer.vectors import INDEX_TYPES  # names only: FAISS is not imported for `--help`
from models.config import Settings
from models.errors import PaperSearchError

# The vocabulary only: `--help` never imports the engine.
from models.query import DEFAULT_MODE, EVAL_TASKS, MODES, RELATED_DEFAULT_MODE

EXAMPLES = {
    "index": "papersearch index papers.jsonl --index ./my-index   (on a cluster: --ray ray://head:10001)",
    "search": 'papersearch search "lightweight OCR" --index ./my-index --limit 5',
    "related": "papersearch related 2101.00001 --index ./my-index   (or --text 'pasted abstract')",
    "recommend": "papersearch recommend --positive ID1 ID2 --negative ID3 --index ./my-index   "
                 "(or --library refs.bib)",
    "delete": "papersearch delete ID1 ID2 --index ./my-index",
    "info": "papersearch info --index ./my-index",
    "eval": "papersearch eval ../shared/data/scifact --split test --mode dense lexical hybrid",
    "check": "papersearch check --index ./my-index   (add --repair to fix what can be fixed)",
    "rebuild": "papersearch rebuild --index ./my-index --index-type hnsw",
    "serve": "papersearch serve --index ./my-index --port 8000   (or: papersearch serve --sample)",
}
# Subcommands that live in their own module (api/cli_*.py): each has NAME, HELP, EXAMPLE,
# add_arguments(parser) and run(args) -> exit status, and imports only light modules at the top
# (`--help` builds every parser).
COMMAND_MODULES = (cli_shards, cli_backup, cli_harvest, cli_feed, cli_mcp)
EXAMPLES.update({module.NAME: module.EXAMPLE for module in COMMAND_MODULES})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="papersearch", description="Semantic search over scientific paper abstracts.",
        epilog="Example: papersearch index papers.jsonl && papersearch search 'protein folding'")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog=f"Example: {EXAMPLES[name]}" if name in EXAMPLES else None)
        add_common(p)
        return p

    p = command("index", "Add or update papers from files (JSONL, CSV, arXiv dump, BEIR corpus, OpenAlex, "
                         "Semantic Scholar, Crossref, PubMed, arXiv API, OAI-PMH; BibTeX, RIS or CSL-JSON "
                         "libraries; .gz too).")
    p.add_argument("paths", nargs="+", type=Path, help="input file(s), directories or globs of part files")
    p.add_argument("--format", choices=INPUT_FORMATS, help="force the input format (default: told per file)")
    p.add_argument("--strict", action="store_true", help="reject the whole run if any record is bad")
    p.add_argument("--batch-size", type=whole_number(1), default=None,
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
    p.add_argument("--replicas", type=whole_number(1), default=None,
                   help="with --ray: model replicas (default: one per GPU, else one per CPU)")

    p = command("search", "Rank papers by relevance to a free-text query.")
    p.add_argument("query", help="free text, e.g. 'lightweight OCR'")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                   help="ranking: dense (embeddings), lexical (BM25) or hybrid (both fused; default)")
    p.add_argument("--no-snippets", dest="snippets", action="store_false",
                   help="leave out the matching abstract sentences")
    add_filters(p)
    add_output_format(p)

    p = command("related", "Papers related to a stored paper (by id) or to a pasted abstract (--text).")
    p.add_argument("paper_id", nargs="?", help="the paper's id, DOI or arXiv id (e.g. arXiv:2206.03001v2)")
    p.add_argument("--text", help="an abstract or draft instead of a paper id ('-' reads stdin)")
    p.add_argument("--mode", choices=MODES, default=RELATED_DEFAULT_MODE,
                   help="ranking: dense (embeddings), lexical (BM25 over the paper's distinctive terms) "
                        "or hybrid (both fused; default)")
    add_filters(p)
    add_output_format(p)

    p = command("recommend", "Papers like the liked ones (--positive, or a reference library: --library) and "
                             "unlike the disliked (--negative).")
    p.add_argument("--positive", "-p", nargs="+", default=[], metavar="ID", help="liked paper ids")
    p.add_argument("--library", type=Path, metavar="FILE",
                   help="liked papers from a library (BibTeX, RIS, CSL-JSON or any `index` format): entries "
                        "in the index by id, DOI, arXiv id or title, the others by their own text")
    p.add_argument("--negative", "-n", nargs="*", default=[], metavar="ID", help="disliked paper ids")
    p.add_argument("--mode", choices=MODES, default=RELATED_DEFAULT_MODE,
                   help="ranking: dense (embeddings), lexical (BM25 over the liked papers' distinctive terms) "
                        "or hybrid (both fused; default)")
    add_filters(p)
    add_output_format(p)

    p = command("delete", "Remove papers from the index.")
    p.add_argument("paper_ids", nargs="+", metavar="ID")

    command("info", "Show what an index holds: papers, model, dimension, index type, size on disk.")

    p = command("check", "Verify that records, embeddings, model, FAISS file, BM25 index, ONNX export and "
                         "manifest agree.")
    p.add_argument("--repair", action="store_true",
                   help="rebuild the derived parts (FAISS file, BM25 index, ONNX export, manifest) from the records")

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
    for module in COMMAND_MODULES:
        module.add_arguments(command(module.NAME, module.HELP))
    return parser


# --- subcommands --------------------------------------------------------------------------------


def _open_engine(args: argparse.Namespace):
    from search.engine import SearchEngine

    return SearchEngine.open(settings_from(args))


def cmd_search(args: argparse.Namespace) -> int:
    from api.result_formats import SHOWS_SNIPPETS

    engine = _open_engine(args)
    shown = args.snippets and (args.output_format is None or args.output_format in SHOWS_SNIPPETS)
    print_hits(engine.search(args.query, limit=args.limit, offset=args.offset, filters=filters_from(args),
                              mode=args.mode, snippets=shown, min_score=args.min_score), args.json,
               args.output_format)
    return 0


def cmd_related(args: argparse.Namespace) -> int:
    if args.paper_id is not None and args.text is not None:
        raise UsageError(f"give a paper id or --text, not both (got {args.paper_id!r} and --text).")
    text = sys.stdin.read() if args.text == "-" else args.text
    if args.paper_id is None and text is None:
        raise PaperSearchError("Give a paper id, or --text with an abstract. Example: " + EXAMPLES["related"])
    engine = _open_engine(args)
    hits = engine.related(paper_id=args.paper_id, text=text, limit=args.limit, offset=args.offset,
                          filters=filters_from(args), mode=args.mode, min_score=args.min_score)
    print_hits(hits, args.json, args.output_format)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    both = sorted(set(args.positive) & set(args.negative))
    if both:
        raise UsageError(f"{', '.join(map(repr, both))} cannot be both liked (--positive) and disliked (--negative).")
    if args.library is not None:
        return cmd_recommend_library(args)
    if not args.positive:
        raise UsageError("give liked papers: --positive ID ... or --library FILE. Example: " + EXAMPLES["recommend"])
    engine = _open_engine(args)
    print_hits(engine.recommend(args.positive, args.negative, limit=args.limit, offset=args.offset,
                                filters=filters_from(args), mode=args.mode, min_score=args.min_score), args.json,
               args.output_format)
    return 0


def cmd_recommend_library(args: argparse.Namespace) -> int:
    from indexer.ingest import read_papers

    if args.positive:
        raise UsageError("give --positive or --library, not both.")
    entries, rejected = [], []
    for result in read_papers(args.library):
        if hasattr(result, "paper"):
            entries.append(result.paper)
        else:
            rejected.append(result)
    for rejection in rejected:
        print(rejection, file=sys.stderr)
    engine = _open_engine(args)
    hits, match = engine.recommend_library(entries, args.negative, limit=args.limit, offset=args.offset,
                                           filters=filters_from(args), mode=args.mode, min_score=args.min_score)
    counts = {**match.counts(), "rejected": len(rejected)}
    if not args.quiet:
        print(f"{args.library}: {counts['entries']} entries, {counts['matched']} in the index, {counts['unmatched']} "
              f"recommended from by their own text, {counts['rejected']} rejected", file=sys.stderr)
    print_hits(hits, args.json, args.output_format)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from indexer.build import delete_papers

    settings = settings_from(args)
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

    settings = settings_from(args)
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

    directory = settings_from(args).index_dir
    report = repair_index(directory) if args.repair else check_index(directory)
    return print_check(report, args.json)


def cmd_rebuild(args: argparse.Namespace) -> int:
    from indexer.check import repair_index

    report = repair_index(settings_from(args).index_dir, force=True, index_type=args.index_type)
    return print_check(report, args.json)


def cmd_serve(args: argparse.Namespace) -> int:
    from api.server import serve

    return serve(settings_from(args), host=args.host, port=args.port, sample=args.sample, quiet=args.quiet)


COMMANDS = {"index": lambda args: cmd_index(args, settings_from(args)), "search": cmd_search, "related": cmd_related,
            "recommend": cmd_recommend,
            "delete": cmd_delete, "info": cmd_info, "check": cmd_check, "rebuild": cmd_rebuild,
            "serve": cmd_serve, "eval": cmd_eval}
COMMANDS.update({module.NAME: module.run for module in COMMAND_MODULES})


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
                       where=lambda: settings_from(args).index_dir)


if __name__ == "__main__":
    sys.exit(main())
