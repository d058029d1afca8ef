"""WriteLock: one writing process per index directory. Readers never take it."""

from __future__ import annotations

import errno
import fcntl
from pathlib import Path

from indexer.store import layout
from models.errors import IndexBusy, IndexReadOnly

# What opening the lock file meets on an index this process cannot write.
_READ_ONLY_ERRNOS = {errno.EROFS: "is on a read-only file system", errno.EACCES: "is not writable by this user",
                     errno.EPERM: "is not writable by this user"}


def read_only_error(directory: Path, why: str) -> IndexReadOnly:
    """The one line for a write refused because `directory` cannot be written."""
    return IndexReadOnly(f"The index in {directory} {why}: it can be searched, but not changed. Write to a "
                         "writable copy ('papersearch backup'), or remount or fix its permissions.")


class WriteLock:
    """An exclusive lock on the index directory for the length of a write session."""

    def __init__(self, directory: Path, wait: bool = True):
        self.path = layout.lock_file(directory)
        self.wait = wait
        self._handle = None

    def __enter__(self) -> WriteLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._handle = self.path.open("a")
        except OSError as exc:
            if exc.errno not in _READ_ONLY_ERRNOS:
                raise
            raise read_only_error(self.path.parent, _READ_ONLY_ERRNOS[exc.errno]) from exc
        flags = fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(self._handle, flags)
        except BlockingIOError as exc:
            self._handle.close()
            raise IndexBusy(f"Another process is writing to {self.path.parent}; try again when it is done.") from exc
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
