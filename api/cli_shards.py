"""`papersearch shards`: split an index into shards, search them together, or serve them on Ray.

The template for a subcommand in its own module: NAME, HELP, EXAMPLE, add_arguments, run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from api.cli_args import PORT, add_filters, filters_from, settings_from
from api.cli_output import print_hits
from models.errors import PaperSearchError

NAME = "shards"
HELP = "Split an index into shards, search them, or serve them on Ray Serve."
EXAMPLE = ("papersearch shards split --index ./big --out ./shards --count 2 && "
           "papersearch shards search 'protein folding' --shard ./shards/shard-0 --shard ./shards/shard-1")


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    add_filters(p)


def run(args: argparse.Namespace) -> int:
    if args.action == "split":
        from indexer.split import split_index

        if args.out is None:
            raise PaperSearchError("shards split needs --out DIR. Example: " + EXAMPLE)
        targets = [args.out / f"shard-{number}" for number in range(args.count)]
        counts = split_index(settings_from(args).index_dir, targets)
        for target, count in zip(targets, counts, strict=True):
            print(json.dumps({"shard": str(target), "papers": count}) if args.json else f"{target}: {count} papers")
        return 0
    if len(args.shard_dirs) < 1:
        raise PaperSearchError("Name the shards with --shard DIR (once per shard). Example: " + EXAMPLE)
    if args.action == "search":
        from search.shards import ShardRouter

        if not args.query:
            raise PaperSearchError("shards search needs a query. Example: " + EXAMPLE)
        router = ShardRouter.open_local(args.shard_dirs, settings=settings_from(args))
        try:
            print_hits(router.search(args.query, limit=args.limit, offset=args.offset, filters=filters_from(args)),
                        args.json)
        finally:
            router.close()
        return 0
    from indexer.distributed import RayOptions, connect

    connect(RayOptions(address=args.ray or None, quiet=False), settings_from(args))
    from api import ray_serve

    print(f"serving {len(args.shard_dirs)} shard(s) on http://{args.host}:{args.port}/search?q=...", file=sys.stderr)
    ray_serve.run(args.shard_dirs, host=args.host, port=args.port, model=args.model)
    return 0

