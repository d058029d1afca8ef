"""The argument vocabulary every `papersearch` subcommand shares: common flags, filter flags,
whole-number types, and the Settings and Filters built from parsed arguments.

Subcommands in their own modules (api/cli_*.py) import these, so a new command is a new module
plus one line in api/cli.py's COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from api.result_formats import FORMATS as OUTPUT_FORMATS
from api.serve_flags import serve_overrides
from models.config import Settings, default_index_dir
from models.errors import InvalidInput


def whole_number(minimum: int, maximum: int | None = None):
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


PORT = whole_number(0, 65535)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", dest="index_dir", type=Path, default=None,
                        help=f"index directory (default: $PAPERSEARCH_INDEX or {default_index_dir()})")
    parser.add_argument("--model", default=None,
                        help="sentence-transformers model name or path (default: the index's own, "
                             "else the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", "-k", type=whole_number(1), default=10, help="how many results (default 10)")
    parser.add_argument("--offset", type=whole_number(0), default=0, help="skip this many results (paging)")
    parser.add_argument("--year-from", type=int, help="only papers from this year on")
    parser.add_argument("--year-to", type=int, help="only papers up to this year")
    parser.add_argument("--category", help="only this category (e.g. cs.CV, or cs for all cs.*)")
    parser.add_argument("--author", help="only papers with an author matching this (case-insensitive)")
    parser.add_argument("--all-versions", action="store_true",
                        help="show every version of a work (preprint and published), not only the best-ranked")
    add_min_score(parser)


def add_min_score(parser: argparse.ArgumentParser) -> None:
    """--min-score for the ranking commands (search, related, recommend)."""
    from search.scores import MIN_SCORE_RANGE

    low, high = MIN_SCORE_RANGE

    def score(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        return value

    parser.add_argument("--min-score", type=score, default=None,
                        help="end the list at the first hit scoring below this: a cosine in --mode dense, an "
                             "estimated chance of relevance (0-1) in lexical and hybrid")


def add_output_format(parser: argparse.ArgumentParser) -> None:
    """--format for commands that print a ranked list. The same flag as `index --format`, the other
    way round: the format of the file the command deals with (here: writes)."""
    parser.add_argument("--format", dest="output_format", choices=OUTPUT_FORMATS, default=None,
                        help="write the results as a reference library or table instead of a listing "
                             "(jsonl is what --json prints)")


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(index_dir=args.index_dir, model=args.model,
                                 batch_size=getattr(args, "batch_size", None),
                                 index_type=getattr(args, "index_type", None),
                                 backend=getattr(args, "backend", None), **serve_overrides(args))
    if settings.index_dir.exists() and not settings.index_dir.is_dir():
        raise InvalidInput(f"{settings.index_dir} is a file, not an index directory; pass a directory with --index "
                           "(a new one is created by 'papersearch index').")
    return settings


def filters_from(args: argparse.Namespace):
    from models.query import Filters

    return Filters(year_from=args.year_from, year_to=args.year_to, category=args.category, author=args.author,
                   all_versions=getattr(args, "all_versions", False))
