"""Distributed indexing on Ray: read shards and embed on a cluster, write here, in the same format.

    input files ──(Ray Data: one streaming read task per file)──> blocks of parsed records
                ──(actor pool of model replicas, CPU or GPU)────> + content hash + vector
                ──(driver: iter_batches, in input order)────────> IndexWriter.upsert, batch by batch

Only the embedding leaves this machine. The driver first makes the run's IngestPlan (rejections,
which record of a repeated id wins) as `index_files` does, the read tasks follow it, and the
driver writes through the same `IndexWriter` (same SQLite transactions, same FAISS build, same
batch boundaries), so the index directory and the report are the ones the single-process path
makes. Crashes:

- a replica lost mid-run: Ray Data restarts the actor and retries its batch (its output was never
  delivered, so nothing is lost or doubled; the upsert is idempotent anyway);
- the driver lost mid-run: every batch written before is committed; a rerun ships the stored
  (paper id, content hash) keys to the replicas, which skip those papers instead of re-embedding.

Ray is an optional extra (`pip install 'papersearch[ray]'`); nothing here imports it at module
load, so the core install never needs it. Input paths must be readable at the same path on the
nodes that run the read tasks (a shared filesystem), as with `ray.data.read_json`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.build import WRITE_BATCH, IndexReport, IndexWriter
from indexer.ingest import Parsed, Rejection, read_papers
from indexer.plan import Duplicate, IngestPlan
from indexer.store import IndexStore
from models.config import Settings
from models.embedder import Embedder
from models.errors import IndexModelMismatch, InvalidInput
from models.paper import Paper, content_hash, embed_text

RAY_EXTRA_HINT = "pip install 'papersearch[ray]'  (or: pip install 'ray[data,serve]')"
# Records per block from the readers and per replica call: the driver's write batch, so blocks
# map onto write transactions one to one.
READ_BLOCK = WRITE_BATCH
# Papers per model call on a GPU replica at the least (the CPU default, Settings.batch_size, is 8).
GPU_BATCH_SIZE = 64
# Ray Data merges what a task yields into blocks up to this size (and slices bigger ones): about
# 150-250 records of abstracts, or 100 records with their vectors.
READ_TARGET_BYTES = 256 * 1024
# CPUs of the Ray instance started when no address is given: small, because the tests and this
# project's development machine share two cores.
LOCAL_CPUS = 2


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run: `address` None means Settings.ray_address, else a local Ray."""

    address: str | None = None
    replicas: int | None = None  # model replicas; None: one per GPU, else one per `cpus_per_replica`
    cpus_per_replica: float = 1.0
    use_gpu: bool | None = None  # None: use GPUs when the cluster has them
    local_cpus: int = LOCAL_CPUS
    quiet: bool = True


@dataclass
class RayRun:
    """What the cluster looked like for a run (printed by the CLI, recorded in benchmarks)."""

    address: str
    replicas: int
    gpus_per_replica: int
    cluster_cpus: float
    cluster_gpus: float


# --- connecting -----------------------------------------------------------------------------------


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise InvalidInput(f"--ray needs Ray, which is not installed. Run: {RAY_EXTRA_HINT}") from exc
    return ray


def connect(options: RayOptions, settings: Settings) -> tuple[str, bool]:
    """Join the cluster, or start a local Ray. Returns (address shown to users, started here)."""
    ray = _ray()
    if ray.is_initialized():  # a caller (a test session, a notebook) already connected
        return "existing connection", False
    code_root = Path(__file__).resolve().parent.parent
    address = options.address or settings.ray_address
    logging_level = logging.WARNING if options.quiet else logging.INFO
    if address:
        # Ship this checkout's packages to the workers (api and search for `shards serve`); the
        # cluster supplies the heavy dependencies (torch, sentence-transformers, the model package).
        runtime_env = {"py_modules": [str(code_root / package) for package in ("models", "indexer", "search", "api")]}
        ray.init(address=address, runtime_env=runtime_env, logging_level=logging_level,
                 log_to_driver=not options.quiet)
        return address, True
    # address="local" always starts a new instance, even when RAY_ADDRESS points elsewhere.
    ray.init(address="local", num_cpus=options.local_cpus, include_dashboard=False,
             object_store_memory=512 * 1024 * 1024, logging_level=logging_level,
             log_to_driver=not options.quiet, runtime_env={"env_vars": {"PYTHONPATH": str(code_root)}})
    return f"local ({options.local_cpus} CPUs)", True


