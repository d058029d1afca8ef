"""The ingest plan: duplicate ids, --strict and rejections, decided once for a whole run.

The Ray path follows the same plan; tests/test_distributed.py checks that it gives the same index
and the same report as the single-process run here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.build import WRITE_BATCH, index_file, index_files
from indexer.plan import Duplicate, IngestPlan
from indexer.store import IndexStore
from models.config import Settings
from models.errors import InvalidInput

OBSOLETE = ("An obsolete first draft on coral reef bleaching", "An early text that the second file replaces")


class RecordingEncoder:
    """The real embedder, noting every text it is asked to encode (the count is what is tested).

    With `log`, each text is also appended to that file as a JSON line: a Ray replica runs in
    another process, so its texts come back that way.
    """

    def __init__(self, inner, log: Path | None = None):
        self._inner = inner
        self._log = log
        self.texts: list[str] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def encode(self, texts, role, batch_size=None):
        self.texts.extend(texts)
        if self._log is not None:
            with self._log.open("a", encoding="utf-8") as handle:
                handle.write("".join(json.dumps(text) + "\n" for text in texts))
        return self._inner.encode(texts, role, batch_size)


def write_run_files(folder: Path) -> tuple[Path, Path]:
    """Two input files of one run: 'dup' repeats more than WRITE_BATCH records apart within the
    first, 'cross' repeats across the files; each file also holds one record the decoder rejects."""
    first = [{"id": "dup", "title": OBSOLETE[0]}, {"id": "cross", "title": OBSOLETE[1]}]
    first += [{"id": f"p{i}", "title": f"Paper {i} on topic {i % 7}"} for i in range(WRITE_BATCH + 40)]
    first.insert(150, "not json")
    first.append({"id": "dup", "title": "Coral reef bleaching under marine heatwaves", "year": 2021})
    second = [{"id": f"q{i}", "title": f"Second file paper {i}"} for i in range(12)]
    second.insert(5, {"id": "cross", "title": "The final text about glacier ice cores"})
    second.append({"id": "no-title"})
    paths = folder / "first.jsonl", folder / "second.jsonl"
    for path, records in zip(paths, (first, second), strict=True):
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return paths


def test_the_plan_keeps_the_last_record_of_each_repeated_id(tmp_path):
    first, second = write_run_files(tmp_path)
    plan = IngestPlan.scan([first, second])
    assert plan.winners == {"dup": (0, f"{first}:{WRITE_BATCH + 44}"), "cross": (1, f"{second}:6")}
    assert [str(r) for r in plan.rejected] == [f"{first}:151: malformed JSON (Expecting value at column 1)",
                                               f"{second}:14: paper 'no-title': missing title and no abstract"]
    with pytest.raises(InvalidInput, match=r"(?s)first.jsonl:151: .*--strict: 2 record\(s\) rejected"):
        plan.refuse_rejections()
    assert IngestPlan.scan([second]).winners == {}  # within one file of its own, 'cross' is not repeated


def test_an_id_repeated_anywhere_in_a_run_is_embedded_once(tmp_path, embedder):
    first, second = write_run_files(tmp_path)
    encoder = RecordingEncoder(embedder)
    report = index_files(Settings(index_dir=tmp_path / "idx"), [first, second], embedder=encoder)
    assert not any(text.startswith(OBSOLETE) for text in encoder.texts)
    assert len(encoder.texts) == len(set(encoder.texts)) == report.embedded == report.indexed == WRITE_BATCH + 40 + 14
    assert report.duplicates == [str(Duplicate(f"{first}:1", "dup", f"{first}:{WRITE_BATCH + 44}")),
                                 str(Duplicate(f"{first}:2", "cross", f"{second}:6"))]
    assert "skipped, the last record with this id wins" in report.duplicates[0]
    assert (len(report.rejected), report.accepted, report.rejection) == (2, WRITE_BATCH + 40 + 16, "some")
    store = IndexStore.open(tmp_path / "idx")
    try:
        papers = store.get_papers(["dup", "cross"])
        assert papers["dup"].year == 2021 and papers["cross"].title.startswith("The final text")
    finally:
        store.close()


def test_strict_looks_at_every_file_of_the_run_before_writing(tmp_path, embedder):
    first, second = write_run_files(tmp_path)
    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps({"id": "c", "title": "Clean"}) + "\n")
    with pytest.raises(InvalidInput, match="--strict: 1 record"):
        index_files(Settings(index_dir=tmp_path / "idx"), [clean, second], strict=True, embedder=embedder)
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize("lines, state", [
    (['{"id": "a", "title": "A"}'], "none"),
    ([], "none"),
    (['{"id": "a", "title": "A"}', '{"id": "b"}'], "some"),
    (['{"id": "a", "title": "A"}', '{"id": "a", "title": "A again"}', "[1]"], "some"),
    (['{"id": "b"}', "not json"], "all"),
])
def test_the_report_tells_none_some_and_all_rejected(tmp_path, embedder, lines, state):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    report = index_file(Settings(index_dir=tmp_path / "idx"), path, embedder=embedder)
    assert report.rejection == state
    assert report.accepted + len(report.rejected) == len(lines)
