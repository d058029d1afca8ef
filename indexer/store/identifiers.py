"""The identifiers table: each paper's DOI, arXiv id, other external ids and work key, indexed.

    identifiers(kind, value, paper_id)    one row per key of models.identifiers.paper_keys

It is derived from the papers table and kept in step by every write (writes.py). The change is
additive: an index made before the table existed gets it, filled from its papers, the first time
it is opened (`ensure`); meta `identifiers_version` records which derivation filled it, so a new
rule re-fills it once. A reader that cannot write (a read-only file) looks keys up by scanning.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence

from indexer.store.rows import PAPER_COLUMNS, paper_from_row, rows_in
from models.identifiers import KINDS, paper_keys
from models.paper import Paper

# Bump when models.identifiers.paper_keys derives other keys: stored tables are then re-filled.
IDENTIFIERS_VERSION = "1"
_META_KEY = "identifiers_version"
_CREATE = """
CREATE TABLE IF NOT EXISTS identifiers (
    kind TEXT NOT NULL, value TEXT NOT NULL, paper_id TEXT NOT NULL,
    PRIMARY KEY (kind, value, paper_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identifiers_paper ON identifiers(paper_id);
"""
_FILL_CHUNK = 5_000

Fetch = Callable[[str, Sequence], list[tuple]]


def is_current(fetch: Fetch) -> bool:
    """Whether the table exists and was filled by this derivation."""
    rows = fetch("SELECT value FROM meta WHERE key=?", (_META_KEY,))
    return bool(rows) and rows[0][0] == IDENTIFIERS_VERSION


def ensure(db: sqlite3.Connection, fetch: Fetch) -> bool:
    """Create and fill the table if it is missing or stale. False when the file cannot be written."""
    if is_current(fetch):
        return True
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:  # read-only file or directory: lookups fall back to a scan
        return False
    try:
        if not is_current(fetch):  # another process may have filled it while this one waited
            for statement in filter(str.strip, _CREATE.split(";")):
                db.execute(statement)
            db.execute("DELETE FROM identifiers")
            _fill(db, fetch)
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_META_KEY, IDENTIFIERS_VERSION))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return True


def _fill(db: sqlite3.Connection, fetch: Fetch) -> None:
    last = -1
    while True:
        rows = fetch(f"SELECT {PAPER_COLUMNS} FROM papers WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, _FILL_CHUNK))
        if not rows:
            return
        db.executemany("INSERT OR IGNORE INTO identifiers(kind, value, paper_id) VALUES (?, ?, ?)",
                       [(kind, value, row[1]) for row in rows for kind, value in paper_keys(paper_from_row(row))])
        last = rows[-1][0]


def replace(db: sqlite3.Connection, paper: Paper) -> None:
    """Store the keys of `paper` in place of its old ones (inside the caller's write transaction)."""
    remove(db, paper.paper_id)
    add(db, paper)


def add(db: sqlite3.Connection, paper: Paper) -> None:
    """Store the keys of a paper new to the index (it has none yet: writes keep the table in step)."""
    db.executemany("INSERT OR IGNORE INTO identifiers(kind, value, paper_id) VALUES (?, ?, ?)",
                   [(kind, value, paper.paper_id) for kind, value in paper_keys(paper)])


def remove(db: sqlite3.Connection, paper_id: str) -> None:
    db.execute("DELETE FROM identifiers WHERE paper_id=?", (paper_id,))


def papers_with(fetch: Fetch, keys: Iterable[tuple[str, str]], indexed: bool) -> dict[tuple[str, str], set[str]]:
    """(kind, value) -> the paper ids holding that key, for the keys that some paper holds.

    `indexed` False scans the papers instead (IndexStore keeps one such scan per open store).
    """
    wanted = set(keys)
    found: dict[tuple[str, str], set[str]] = {}
    if not wanted:
        return found
    if indexed:
        for kind in {kind for kind, _ in wanted} & set(KINDS):  # only known names reach the SQL text
            values = [value for k, value in wanted if k == kind]
            sql = f"SELECT value, paper_id FROM identifiers WHERE kind='{kind}' AND value IN ({{marks}})"
            for value, paper_id in rows_in(fetch, sql, values):
                found.setdefault((kind, value), set()).add(paper_id)
        return found
    return lookup(scan(fetch), wanted)


def scan(fetch: Fetch) -> dict[tuple[str, str], set[str]]:
    """Every paper's keys, read from the papers themselves: the table, built in memory."""
    table: dict[tuple[str, str], set[str]] = {}
    last = -1
    while rows := fetch(f"SELECT {PAPER_COLUMNS} FROM papers WHERE rowid > ? ORDER BY rowid LIMIT ?",
                        (last, _FILL_CHUNK)):
        for row in rows:
            for key in paper_keys(paper_from_row(row)):
                table.setdefault(key, set()).add(row[1])
        last = rows[-1][0]
    return table


def lookup(table: dict[tuple[str, str], set[str]], keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """`papers_with` answered from a table built by `scan`."""
    return {key: table[key] for key in set(keys) if key in table}


def keys_of(fetch: Fetch, paper_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """paper_id -> its stored (kind, value) keys."""
    out: dict[str, list[tuple[str, str]]] = {}
    for paper_id, kind, value in rows_in(fetch, "SELECT paper_id, kind, value FROM identifiers "
                                                "WHERE paper_id IN ({marks})", paper_ids):
        out.setdefault(paper_id, []).append((kind, value))
    return out
