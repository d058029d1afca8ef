"""`papersearch feed`: write the Atom or JSON feed of a search, a paper's related work or a reading
list: the same document GET /feeds/... answers for the URL it prints as its self link."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from api.cli_args import add_filters, filters_from, settings_from
from api.cli_errors import UsageError
from models.query import MODES

NAME = "feed"
HELP = "Write the Atom or JSON Feed of a search, of a paper's related papers, or of liked papers."
EXAMPLE = ("papersearch feed search 'protein folding' --index ./my-index --since 30 > folding.atom   "
           "(or: feed related ID, feed recommend --positive ID1 ID2 --format json)")
# Must match what a server at this address would write (the self and fallback links).
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from api import feeds

    p.add_argument("kind", choices=("search", "related", "recommend"),
                   help="search QUERY, related PAPER_ID, or recommend --positive ID ... [--negative ID ...]")
    p.add_argument("subject", nargs="?", help="the query (search) or the paper id (related)")
    p.add_argument("--positive", "-p", nargs="+", default=[], metavar="ID", help="with recommend: liked paper ids")
    p.add_argument("--negative", "-n", nargs="*", default=[], metavar="ID", help="with recommend: disliked paper ids")
    p.add_argument("--format", choices=feeds.FORMATS, default="atom", help="atom (default) or json (JSON Feed 1.1)")
    p.add_argument("--mode", choices=MODES, default=feeds.DEFAULT_FEED_MODE,
                   help=f"ranking (default {feeds.DEFAULT_FEED_MODE}: its scores are cosines, comparable across feeds)")
    p.add_argument("--since", default=None,
                   help=f"window: days back or an ISO date (default {feeds.DEFAULT_SINCE_DAYS} days)")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL,
                   help=f"the server the feed's links point at (default {DEFAULT_BASE_URL})")
    p.add_argument("--out", "-o", type=Path, default=None, help="write to this file (default: stdout)")
    add_filters(p)  # --min-score among them; a feed's default is its own threshold
    p.set_defaults(limit=feeds.DEFAULT_ENTRIES, min_score=feeds.DEFAULT_MIN_SCORE)


def feed_request(args: argparse.Namespace):
    """The FeedRequest the arguments name; UsageError for a missing or misplaced subject."""
    from api import feeds

    if args.offset:
        raise UsageError("a feed has no pages: --offset does not apply (use --limit for more entries).")
    if args.kind in ("search", "related") and not args.subject:
        raise UsageError(f"feed {args.kind} needs a {'query' if args.kind == 'search' else 'paper id'}. "
                         f"Example: {EXAMPLE}")
    if args.kind == "recommend" and (args.subject or not args.positive):
        raise UsageError("feed recommend takes liked ids with --positive ID ... (and --negative ID ...), "
                         "no other argument.")
    if args.kind != "recommend" and (args.positive or args.negative):
        raise UsageError("--positive and --negative go with 'feed recommend'.")
    common = {"filters": filters_from(args), "mode": args.mode, "min_score": args.min_score, "limit": args.limit,
              "since": feeds.parse_since(args.since, datetime.now(timezone.utc))}
    if args.kind == "search":
        return feeds.FeedRequest(kind="search", query=args.subject, **common)
    if args.kind == "related":
        return feeds.FeedRequest(kind="related", paper_id=args.subject, **common)
    return feeds.FeedRequest(kind="recommend", positive=tuple(args.positive), negative=tuple(args.negative), **common)


def run(args: argparse.Namespace) -> int:
    from api import feeds
    from search.engine import SearchEngine

    request = feed_request(args)
    base_url = args.base_url.rstrip("/")
    engine = SearchEngine.open(settings_from(args))
    try:
        body = feeds.document(engine, request, args.format, base_url=base_url,
                              self_url=feeds.feed_url(base_url, request, args.format, since=args.since))
    finally:
        engine.close()
    if args.out is not None:
        args.out.write_bytes(body)
        if not args.quiet:
            print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(body + b"\n")
    return 0
