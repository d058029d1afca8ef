"""Where `papersearch` turns failures into one line on stderr and an exit status (see api/cli.py).

`run_command` is the only place that catches: a user's mistake or an environment fault (full
disk, read-only or missing directory, closed pipe) never reaches the user as a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from models.errors import IndexReadOnly, InvalidInput, PaperNotFound, PaperSearchError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SOME_REJECTED = 3  # `index`: some records were rejected, the rest were indexed
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_BROKEN_PIPE = 141  # the reader went away (`| head`), as shells report SIGPIPE

# Below this much free space on the index's disk, a write is refused before it starts, and any
# failure mentions the full disk (SQLite then reports it as a "disk I/O error").
MIN_FREE_BYTES = 1 << 20

_ADVICE = {
    errno.ENOSPC: "the disk is full; free some space and run the command again",
    errno.EDQUOT: "the disk quota is used up; free some space and run the command again",
    errno.EROFS: "the file system is read-only; use a writable directory, or remount it read-write",
    errno.EACCES: "permission denied; use a directory you may write to, or fix its permissions",
    errno.EPERM: "operation not permitted; use a directory you may write to, or fix its permissions",
    errno.ENOTDIR: "a part of this path is a file, not a directory",
    errno.EISDIR: "this is a directory, where a file was expected",
    errno.ENOENT: "no such file or directory",
}
# SQLite's result codes for the same faults (it raises its own errors, without errno).
_SQLITE_ERRNO = {13: errno.ENOSPC, 8: errno.EROFS, 23: errno.EACCES}  # SQLITE_FULL, _READONLY, _AUTH


class UsageError(Exception):
    """Arguments that cannot go together, or a value out of range: exit status 2."""


class DiskFull(PaperSearchError):
    """Too little free space for a write, found before it started (the message says how much)."""


def describe_os_error(exc: OSError, where: Path | None) -> str:
    """One line: the path (or the index directory, when the OS did not name one), what went wrong, what to do."""
    path = exc.filename or where
    advice = _ADVICE.get(exc.errno, exc.strerror or str(exc))
    return f"{path}: {advice}" if path else advice


def _sqlite_as_os_error(exc: sqlite3.Error) -> OSError | None:
    code = getattr(exc, "sqlite_errorcode", None)
    number = _SQLITE_ERRNO.get(code & 0xFF) if code is not None else None
    return OSError(number, os.strerror(number)) if number else None


def environment_note(directory: Path | None) -> str:
    """' (note: ...)' when the disk holding `directory` is nearly full or read-only, else ''.

    SQLite reports both as "disk I/O error" or "unable to open database file", which reads like damage.
    """
    existing = nearest_existing(directory)
    if existing is None:
        return ""
    if is_read_only(existing):
        return f" (note: {directory} is on a read-only file system)"
    free = free_bytes(existing)
    if free is not None and free < MIN_FREE_BYTES:
        return f" (note: the disk holding {directory} has only {free // 1024} KB free)"
    return ""


def nearest_existing(directory: Path | None) -> Path | None:
    """`directory`, or its nearest parent that exists."""
    if directory is None:
        return None
    path = Path(directory).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(directory: Path | None) -> int | None:
    """Free bytes on the file system that holds `directory` (or its nearest existing parent)."""
    try:
        return shutil.disk_usage(nearest_existing(directory)).free
    except (OSError, TypeError):
        return None


def is_read_only(directory: Path | None) -> bool:
    """True when `directory` (or its nearest existing parent) is on a read-only mount."""
    try:
        return bool(os.statvfs(nearest_existing(directory)).f_flag & os.ST_RDONLY)
    except (OSError, TypeError):
        return False


def _quiet_stdout() -> None:
    # Python would flush stdout again at exit and print "Exception ignored ... BrokenPipeError".
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_command(command: Callable[[], int], prog: str, where: Callable[[], Path | None]) -> int:
    """Run one subcommand and map what it raises to (one line on stderr, exit status).

    Args:
        prog: "papersearch search" and the like, for usage errors.
        where: the index directory, to name when an error names no path (asked only on failure).
    """
    try:
        status = command()
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler, not at exit
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PaperSearchError as exc:
        # A full or read-only disk explains damage-like failures, not a wrong id or one said already.
        plain = DiskFull | IndexReadOnly | PaperNotFound | InvalidInput
        note = "" if isinstance(exc, plain) else environment_note(_safe(where))
        print(f"error: {exc}{note}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"error: {describe_os_error(exc, _safe(where))}", file=sys.stderr)
        return EXIT_FAILURE
    except sqlite3.Error as exc:
        directory = _safe(where)
        as_os = _sqlite_as_os_error(exc)
        line = describe_os_error(as_os, directory) if as_os else f"{directory}: the index database failed ({exc})"
        print(f"error: {line}{environment_note(directory) if not as_os else ''}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted; everything written before this point is kept", file=sys.stderr)
        return EXIT_INTERRUPTED


def _safe(where: Callable[[], Path | None]) -> Path | None:
    try:
        return where()
    except Exception:  # naming the place must never hide the error itself
        return None
