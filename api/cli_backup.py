"""`papersearch backup`: a consistent copy of an index that checks clean, safe while a server writes to it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from api.cli_args import settings_from

NAME = "backup"
HELP = "Write a consistent copy of an index into a new directory (safe while a server writes), then check it."
EXAMPLE = "papersearch backup --index ./my-index ./my-index-2026-12-01"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("destination", type=Path, metavar="DEST",
                   help="directory for the copy: must not exist yet, or be empty")


def run(args: argparse.Namespace) -> int:
    from indexer.backup import backup_index

    report = backup_index(settings_from(args).index_dir, args.destination)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(f"{report.directory}: {report.papers} papers, generation {report.generation}, checked OK "
          f"({report.seconds:.1f}s)")
    for label, parts in (("copied", report.copied), ("rebuilt from the copied records", report.rebuilt),
                         ("left out", report.left_out)):
        if parts:
            print(f"{label}: {', '.join(parts)}")
    return 0
