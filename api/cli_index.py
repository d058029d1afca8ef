"""`papersearch index`: input checks, the room a write needs, and the exit status of a run.

Exit status of `index` (api/cli.py lists them all): 0 every record used, 3 some records rejected
and the rest indexed, 1 every record of the run, or of one of its files, rejected (or any failure). All the files of one
run are one plan: an id repeated in two files is embedded once, for its last record.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

from api.cli_errors import EXIT_FAILURE, EXIT_OK, EXIT_SOME_REJECTED, MIN_FREE_BYTES, DiskFull, free_bytes, is_read_only
from api.cli_output import report_counts
from models.config import Settings
from models.errors import InvalidInput


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    """Index `args.paths` into `settings.index_dir`; returns the exit status."""
    from indexer.build import index_files
    from indexer.ingest import Inputs, expand_inputs

    args.paths = expand_inputs(args.paths)  # directories and globs of part files, each format told per file
    _check_input_files(args.paths)
    check_room_to_write(settings, incoming_bytes=sum(p.stat().st_size for p in args.paths))
    if args.ray is not None:
        return _index_on_ray(args, settings)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        # One bar across every file, with papers/s and the time left.
        with Inputs(args.paths, args.format) as inputs:
            total = inputs.estimate()
        bar = tqdm(total=total, unit="paper", file=sys.stderr,
                   desc=args.paths[0].name if len(args.paths) == 1 else f"{len(args.paths)} files")
    try:
        # One run over all the files: an id repeated in two files is embedded once (the last wins).
        report = index_files(settings, args.paths, fmt=args.format, strict=args.strict,
                             progress=bar.update if bar else None, on_reject=lambda r: print(r, file=sys.stderr),
                             on_note=lambda n: print(n, file=sys.stderr))
    finally:
        if bar:
            bar.close()
    for line in report.duplicates:
        print(line, file=sys.stderr)
    source = str(args.paths[0]) if len(args.paths) == 1 else f"{len(args.paths)} files"
    if args.json:
        where = {"file": source} if len(args.paths) == 1 else {"files": [str(p) for p in args.paths]}
        print(json.dumps({**where, **report_counts(report)}))
    else:
        print(f"{source}: {report.summary()}", file=sys.stderr if args.quiet else sys.stdout)
    return _index_status(report, source)


def _index_status(report, source: str) -> int:
    """0 all used; 3 some records rejected, the rest indexed; 1 every record of the run, or of one of
    its files, rejected (a wrong file among good ones is a failure, not a detail)."""
    if report.rejection == "none":
        return EXIT_OK
    if report.rejection == "some" and not report.wholly_rejected:
        return EXIT_SOME_REJECTED
    if report.rejection == "all":
        print(f"error: {source}: every record was rejected ({len(report.rejected)}); nothing was indexed from it.",
              file=sys.stderr)
    for path in report.wholly_rejected if report.rejection == "some" else ():
        print(f"error: {path}: every record of this file was rejected; the other files were indexed.",
              file=sys.stderr)
    return EXIT_FAILURE


def _check_input_files(paths: list[Path]) -> None:
    """Every input is a readable file, checked before the index is touched."""
    for path in paths:
        if path.is_dir():
            raise InvalidInput(f"{path} is a directory, not an input file; name the file(s) in it, "
                               f"e.g. {path / '*.jsonl'}")
        if not path.is_file():
            raise InvalidInput(f"{path}: no such input file")


def check_room_to_write(settings: Settings, incoming_bytes: int = 0) -> None:
    """Refuse a write the disk cannot take (read-only, or too full), before anything changes.

    The writer's steps are each atomic, but a run has several (records, vectors file, manifest),
    so running out of space part way would leave some of them done. The estimate is set low, so
    that it only refuses writes that cannot fit: the input's text is stored at least once, and
    the vectors file (about a quarter of the index's top-level files) is written anew.
    """
    directory = settings.index_dir
    if is_read_only(directory):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(directory))
    current = sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) if directory.is_dir() else 0
    needed = MIN_FREE_BYTES + incoming_bytes + current // 4
    free = free_bytes(directory)
    if free is not None and free < needed:
        raise DiskFull(f"{directory}: the disk is full ({free // 1024} KB free; this write needs at least "
                       f"{needed // 1024} KB); free some space and run the command again. Nothing was changed.")


def _index_on_ray(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.distributed import RayOptions, index_files_ray

    options = RayOptions(address=args.ray or None, replicas=args.replicas, quiet=args.quiet or args.json)
    report, run = index_files_ray(settings, args.paths, fmt=args.format, options=options, strict=args.strict,
                                  on_reject=lambda r: print(r, file=sys.stderr))
    for line in report.duplicates:
        print(line, file=sys.stderr)
    if args.json:
        print(json.dumps({"files": [str(p) for p in args.paths], **report_counts(report),
                          "ray": {"address": run.address, "replicas": run.replicas,
                                  "gpus_per_replica": run.gpus_per_replica}}))
    else:
        print(f"{len(args.paths)} file(s) on Ray ({run.address}, {run.replicas} replica(s)): {report.summary()}",
              file=sys.stderr if args.quiet else sys.stdout)
    return _index_status(report, f"{len(args.paths)} file(s)")
