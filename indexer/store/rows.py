"""Rows of the `papers` table: the one way back into Paper, and the one way to page through them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence

from indexer.store import codec
from models.paper import Paper

# The columns `paper_from_row` reads, in its order; the row id first.
PAPER_COLUMNS = "rowid, paper_id, title, abstract, authors, year, categories, venue, url, doi, extra"
PAPER_COLUMN_COUNT = len(PAPER_COLUMNS.split(","))
# Ids per `IN (...)` query: far below SQLite's limit on bound parameters.
_IN_CHUNK = 500

Fetch = Callable[[str, Sequence], list[tuple]]


def paper_from_row(row: Sequence) -> Paper:
    """The Paper stored in a row selected with PAPER_COLUMNS first."""
    return Paper(
        paper_id=row[1], title=row[2], abstract=codec.abstract_text(row[3]), authors=tuple(json.loads(row[4])),
        year=row[5], categories=tuple(json.loads(row[6])), venue=row[7], url=row[8], doi=row[9],
        extra=json.loads(row[10]),
    )


def paper_fields(paper: Paper) -> tuple:
    """The stored form of a Paper's columns after paper_id (title .. extra): JSON lists and objects, the
    abstract compressed (indexer/store/codec.py)."""
    return (paper.title, codec.abstract_value(paper.abstract), _json(list(paper.authors)), paper.year,
            _json(list(paper.categories)), paper.venue, paper.url, paper.doi, _json(paper.extra))


def _json(value: list | dict) -> str:
    """json.dumps as stored; the empty list and object (most records lack some field) without
    the encoder's ~4 us a call, which a bulk build of ready vectors pays three times a paper."""
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value, ensure_ascii=False, default=str)


def pages(fetch: Fetch, columns: str, chunk_size: int) -> Iterator[list[tuple]]:
    """Every row of `papers` (`columns`, the rowid first) in rowid order, `chunk_size` rows at a time.

    Keyset paging (rowid > last) rather than OFFSET, so each page costs the same however deep.
    """
    last = -1
    while True:
        rows = fetch(f"SELECT {columns} FROM papers WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, chunk_size))
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def rows_in(fetch: Fetch, sql: str, keys: Iterable) -> Iterator[tuple]:
    """Rows of `sql` (with `{marks}` where the IN list goes) for `keys`, a bounded number at a time."""
    keys = list(keys)
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start:start + _IN_CHUNK]
        yield from fetch(sql.format(marks=",".join("?" * len(chunk))), chunk)
