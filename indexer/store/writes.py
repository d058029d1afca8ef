"""Writing records: upserts and deletes in one transaction that bumps the generation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from indexer.store import codec, identifiers, vector_file
from indexer.store.rows import paper_fields
from indexer.vectors.base import VectorIndex
from models.paper import Paper


@dataclass
class WriteResult:
    """What one write transaction changed, in FAISS terms."""

    removed_rowids: list[int] = field(default_factory=list)
    added_rowids: list[int] = field(default_factory=list)
    added_vectors: list[np.ndarray] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class Upsert:
    """A paper to store; `vector` None keeps the stored embedding (metadata-only change)."""

    paper: Paper
    content_hash: str
    vector: np.ndarray | None


class RecordWrites:
    """The write half of IndexStore (which supplies `_db`, `_fetch`, `_meta_*`, `generation` and
    `resolve_ids`, `require_writable`)."""

    def write(self, upserts: list[Upsert], delete_ids: Iterable[str] = (),
              with_vectors: Callable[[WriteResult, int], VectorIndex] | None = None) -> WriteResult:
        """Apply upserts and deletes in one transaction and bump the generation.

        `with_vectors(result, generation)` returns the vector index for the new generation when a new
        snapshot is due (else None: readers catch the older one up); its file is then written and
        its digest recorded before the transaction commits, so a full disk (or any failure) there
        rolls the whole write back: the index stays exactly as it was.
        """
        self.require_writable()
        result = WriteResult()
        dimension = self.model.dimension
        with self._transaction_lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            next_rowid = self._next_rowid()
            for item in upserts:
                next_rowid = self._upsert(item, dimension, result, next_rowid)
            delete_ids = list(delete_ids)
            stored_ids = self.resolve_ids(delete_ids)  # a DOI or arXiv id deletes the paper holding it
            for pid in delete_ids:
                row = self._fetch("SELECT rowid FROM papers WHERE paper_id=?", (stored_ids.get(pid),))
                if not row:
                    result.missing.append(pid)
                    continue
                self._db.execute("DELETE FROM papers WHERE rowid=?", (row[0][0],))
                identifiers.remove(self._db, stored_ids[pid])
                result.removed_rowids.append(row[0][0])
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

    def _upsert(self, item: Upsert, dimension: int, result: WriteResult, next_rowid: int) -> int:
        """Store one paper; returns the next free row id."""
        paper = item.paper
        fields = (*paper_fields(paper), item.content_hash)
        row = self._fetch("SELECT rowid FROM papers WHERE paper_id=?", (paper.paper_id,))
        if item.vector is None:
            if not row:
                raise ValueError(f"paper {paper.paper_id!r} is new and needs a vector")
            self._db.execute("UPDATE papers SET title=?, abstract=?, authors=?, year=?, categories=?, "
                             "venue=?, url=?, doi=?, extra=?, content_hash=?, indexed_at=? WHERE rowid=?",
                             (*fields, int(time.time()), row[0][0]))
            identifiers.replace(self._db, paper)
            return next_rowid
        vector = np.ascontiguousarray(item.vector, dtype=np.float32)
        if vector.shape != (dimension,):
            raise ValueError(f"vector for {paper.paper_id!r} has shape {vector.shape}, expected ({dimension},)")
        if row:
            # A changed text gets a new rowid, so the FAISS id never points at a stale vector.
            self._db.execute("DELETE FROM papers WHERE rowid=?", (row[0][0],))
            result.removed_rowids.append(row[0][0])
        self._db.execute(
            "INSERT INTO papers(rowid, paper_id, title, abstract, authors, year, categories, venue, url, doi, "
            "extra, content_hash, embedding, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (next_rowid, paper.paper_id, *fields, codec.vector_blob(vector), int(time.time())))
        identifiers.replace(self._db, paper)
        result.added_rowids.append(next_rowid)
        result.added_vectors.append(vector)
        return next_rowid + 1
