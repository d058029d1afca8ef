"""Shared fixtures: the real bundled model (loaded once), the sample corpus and indexes built from it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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


@pytest.fixture
def fresh_index_dir(tmp_path, sample_index_dir) -> Path:
    """A private copy of the sample index that a test may change."""
    target = tmp_path / "index"
    shutil.copytree(sample_index_dir, target, ignore=shutil.ignore_patterns("write.lock"))
    return target


@pytest.fixture(scope="session")
def sample_engine(sample_index_dir, embedder):
    """A SearchEngine over the shared sample index."""
    from models.config import Settings
    from search.engine import SearchEngine

    engine = SearchEngine.open(Settings(index_dir=sample_index_dir), encoder=embedder)
    yield engine
    engine.close()
