"""WriteLock: one writing process per index directory."""

from __future__ import annotations

import fcntl
from pathlib import Path

from indexer.store import layout
from models.errors import IndexBusy


class WriteLock:
    """An exclusive lock on the index directory for the length of a write session."""

    def __init__(self, directory: Path, wait: bool = True):
        self.path = layout.lock_file(directory)
        self.wait = wait
        self._handle = None

    def __enter__(self) -> WriteLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a")
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
