"""Many files at once: a directory or a glob of part files, each format told per file, deletes and
skips applied through the writer, one progress count across all of them (real model and index)."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from api.cli import main
from indexer.build import index_files
from indexer.ingest import Inputs, expand_inputs
from indexer.store import IndexStore
from models.config import Settings
from models.errors import InvalidInput
from tests.test_sources_json import sample_file

DELETE_CRYO = ('<?xml version="1.0"?>\n<PubmedArticleSet>\n<DeleteCitation>\n<PMID Version="1">11748933</PMID>\n'
               '<PMID Version="1">99999999</PMID>\n</DeleteCitation>\n</PubmedArticleSet>\n')


def _corpus(root):
    """A download-shaped tree: an OpenAlex snapshot part, PubMed, Crossref and arXiv files, and
    the files a snapshot puts beside its parts (which are not input)."""
    part = root / "openalex" / "works" / "updated_date=2024-01-01" / "part_000.gz"
    part.parent.mkdir(parents=True)
    part.write_bytes(gzip.compress(sample_file("openalex-works.jsonl").read_bytes()))
    (root / "openalex" / "works" / "manifest").write_text(json.dumps({"entries": []}))
    (root / "openalex" / "README.txt").write_text("not records")
    shutil.copy(sample_file("pubmed-sample.xml"), root / "pubmed25n0001.xml")
    shutil.copy(sample_file("crossref-work-single.json"), root / "crossref.json")
    shutil.copy(sample_file("arxiv-api-2026.atom"), root / "query.atom")
    return part


def test_a_directory_of_mixed_sources_in_one_run(tmp_path, fresh_index_dir, embedder):
    part = _corpus(tmp_path / "corpus")
    with Inputs([tmp_path / "corpus"]) as inputs:
        assert {path.name: inputs.formats[path] for path in inputs.files} == {
            "part_000.gz": "openalex", "pubmed25n0001.xml": "pubmed", "crossref.json": "crossref",
            "query.atom": "arxiv-atom"}
        assert inputs.estimate() == 9 + 2 + 1 + 10
    counted = []
    settings = Settings(index_dir=fresh_index_dir)
    report = index_files(settings, [tmp_path / "corpus"], progress=counted.append, embedder=embedder)
    assert report.indexed == 8 + 2 + 1 + 10 and not report.rejected
    assert report.skipped == {"paratext": 1} and "skipped 1 (paratext 1)" in report.summary()
    assert sum(counted) == report.indexed  # one progress count across every file
    # An update file withdraws a PMID: the delete goes through the writer, like `papersearch delete`.
    update = tmp_path / "pubmed25n1300.xml"
    update.write_text(DELETE_CRYO)
    again = index_files(settings, [tmp_path / "corpus", update], embedder=embedder)
    assert again.unchanged == report.indexed and again.deleted == 1 and again.delete_unknown == 1
    store = IndexStore.open(fresh_index_dir)
    try:
        assert store.count() == 24 + report.indexed - 1
        assert set(store.get_papers(["11748933", "11700088", "W2741809807"])) == {"11700088", "W2741809807"}
    finally:
        store.close()
    assert part.exists()


def test_a_glob_through_the_cli_with_counts_and_exit_status(tmp_path, fresh_index_dir, capsys):
    for name in ("openalex-snapshot-works-part_000.jsonl", "crossref-works-2019.json"):
        target = tmp_path / "parts" / f"{name}.gz"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(gzip.compress(sample_file(name).read_bytes()))
    status = main(["index", str(tmp_path / "parts" / "*.gz"), "--index", str(fresh_index_dir), "--json"])
    captured = capsys.readouterr()
    counts = json.loads(captured.out)
    assert status == 3  # the snapshot's untitled grants are rejected, the rest indexed
    assert counts["indexed"] == 11 + 3 and counts["rejected"] == 16 and len(counts["files"]) == 2
    assert captured.err.count("missing title") == 16


def test_inputs_that_name_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="is a directory with no input files"):
        expand_inputs([tmp_path / "empty"])
    with pytest.raises(InvalidInput, match="no file matches"):
        expand_inputs([str(tmp_path / "nothing-*.gz")])
