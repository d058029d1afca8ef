"""Shared fixtures: the real bundled model (loaded once), the sample corpus and indexes built from it."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from indexer.store import layout

os.environ["HF_HUB_OFFLINE"] = "1"  # an accidental download must fail loudly

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "indexer" / "sample" / "papers.jsonl"
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_report_header(config):
    import sqlite3

    import faiss
    import numpy

    versions = [f"faiss {faiss.__version__}", f"numpy {numpy.__version__}", f"sqlite {sqlite3.sqlite_version}"]
    try:
        from importlib.metadata import version

        versions.insert(0, f"sentence-transformers {version('sentence-transformers')}")
    except Exception:
        pass
    return "papersearch: " + ", ".join(versions)


def shared_sample(name: str) -> Path:
    """A real record file under ../shared/samples (PROVENANCE.md there), or skip the test without it."""
    path = SHARED_DATA.parent / "samples" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (a fresh clone has no ../shared/samples)")
    return path


def shared_dataset(name: str) -> Path:
    """A data set under ../shared/data, or skip the test when this checkout has none."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (a fresh clone has no ../shared/data)")
    return path


@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2, loaded once per run."""
    from models.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def sample_index_dir(tmp_path_factory, embedder) -> Path:
    """An index of the 24 sample papers, built once per run. Tests must not write to it."""
    from indexer.build import index_file
    from models.config import Settings

    directory = tmp_path_factory.mktemp("sample-index")
    index_file(Settings(index_dir=directory), SAMPLE, embedder=embedder)
    return directory


def copy_index(source: Path, target: Path) -> Path:
    """A copy of the index in `source` at `target` (without the write lock file)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    return target


@pytest.fixture
def fresh_index_dir(tmp_path, sample_index_dir) -> Path:
    """A private copy of the sample index that a test may change."""
    return copy_index(sample_index_dir, tmp_path / "index")


@pytest.fixture(scope="session")
def hnsw_sample_dir(tmp_path_factory, sample_index_dir) -> Path:
    """The sample index with an HNSW vector index, which is kept in a FAISS file (a flat one is
    built from SQLite on open instead): for tests of that file. Tests must not write to it."""
    from indexer.check import repair_index

    directory = copy_index(sample_index_dir, tmp_path_factory.mktemp("hnsw-index") / "index")
    assert repair_index(directory, index_type="hnsw").ok  # re-embeds nothing
    return directory


@pytest.fixture
def hnsw_index_dir(tmp_path, hnsw_sample_dir) -> Path:
    """A private copy of `hnsw_sample_dir` that a test may change."""
    return copy_index(hnsw_sample_dir, tmp_path / "hnsw-index")


@pytest.fixture(scope="session")
def sample_engine(sample_index_dir, embedder):
    """A SearchEngine over the shared sample index."""
    from models.config import Settings
    from search.engine import SearchEngine

    engine = SearchEngine.open(Settings(index_dir=sample_index_dir), encoder=embedder)
    yield engine
    engine.close()


# --- Ray and SciFact-subset fixtures, shared by test_distributed.py and test_shards.py --------------
# (one definition, so the session has exactly one local Ray)

SCIFACT_SUBSET = 300  # SciFact abstracts: two write batches, about 20 s of embedding per path here


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """One local Ray for the session (2 CPUs); index_files_ray reuses it instead of starting its own."""
    ray = pytest.importorskip("ray")
    crash_dir = tmp_path_factory.mktemp("ray-crash")
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024 * 1024,
             log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "PAPERSEARCH_TEST_CRASH_DIR": str(crash_dir)}})
    yield crash_dir
    ray.shutdown()


@pytest.fixture(scope="session")
def scifact_subset(tmp_path_factory) -> Path:
    """The first SCIFACT_SUBSET SciFact abstracts as a BEIR corpus file."""
    corpus = shared_dataset("scifact") / "corpus.jsonl.gz"
    target = tmp_path_factory.mktemp("scifact") / "corpus-subset.jsonl"
    with gzip.open(corpus, "rt", encoding="utf-8") as source, target.open("w", encoding="utf-8") as out:
        for number, line in enumerate(source):
            if number >= SCIFACT_SUBSET:
                break
            out.write(line)
    return target


@pytest.fixture(scope="session")
def scifact_reference(tmp_path_factory, scifact_subset, embedder) -> Path:
    """The single-process index of the subset: what the Ray path must reproduce."""
    from indexer.build import index_file
    from models.config import Settings

    directory = tmp_path_factory.mktemp("scifact-single")
    index_file(Settings(index_dir=directory), scifact_subset, embedder=embedder)
    return directory


