"""The store's vector file: building the vector index from SQLite, loading the snapshot and
catching it up, saving a new one (indexer/store/vector_file.py has the file format and policy).

A mixin of IndexStore (which supplies `_db`, `_transaction_lock`, `_meta_*`, `directory`, `model`,
`generation`, `count`, `index_type` and the embedding reads), kept apart so the store's core stays small.
"""

from __future__ import annotations

from pathlib import Path

from indexer import vectors
from indexer.store import layout, schema, vector_file
from indexer.vectors.base import VectorIndex


class VectorFileStore:
    """The FAISS snapshot of a store: derived from SQLite, checksummed, allowed to lag."""

    def build_vector_index(self) -> VectorIndex:
        """A fresh vector index from the stored embeddings (no model needed)."""
        count = self.count()
        index = vectors.new_index(vectors.resolve_index_type(self.index_type, count), self.model.dimension, count)
        if index.needs_training and count:  # IVF-PQ: lists and codebooks come from a sample
            index.train(self.sample_embeddings(index.training_size(count)))
        for rowids, matrix in self.iter_embeddings():
            index.add(rowids, matrix)
        return index

    def load_vector_index(self, generation: int | None = None, current: VectorIndex | None = None,
                          in_place: bool = False) -> tuple[VectorIndex, int]:
        """The vector index for the current generation: `current` (an index of an older generation;
        changed in place only with `in_place`, when nothing can be searching it) or else the snapshot
        file, caught up from SQLite; else rebuilt from SQLite.

        Returns the index and the generation it reflects. Why the file was not used (missing,
        damaged) is left in `vector_file_problem`.
        """
        with self._transaction_lock, schema.damage_as_corrupt(self.directory), self._db:
            self._db.execute("BEGIN")  # one read snapshot: generation and rows agree
            generation = self.generation if generation is None else generation
            index = problem = None
            if current is not None:  # a refresh: only the rows changed since are read
                index = vector_file.catch_up(current if in_place else current.copy(), self.all_rowids(),
                                             self.embeddings_by_rowid)
            if index is None and self.keeps_vector_file:
                index, problem = self.vector_file_status(generation)
            if index is None:
                index = self.build_vector_index()
        self.vector_file_problem = problem
        return index, generation

    def vector_file_status(self, generation: int) -> tuple[VectorIndex | None, str | None]:
        """(index, None) when the snapshot file is the one saved and was caught up to `generation`,
        else (None, what is wrong). Call inside a read transaction so the rows are those of `generation`."""
        return vector_file.read_verified(self.directory, generation, self._meta_get("vectors_digest"),
                                         self.model.dimension, self.all_rowids, self.embeddings_by_rowid)

    @property
    def keeps_vector_file(self) -> bool:
        """Whether this index saves its vector index at all: not when the kind its index type and
        size pick is only the stored vectors (flat), which every open builds from SQLite instead."""
        return vector_file.kept_for(self.index_type, self.count())

    @property
    def snapshot_generation(self) -> int | None:
        """The generation the vector file was saved for (it may lag behind `generation`)."""
        return vector_file.snapshot_generation(self._meta_get("vectors_digest"))

    @property
    def changes_since_snapshot(self) -> int:
        """Rows added or removed since the vector file was saved: what a reader catches up."""
        return int(self._meta_get("vectors_changes") or 0)

    def snapshot_due(self) -> bool:
        """Whether the vector file should be saved anew: missing, or too far behind SQLite."""
        if not self.keeps_vector_file:
            return False
        saved_for = self.snapshot_generation
        if saved_for is None or not layout.vector_file(self.directory, saved_for).is_file():
            return True
        return vector_file.snapshot_due(self.changes_since_snapshot, self.count())

    def save_vector_index(self, index: VectorIndex, generation: int) -> None:
        """Persist `index` as the file for `generation`, record its checksum, drop older files.

        Only a process holding the write lock may call this. For a kind that is not saved
        (`keeps_vector_file`), it only drops vector files left from when the index was another kind.
        """
        self.require_writable()
        if not index.persisted:
            self.drop_vector_files()
            return
        record = vector_file.write(self.directory, index, generation)
        with self._transaction_lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._meta_set_many({"vectors_digest": record, "vectors_changes": "0"})
        vector_file.remove_other_generations(self.directory, generation)

    def drop_vector_files(self) -> None:
        """Forget the vector file: its record first, then every FAISS file (a kind that is not saved).

        Only a process holding the write lock may call this."""
        self.require_writable()
        with self._transaction_lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            vector_file.forget(self._db, self.directory)

    def leftover_files(self) -> list[Path]:
        """Files an interrupted write left behind: temp files and FAISS files of other generations
        (every FAISS file, for a kind that is not saved)."""
        if not self.keeps_vector_file:
            return sorted(p for p in self.directory.iterdir() if p.is_file() and (
                layout.is_temp_file(p) or layout.is_vector_file(p)))
        saved_for = self.snapshot_generation
        return vector_file.leftover_files(self.directory, self.generation if saved_for is None else saved_for)

    def remove_temp_files(self) -> None:
        """Delete temp files of writes that died mid-way. Only call while holding the write lock."""
        self.require_writable()
        for path in self.leftover_files():
            if layout.is_temp_file(path):
                path.unlink(missing_ok=True)
