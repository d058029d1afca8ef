"""Writing records: upserts and deletes in one transaction that bumps the generation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from indexer.store import codec, identifiers, vector_file
from indexer.store.rows import paper_fields
from indexer.vectors.base import VectorIndex
from models.paper import Paper


class RowSink(Protocol):
    """Told of each row a write removes or inserts, as it is written (inside the transaction)."""

    def removed(self, rowid: int) -> None: ...

    def added(self, rowid: int, paper: Paper) -> None: ...


@dataclass
class WriteResult:
    """What one write transaction changed, in FAISS terms."""

    removed_rowids: list[int] = field(default_factory=list)
    added_rowids: list[int] = field(default_factory=list)
    added_vectors: list[np.ndarray] = field(default_factory=list)
    added_papers: list[Paper] = field(default_factory=list)  # as stored, in `added_rowids`' order
    deleted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    sink: RowSink | None = field(default=None, repr=False, compare=False)

    def remove(self, rowid: int) -> None:
        self.removed_rowids.append(rowid)
        if self.sink is not None:
            self.sink.removed(rowid)

    def add(self, rowid: int, paper: Paper, vector: np.ndarray) -> None:
        self.added_rowids.append(rowid)
        self.added_vectors.append(vector)
        self.added_papers.append(paper)
        if self.sink is not None:
            self.sink.added(rowid, paper)


@dataclass
class Upsert:
    """A paper to store; `vector` None keeps the stored embedding (metadata-only change)."""

    paper: Paper
    content_hash: str
    vector: np.ndarray | None


class RecordWrites:
    """The write half of IndexStore (which supplies `_db`, `_fetch`, `_rows_in`, `_meta_*`, `generation` and
    `resolve_ids`, `require_writable`)."""

    def write(self, upserts: list[Upsert], delete_ids: Iterable[str] = (),
              with_vectors: Callable[[WriteResult, int], VectorIndex] | None = None,
              rows: RowSink | None = None) -> WriteResult:
        """Apply upserts and deletes in one transaction and bump the generation.

        `with_vectors(result, generation)` returns the vector index for the new generation when a new
        snapshot is due (else None: readers catch the older one up); its file is then written and
        its digest recorded before the transaction commits, so a full disk (or any failure) there
        rolls the whole write back: the index stays exactly as it was. `rows` is told of each row
        removed or inserted as it is written (the lexical index queues its documents there, so tantivy
        analyses them on its own thread while SQLite works); raising there rolls back too.
        """
        self.require_writable()
        result = WriteResult(sink=rows)
        dimension = self.model.dimension
        with self._transaction_lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            next_rowid = self._next_rowid()
            stored = self._stored_rowids([item.paper.paper_id for item in upserts])
            for item in upserts:
                next_rowid = self._upsert(item, dimension, result, next_rowid, stored)
            delete_ids = list(delete_ids)
            stored_ids = self.resolve_ids(delete_ids)  # a DOI or arXiv id deletes the paper holding it
            for pid in delete_ids:
                row = self._fetch("SELECT rowid FROM papers WHERE paper_id=?", (stored_ids.get(pid),))
                if not row:
                    result.missing.append(pid)
                    continue
                self._db.execute("DELETE FROM papers WHERE rowid=?", (row[0][0],))
                identifiers.remove(self._db, stored_ids[pid])
                result.remove(row[0][0])
                result.deleted.append(pid)
            generation = self.generation + 1
            changes = (int(self._meta_get("vectors_changes") or 0)
                       + len(result.added_rowids) + len(result.removed_rowids))
            self._meta_set_many({"generation": str(generation), "last_rowid": str(next_rowid - 1),
                                 "vectors_changes": str(changes)})
            snapshot = with_vectors(result, generation) if with_vectors is not None else None
            if snapshot is not None:
                # Readers of the old generation never look at the new file; if the commit fails
                # after it, the file is a leftover of another generation, removed by the next writer.
                record = vector_file.write(self.directory, snapshot, generation)
                self._meta_set_many({"vectors_digest": record, "vectors_changes": "0"})
        if snapshot is not None:
            vector_file.remove_other_generations(self.directory, generation)
        return result

    def _next_rowid(self) -> int:
        """The first never-used row id. SQLite alone would hand out max(rowid) + 1 again after the
        highest row is deleted; a reader's older FAISS snapshot would then map it to the wrong paper."""
        top = self._fetch("SELECT max(rowid) FROM papers")[0][0] or 0
        return max(top, int(self._meta_get("last_rowid") or 0)) + 1

    def _stored_rowids(self, paper_ids: list[str]) -> dict[str, int]:
        """paper_id -> rowid of those stored: one query per batch rather than one per paper."""
        return {pid: rowid for pid, rowid in self._rows_in("SELECT paper_id, rowid FROM papers "
                                                           "WHERE paper_id IN ({marks})", set(paper_ids))}

    def _upsert(self, item: Upsert, dimension: int, result: WriteResult, next_rowid: int,
                stored: dict[str, int]) -> int:
        """Store one paper (`stored` maps ids to their rowids, kept up to date); returns the next free row id."""
        paper = item.paper
        fields = (*paper_fields(paper), item.content_hash)
        rowid = stored.get(paper.paper_id)
        if item.vector is None:
            if rowid is None:
                raise ValueError(f"paper {paper.paper_id!r} is new and needs a vector")
            self._db.execute("UPDATE papers SET title=?, abstract=?, authors=?, year=?, categories=?, "
                             "venue=?, url=?, doi=?, extra=?, content_hash=?, indexed_at=? WHERE rowid=?",
                             (*fields, int(time.time()), rowid))
            identifiers.replace(self._db, paper)
            return next_rowid
        vector = np.ascontiguousarray(item.vector, dtype=np.float32)
        if vector.shape != (dimension,):
            raise ValueError(f"vector for {paper.paper_id!r} has shape {vector.shape}, expected ({dimension},)")
        if rowid is not None:
            # A changed text gets a new rowid, so the FAISS id never points at a stale vector.
            self._db.execute("DELETE FROM papers WHERE rowid=?", (rowid,))
            result.remove(rowid)
        self._db.execute(
            "INSERT INTO papers(rowid, paper_id, title, abstract, authors, year, categories, venue, url, doi, "
            "extra, content_hash, embedding, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (next_rowid, paper.paper_id, *fields, codec.vector_blob(vector), int(time.time())))
        # A paper new to the index has no keys to drop: a bulk build skips one DELETE a paper.
        (identifiers.add if rowid is None else identifiers.replace)(self._db, paper)
        result.add(next_rowid, paper, vector)
        stored[paper.paper_id] = next_rowid
        return next_rowid + 1