def _plan(options: RayOptions, address: str) -> RayRun:
    ray = _ray()
    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    use_gpu = gpus >= 1 if options.use_gpu is None else options.use_gpu
    if use_gpu and gpus < 1:
        raise InvalidInput("GPU replicas were asked for (use_gpu=True), but the Ray cluster has no GPUs.")
    if options.replicas is not None and options.replicas < 1:
        raise InvalidInput(f"--replicas must be at least 1, got {options.replicas}.")
    default = int(gpus) if use_gpu else max(1, int(cpus // options.cpus_per_replica))
    return RayRun(address, options.replicas or default, 1 if use_gpu else 0, cpus, gpus)


# --- the stages (these run on Ray workers) --------------------------------------------------------


def _key(paper_id: str, digest: str) -> int:
    """64-bit key of (paper id, content hash): a paper whose key is stored needs no new vector."""
    return int.from_bytes(hashlib.blake2b(f"{paper_id}\0{digest}".encode(), digest_size=8).digest(), "little")


def stored_keys(store: IndexStore) -> np.ndarray:
    """Sorted keys of every stored paper (8 bytes a paper: 1.6 GB at 200M, 0 on a fresh index)."""
    parts = [np.fromiter((_key(pid, digest) for pid, digest in chunk), dtype=np.uint64, count=len(chunk))
             for chunk in store.iter_content_hashes()]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)


def read_shard(batch: dict[str, np.ndarray], fmt: str | None = None,
               winners: list | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Ray Data generator stage: stream each input file as blocks of READ_BLOCK records.

    Each file follows the run's IngestPlan, so the replicas never embed a record that a later one
    with the same id replaces. `winners` holds the plan's repeated ids, as a nested object ref
    (shipped once through the object store) or, outside Ray, as the dict itself.
    """
    value = winners[0] if winners else {}
    plan = IngestPlan(winners=value if isinstance(value, dict) else _ray().get(value))
    ordinals = batch.get("ordinal", range(len(batch["path"])))
    for path, ordinal in zip(batch["path"], ordinals, strict=True):
        rows: list[tuple[str, str, str, str]] = []
        for item in plan.follow(int(ordinal), read_papers(str(path), fmt)):
            rows.append(_row(item))
            if len(rows) >= READ_BLOCK:
                yield _columns(rows)
                rows = []
        if rows:
            yield _columns(rows)


def _row(item: Parsed | Rejection | Duplicate) -> tuple[str, str, str, str]:
    """(paper JSON, location, rejection reason, duplicate's winner): only a Parsed row has a paper."""
    if isinstance(item, Rejection):
        return "", item.location, item.reason, ""
    if isinstance(item, Duplicate):
        return "", item.location, "", json.dumps([item.paper_id, item.winner], ensure_ascii=False)
    return json.dumps(item.paper.to_dict(), ensure_ascii=False, default=str), item.location, "", ""


def _item(batch: dict[str, np.ndarray], row: int) -> Parsed | Rejection | Duplicate:
    """The plan item that `_row` flattened."""
    location = str(batch["location"][row])
    if batch["paper"][row]:
        return Parsed(location, paper_from_json(batch["paper"][row]))
    if batch["duplicate"][row]:
        paper_id, winner = json.loads(batch["duplicate"][row])
        return Duplicate(location, paper_id, winner)
    return Rejection(location, str(batch["rejection"][row]))


def _columns(rows: list[tuple[str, str, str, str]]) -> dict[str, np.ndarray]:
    papers, locations, rejections, duplicates = zip(*rows, strict=True)
    return {"paper": np.array(papers, dtype=object), "location": np.array(locations, dtype=object),
            "rejection": np.array(rejections, dtype=object), "duplicate": np.array(duplicates, dtype=object)}


def paper_from_json(text: str) -> Paper:
    """The Paper that `read_shard` serialised (JSON keeps the stage's Arrow schema fixed)."""
    data = json.loads(text)
    return Paper(paper_id=data["paper_id"], title=data["title"], abstract=data["abstract"],
                 authors=tuple(data["authors"]), year=data["year"], categories=tuple(data["categories"]),
                 venue=data["venue"], url=data["url"], doi=data["doi"], extra=data["extra"])


class EmbedReplica:
    """One model replica in the Ray Data actor pool: adds each record's content hash and vector."""

    def __init__(self, model: str, fingerprint: str, known: list | None, threads: int, batch_size: int,
                 device: str):
        self.embedder = Embedder(model, threads=threads, batch_size=batch_size, device=device)
        self.expected_fingerprint = fingerprint
        self.known = _ray().get(known[0]) if known else np.zeros(0, np.uint64)  # the ref is nested: fetch once

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.embedder.fingerprint != self.expected_fingerprint:
            # Raised here, not in __init__, so Ray reports it as this stage's error instead of
            # restarting the actor forever.
            raise IndexModelMismatch(
                f"Model {self.embedder.name!r} on this Ray worker has fingerprint {self.embedder.fingerprint}, "
                f"the index expects {self.expected_fingerprint}: install the same model files on every node.")
        count = len(batch["paper"])
        digests = np.full(count, "", dtype=object)
        needed: list[int] = []
        texts: list[str] = []
        for row, text in enumerate(batch["paper"]):
            if not text:
                continue  # a rejection or a skipped duplicate passes through to the driver
            paper = paper_from_json(text)
            digests[row] = content_hash(paper, self.embedder.fingerprint)
            if not self._is_known(_key(paper.paper_id, digests[row])):
                needed.append(row)
                texts.append(embed_text(paper))
        matrix = np.zeros((count, self.embedder.dimension), dtype=np.float32)
        if texts:
            matrix[needed] = self.embedder.encode(texts, "document")
        embedded = np.zeros(count, dtype=bool)
        embedded[needed] = True
        return {**batch, "content_hash": digests, "vector": matrix, "embedded": embedded}

    def _is_known(self, key: int) -> bool:
        position = np.searchsorted(self.known, np.uint64(key))
        return bool(position < len(self.known) and self.known[position] == np.uint64(key))


# --- the driver ---------------------------------------------------------------------------------


def index_files_ray(settings: Settings, paths: list[str | Path], fmt: str | None = None,
                    options: RayOptions = RayOptions(), strict: bool = False,
                    progress: Callable[[int], None] | None = None,
                    on_reject: Callable[[Rejection], None] | None = None,
                    embedder: Embedder | None = None, replica: type = EmbedReplica) -> tuple[IndexReport, RayRun]:
    """Index input files into `settings.index_dir`, embedding on Ray. Returns (report, run).

    `embedder` is only the driver's view of the model (name, fingerprint, dimension); it encodes
    nothing unless a record changed between the replica's check and the write. `replica` lets a
    test substitute a replica class (for example one that crashes once).
    """
    files = [Path(p).resolve() for p in paths]
    for path in files:
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file.")
    # The same plan as index_files, made here in one read pass: the read tasks follow it.
    plan = IngestPlan.scan(files, fmt)
    if strict:
        plan.refuse_rejections()
    ray = _ray()
    report = IndexReport()
    started = time.perf_counter()
    with IndexWriter(settings, embedder=embedder) as writer:
        address, started_here = connect(options, settings)
        try:
            run = _plan(options, address)
            dataset = _pipeline(ray, files, fmt, plan, writer, settings, options, run, replica)
            _write_stream(writer, dataset, report, progress, on_reject)
        finally:
            if started_here:
                ray.shutdown()
    report.seconds = time.perf_counter() - started
    return report, run


def _pipeline(ray, files: list[Path], fmt: str | None, plan: IngestPlan, writer: IndexWriter, settings: Settings,
              options: RayOptions, run: RayRun, replica: type):
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # input order in, input order out: same rowids
    # Small blocks: replicas share one file's records and the driver commits each write batch as it
    # arrives, instead of when a 128 MiB default block fills up. (Ray Data's repartition would cut
    # exact 256-row blocks, but its tasks need a CPU that a full actor pool never frees.)
    context.target_max_block_size = READ_TARGET_BYTES
    context.enable_progress_bars = not options.quiet
    if options.quiet:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    model = writer.embedder.info
    known = stored_keys(writer.store)
    known_ref = [ray.put(known)] if len(known) else None  # shipped once through the object store
    threads = 0 if run.gpus_per_replica else max(1, int(options.cpus_per_replica))
    winners_ref = [ray.put(plan.winners)] if plan.winners else None
    shards = ray.data.from_items([{"path": str(p), "ordinal": n} for n, p in enumerate(files)],
                                 override_num_blocks=len(files))
    # Readers take no CPU slot so they never wait behind the replicas on a small cluster; their
    # number is capped instead.
    records = shards.map_batches(read_shard, batch_size=1, fn_kwargs={"fmt": fmt, "winners": winners_ref}, num_cpus=0,
                                 compute=ray.data.TaskPoolStrategy(size=max(1, min(len(files), run.replicas))))
    return records.map_batches(
        replica, batch_size=READ_BLOCK, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=run.replicas),
        num_cpus=0 if run.gpus_per_replica else options.cpus_per_replica, num_gpus=run.gpus_per_replica,
        fn_constructor_kwargs={"model": model.name, "fingerprint": model.fingerprint, "known": known_ref,
                               "threads": threads,
                               # a GPU is starved by the CPU's small default batches
                               "batch_size": max(settings.batch_size, GPU_BATCH_SIZE) if run.gpus_per_replica
                               else settings.batch_size,
                               "device": "cuda" if run.gpus_per_replica else "cpu"})


def _write_stream(writer: IndexWriter, dataset, report: IndexReport, progress, on_reject) -> None:
    """Write replica output in input order, WRITE_BATCH papers per transaction, as it arrives."""
    papers: list[Paper] = []
    vectors: dict[str, np.ndarray] = {}

    def write() -> None:
        writer.upsert(papers, report, precomputed=vectors)
        if progress:
            progress(len(papers))
        papers.clear()
        vectors.clear()

    # prefetch_batches=0: with prefetching, a finished block is handed over only once the next one
    # is ready too, which delays its commit; the replicas run ahead of the driver either way.
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
        for row in range(len(batch["paper"])):
            paper = report.account(_item(batch, row), on_reject)
            if paper is None:
                continue
            papers.append(paper)
            if batch["embedded"][row]:
                vectors[str(batch["content_hash"][row])] = np.array(batch["vector"][row], dtype=np.float32)
            if len(papers) >= WRITE_BATCH:
                write()
    if papers:
        write()
