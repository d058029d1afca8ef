"""Split one index into N shard indexes by paper id, for serving an index larger than one machine.

Each shard is an ordinary index directory (same format, same model), holding the papers whose id
hashes to it. Records, content hashes and embeddings are copied, never re-embedded, so a shard
returns exactly the scores the whole index would. `search/shards.py` merges their answers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import ExitStack
from pathlib import Path

from indexer.lexical import LexicalWriter
from indexer.store import IndexStore, Upsert, WriteLock, layout
from models.errors import InvalidInput

# Papers copied per transaction.
COPY_BATCH = 2_000


def shard_of(paper_id: str, count: int) -> int:
    """The shard (0..count-1) a paper belongs to: a stable hash of its id, even across machines."""
    digest = hashlib.blake2b(paper_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % count


def split_index(source: str | Path, targets: list[str | Path]) -> list[int]:
    """Copy the index in `source` into len(targets) new shard indexes. Returns papers per shard."""
    source, targets = Path(source), [Path(t) for t in targets]
    if len(targets) < 2:
        raise InvalidInput(f"Splitting needs at least 2 shards, got {len(targets)}.")
    for target in targets:
        if layout.db_file(target).exists():
            raise InvalidInput(f"{target} already holds an index; split into new directories.")
    store = IndexStore.open(source)
    with ExitStack() as stack:
        stack.callback(store.close)
        for target in targets:
            stack.enter_context(WriteLock(target))
        shards = [IndexStore.create(t, store.model) for t in targets]
        for shard in shards:
            stack.callback(shard.close)
            shard.set_index_type(store.index_type)
        counts = [0] * len(targets)
        chunk: list[str] = []
        for _, paper in store.iter_papers():
            chunk.append(paper.paper_id)
            if len(chunk) >= COPY_BATCH:
                _route(store, chunk, counts, shards)
                chunk = []
        _route(store, chunk, counts, shards)
        for shard in shards:
            shard.save_vector_index(shard.build_vector_index(), shard.generation)
            shard.write_manifest()
            LexicalWriter(shard.directory, shard).open().close()  # builds the shard's BM25 index
            _copy_query_export(store, shard)
        return counts


def _copy_query_export(source: IndexStore, shard: IndexStore) -> None:
    """Give a shard the source's ONNX export, so routers and shards encode queries without torch.

    Hard links where the file system allows (the files never change in place), else copies.
    """
    folder = layout.onnx_export_dir(source.directory, source.model.fingerprint)
    if folder.is_dir():
        shutil.copytree(folder, layout.onnx_export_dir(shard.directory, source.model.fingerprint), dirs_exist_ok=True,
                        copy_function=_link_or_copy)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _route(store: IndexStore, paper_ids: list[str], counts: list[int], shards: list[IndexStore]) -> None:
    """Copy one chunk of papers, in the source's rowid order, each to its shard."""
    if not paper_ids:
        return
    records = store.stored_hashes(paper_ids)
    embeddings = store.embeddings_for(paper_ids)
    pending: list[list[Upsert]] = [[] for _ in shards]
    for pid in paper_ids:
        digest, paper = records[pid]
        number = shard_of(pid, len(shards))
        pending[number].append(Upsert(paper, digest, embeddings[pid]))
        counts[number] += 1
    for shard, upserts in zip(shards, pending, strict=True):
        if upserts:
            shard.write(upserts)
