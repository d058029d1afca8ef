"""The store's reads beyond the records themselves: identifiers, dates, facets, harvest progress.

A mixin of IndexStore (which supplies `_db`, `_fetch`, `_rows_in`, `_meta_*`, `directory`,
`writable`, `rowids_for` and `require_writable`), kept apart so the store's core stays small.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from indexer.store import identifiers, layout, schema
from indexer.store.lock import WriteLock
from models.errors import AmbiguousId, IndexBusy
from models.identifiers import lookup_keys, paper_keys

# meta keys `harvest:<source>` hold each OAI-PMH source's harvest progress (indexer/harvest.py).
_HARVEST_KEY = "harvest:"


class IdentifierReads:
    """DOIs, arXiv ids and other external ids: the one resolver every lookup by id goes through."""

    def _ensure_identifiers(self) -> None:
        # Additive and idempotent: an index from before the table gets it, filled, when first opened
        # for writing; a reader that may not write looks ids up by scanning until then, and finds
        # out which on its first lookup (reading nothing more when it opens).
        if self.writable:
            with self._transaction_lock, schema.damage_as_corrupt(self.directory):
                self._identifiers_indexed = identifiers.ensure(self._db, self._fetch)

    def _has_identifiers(self) -> bool:
        if self._identifiers_indexed is None:
            self._identifiers_indexed = identifiers.is_current(self._fetch) or self._fill_identifiers_once()
        return self._identifiers_indexed

    def _fill_identifiers_once(self) -> bool:
        """An index from before the identifiers table, opened to read: filled once, under the write
        lock, where the directory may be written (as a format upgrade is), so that no search has to
        read every paper. Not while another process writes (it fills the table itself)."""
        if self.writable or not layout.is_writable(self.directory):
            return False
        try:
            with WriteLock(self.directory, wait=False):
                writer = type(self)(self.directory, schema.connect(layout.db_file(self.directory)), writable=True)
                try:
                    writer._ensure_identifiers()
                finally:
                    writer.close()
        except IndexBusy:
            return False
        return identifiers.is_current(self._fetch)

    def _identifier_holders(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        if self._has_identifiers():
            return identifiers.papers_with(self._fetch, keys, True)
        if self._scanned_identifiers is None:  # a read-only old index: one scan, then lookups in memory
            self._scanned_identifiers = identifiers.scan(self._fetch)
        return identifiers.lookup(self._scanned_identifiers, keys)

    def resolve_ids(self, ids: Iterable[str]) -> dict[str, str]:
        """id as given -> the stored paper_id it names, for the ids that name one.

        The one place where a DOI or arXiv id (any form of models.identifiers.lookup_keys) stands for
        a paper: every lookup by id goes through here. A stored paper_id always means itself; an
        identifier held by several papers raises AmbiguousId naming them.
        """
        ids = list(dict.fromkeys(ids))
        sql = "SELECT rowid, paper_id FROM papers WHERE paper_id IN ({marks})"
        resolved = {pid: pid for _, pid in self._rows_in(sql, ids)}
        wanted = {given: lookup_keys(given) for given in ids if given not in resolved}
        holders = self._identifier_holders([key for keys in wanted.values() for key in keys])
        for given, keys in wanted.items():
            # The first kind that names any paper decides (a DOI before the arXiv id it may hold).
            found = next((holders[key] for key in keys if key in holders), set())
            if len(found) > 1:
                raise AmbiguousId(given, sorted(found))
            if found:
                resolved[given] = next(iter(found))
        return resolved

    def identifier_keys(self, paper_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """paper_id -> its (kind, value) identifier keys, for the stored ids."""
        if self._has_identifiers():
            return identifiers.keys_of(self._fetch, paper_ids)
        return {pid: paper_keys(paper) for pid, paper in self.get_papers(paper_ids).items()}

    def papers_with_keys(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        """(kind, value) -> the paper ids holding that identifier key."""
        return self._identifier_holders(keys)


class CorpusReads:
    """When papers were indexed, what the corpus holds, what facets count, where a harvest stands."""

    def harvest_state(self, source: str) -> dict | None:
        """What `papersearch harvest` remembers about one source (datestamp, resumption token), or None."""
        value = self._meta_get(_HARVEST_KEY + source)
        return json.loads(value) if value else None

    def set_harvest_state(self, source: str, state: dict) -> None:
        """Remember a harvest's progress for `source`, in the index it fills (one small transaction)."""
        self.require_writable()
        with self._transaction_lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._meta_set_many({_HARVEST_KEY + source: json.dumps(state, sort_keys=True)})

    def indexed_times(self, paper_ids: Iterable[str]) -> dict[str, int]:
        """paper_id -> when its row was last written (unix seconds), for the ids that are present.

        An index made before rows carried the stamp (and not written since) answers the time the
        index was created, for every row.
        """
        if self._fetch("PRAGMA user_version")[0][0] < len(schema.MIGRATIONS):
            created = int(self._meta_get("created_at") or 0)
            return dict.fromkeys(self.rowids_for(paper_ids), created)
        sql = "SELECT paper_id, indexed_at FROM papers WHERE paper_id IN ({marks})"
        return {pid: int(stamp or 0) for pid, stamp in self._rows_in(sql, paper_ids)}

    def last_indexed(self) -> int:
        """When the last row was written (unix seconds); the index's creation time without rows."""
        if self._fetch("PRAGMA user_version")[0][0] >= len(schema.MIGRATIONS):
            latest = self._fetch("SELECT max(indexed_at) FROM papers")[0][0]
            if latest:
                return int(latest)
        return int(self._meta_get("created_at") or 0)

    def corpus_summary(self, top: int = 8) -> dict:
        """What the index holds, in brief: papers, the year range and the most common categories."""
        papers, first, last = self._fetch("SELECT count(*), min(year), max(year) FROM papers")[0]
        rows = self._fetch("SELECT value, count(*) FROM papers, json_each(papers.categories) "
                           "GROUP BY value ORDER BY count(*) DESC, value LIMIT ?", (top,))
        return {"papers": papers, "year_min": first, "year_max": last, "categories": [tuple(row) for row in rows]}

    def facet_rows(self, rowids: Iterable[int] | None = None) -> list[tuple[int, int | None, str, str | None]]:
        """(rowid, year, categories as JSON, venue) of the given rows, or of every row: what facets count."""
        columns = "rowid, year, categories, venue"
        if rowids is None:
            return self._fetch(f"SELECT {columns} FROM papers")
        return list(self._rows_in(f"SELECT {columns} FROM papers WHERE rowid IN ({{marks}})", [int(r) for r in rowids]))
