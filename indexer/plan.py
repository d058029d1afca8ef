"""The ingest plan: what one indexing run does with its input, decided before anything is embedded.

Both ways of indexing (`index_files` in one process, `index_files_ray` on a cluster) make the same
plan and follow it record by record, so they skip, reject and report the same records:

- rejections: every record the decoder refuses; with `--strict` any one of them stops the run
  before the index is touched;
- duplicates: an id met more than once anywhere in the run (within a file, across write batches,
  across files) is embedded once, for its last record. The earlier ones are skipped, not
  overwritten later: a rerun after a crash would otherwise re-embed the earlier text, and readers
  would briefly see it.

The plan needs one read-only pass over the input first. Which record of an id wins is decided by
its place (file number, location), so following the plan needs no state and the Ray read tasks can
follow it on their own shards.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from indexer.ingest import Parsed, Rejection, read_papers
from models.errors import InvalidInput

__all__ = ["Duplicate", "IngestPlan"]

# Records sent to the on-disk id table per statement: big enough to make the pass cheap.
_SCAN_CHUNK = 4096
# Rejections quoted in the --strict error; the count says how many more there were.
_STRICT_SHOWN = 20


@dataclass(frozen=True)
class Duplicate:
    """A record skipped because a later record with the same id wins."""

    location: str
    paper_id: str
    winner: str  # where the record that wins is

    def __str__(self) -> str:
        return (f"{self.location}: duplicate id {self.paper_id!r}; skipped, the last record "
                f"with this id wins ({self.winner})")


class _IdTable:
    """How often each id occurs and where it last occurs, on disk (a private temporary SQLite
    database, gone on close), so memory stays flat however many records the input holds."""

    def __init__(self):
        self._db = sqlite3.connect("")  # "" = temporary on-disk database: pages spill to disk
        self._db.execute("CREATE TABLE seen (paper_id TEXT PRIMARY KEY, times INTEGER NOT NULL, "
                         "ordinal INTEGER NOT NULL, location TEXT NOT NULL) WITHOUT ROWID")
        self._pending: list[tuple[str, int, str]] = []

    def add(self, paper_id: str, ordinal: int, location: str) -> None:
        self._pending.append((paper_id, ordinal, location))
        if len(self._pending) >= _SCAN_CHUNK:
            self._flush()

    def _flush(self) -> None:
        # executemany keeps the rows' order, so the last occurrence's place is the one kept.
        self._db.executemany("INSERT INTO seen VALUES (?, 1, ?, ?) ON CONFLICT (paper_id) DO UPDATE SET "
                             "times = times + 1, ordinal = excluded.ordinal, location = excluded.location",
                             self._pending)
        self._pending.clear()

    def repeated(self) -> dict[str, tuple[int, str]]:
        """Each id met more than once -> (file number, location) of its last record."""
        self._flush()
        rows = self._db.execute("SELECT paper_id, ordinal, location FROM seen WHERE times > 1")
        return {paper_id: (ordinal, location) for paper_id, ordinal, location in rows}

    def close(self) -> None:
        self._db.close()


class IngestPlan:
    """The rejections of a run and, for each repeated id, the one record that is kept."""

    def __init__(self, rejected: list[Rejection] | None = None, winners: dict[str, tuple[int, str]] | None = None):
        self.rejected = rejected or []
        # repeated id -> (file number in the run, location) of its last record, the one kept
        self.winners = winners or {}

    @classmethod
    def scan(cls, paths: Sequence[str | Path], fmt: str | None = None) -> IngestPlan:
        """One read-only pass over a run's input files, in order. Raises InvalidInput for a missing file."""
        rejected: list[Rejection] = []
        table = _IdTable()
        try:
            for ordinal, path in enumerate(paths):
                for item in read_papers(path, fmt):
                    if isinstance(item, Rejection):
                        rejected.append(item)
                    else:
                        table.add(item.paper.paper_id, ordinal, item.location)
            return cls(rejected, table.repeated())
        finally:
            table.close()

    def refuse_rejections(self) -> None:
        """For --strict: raise InvalidInput listing the rejections, if there are any."""
        if self.rejected:
            shown = "\n".join(str(r) for r in self.rejected[:_STRICT_SHOWN])
            raise InvalidInput(f"{shown}\n--strict: {len(self.rejected)} record(s) rejected; "
                               "the index was not changed.")

    def follow(self, ordinal: int, items: Iterable[Parsed | Rejection]) -> Iterator[Parsed | Rejection | Duplicate]:
        """The records of file number `ordinal` with each repeated id's earlier records turned into Duplicates."""
        for item in items:
            if isinstance(item, Parsed):
                winner = self.winners.get(item.paper.paper_id)
                if winner is not None and winner != (ordinal, item.location):
                    yield Duplicate(item.location, item.paper.paper_id, winner[1])
                    continue
            yield item
