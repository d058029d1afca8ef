"""Reading input files: every format, every kind of bad record, streaming."""

from __future__ import annotations

import gzip
import json

import pytest

from indexer.ingest import Parsed, Rejection, detect_format, read_papers, to_paper
from models.errors import InvalidInput, UnknownFormat
from tests.conftest import SAMPLE


def _write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_sample_corpus_reads_all_24_papers():
    items = list(read_papers(SAMPLE))
    assert len(items) == 24
    assert all(isinstance(i, Parsed) for i in items)
    ocr = next(i.paper for i in items if i.paper.paper_id == "seed-03")
    assert ocr.title.startswith("PP-OCRv3")
    assert ocr.year == 2022 and ocr.categories == ("cs.CV",)
    assert ocr.extra["has_code"] is True  # unknown fields are kept


def test_formats_are_detected(tmp_path):
    beir = _write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "title": "T", "text": "body"}])
    arxiv = _write_jsonl(tmp_path / "arxiv.json", [{"id": "0704.0001", "title": "T", "abstract": "A",
                                                    "authors": "A. One, B. Two and C. Three",
                                                    "categories": "hep-ph math.CO", "update_date": "2008-11-13",
                                                    "versions": [{"version": "v1",
                                                                  "created": "Mon, 2 Apr 2007 19:18:42 GMT"}]}])
    csv_file = tmp_path / "papers.csv"
    csv_file.write_text("id,title,abstract,authors,year,categories\np1,Title,Abs,\"A, B and C\",2020,cs.CV cs.LG\n")
    assert detect_format(beir) == "beir"
    assert detect_format(arxiv) == "arxiv"
    assert detect_format(csv_file) == "csv"

    (b,) = read_papers(beir)
    assert (b.paper.paper_id, b.paper.abstract) == ("d1", "body")
    (a,) = read_papers(arxiv)
    assert a.paper.authors == ("A. One", "B. Two", "C. Three")
    assert a.paper.categories == ("hep-ph", "math.CO")
    assert a.paper.year == 2007
    assert a.paper.extra["update_date"] == "2008-11-13"
    (c,) = read_papers(csv_file)
    assert c.paper.authors == ("A", "B", "C") and c.paper.year == 2020
    assert c.paper.categories == ("cs.CV", "cs.LG")


def test_gzip_is_read_by_content(tmp_path):
    path = tmp_path / "papers.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps({"id": "g1", "title": "Gzipped"}) + "\n")
    assert [i.paper.paper_id for i in read_papers(path)] == ["g1"]


@pytest.mark.parametrize("line, reason", [
    ('{"title": "no id"}', "missing id"),
    ('{"id": "x1", "title": "   "}', "empty title"),
    ('{"id": "x2"}', "missing title"),
    ('{"id": "x3", "title": 42}', "'title' must be a string"),
    ('{"id": "x4", "title": "T", "year": "soon"}', "'year' must be an integer"),
    ('{"id": "x5", "title": "T", "authors": {"a": 1}}', "'authors' must be a list or a string"),
    ('{"id": "x6", "title": "T"', "malformed JSON"),
    ('[1, 2]', "expected a JSON object"),
])
def test_each_bad_record_is_rejected_with_file_and_line(tmp_path, line, reason):
    path = _write_jsonl(tmp_path / "bad.jsonl", [{"id": "ok", "title": "Fine"}, line])
    items = list(read_papers(path, "jsonl"))
    assert isinstance(items[0], Parsed)
    assert isinstance(items[1], Rejection)
    assert str(items[1]).startswith(f"{path}:2: ")
    assert reason in items[1].reason


def test_undecodable_line_and_truncated_gzip(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"id": "a", "title": "A"}\n{"id": "b", "title": "\xff\xfe"}\n')
    items = list(read_papers(path))
    assert isinstance(items[1], Rejection) and "UTF-8" in items[1].reason

    whole = gzip.compress(b"".join(json.dumps({"id": f"p{i}", "title": f"T{i} " * 50}).encode() + b"\n"
                                   for i in range(200)))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    items = list(read_papers(cut, "jsonl"))
    assert isinstance(items[-1], Rejection) and "truncated" in items[-1].reason
    assert all(isinstance(i, Parsed) for i in items[:-1]) and len(items) > 1


def test_numbers_and_lists_are_normalised():
    paper = to_paper({"id": 12345, "title": "T", "year": "2021", "categories": ["cs.CV", "cs.LG"]})
    assert paper.paper_id == "12345" and paper.year == 2021
    with pytest.raises(InvalidInput, match="bool"):
        to_paper({"id": "x", "title": "T", "year": True})


def test_unknown_format_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some text\n")
    with pytest.raises(UnknownFormat, match="--format"):
        list(read_papers(path))
    with pytest.raises(InvalidInput, match="no such file"):
        list(read_papers(tmp_path / "missing.jsonl"))


def test_reading_is_streaming(tmp_path):
    """Memory stays flat while reading a file many times larger than the peak allocation."""
    import tracemalloc

    path = tmp_path / "big.jsonl"
    abstract = "word " * 400
    with path.open("w") as handle:
        for i in range(10_000):
            handle.write(json.dumps({"id": f"p{i}", "title": "T", "abstract": abstract}) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    count = sum(1 for _ in read_papers(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 10_000
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte file: the reader is not streaming"


def test_non_finite_numbers_become_null_anywhere_in_a_record(tmp_path):
    """NaN/Infinity (and 1e999, which reads as inf) are not JSON: an answer holding one cannot be encoded."""
    path = tmp_path / "nan.jsonl"
    path.write_text('{"id": "n1", "title": "T", "year": NaN, "score": NaN, "range": [Infinity, -Infinity, 1.5],'
                    ' "deep": {"x": {"y": 1e999}}}\n')
    (item,) = read_papers(path)
    assert item.paper.year is None
    assert item.paper.extra == {"score": None, "range": [None, None, 1.5], "deep": {"x": {"y": None}}}
    json.dumps(item.paper.to_dict(), allow_nan=False)


def test_the_decoder_is_the_same_for_files_and_for_dicts(tmp_path):
    """One decision per problem, whichever way a record comes in (file line or parsed HTTP body)."""
    from indexer.records import decode
    from models.paper import YEAR_MAX, YEAR_MIN

    records = [{"id": "s", "title": "lone \udc00 surrogate"}, {"id": "k", "title": "T", "note": {"\ud800": 1}},
               {"id": "y", "title": "T", "year": YEAR_MAX + 1}, {"id": "y0", "title": "T", "year": YEAR_MIN - 1},
               [1, 2], {"id": "ok", "title": "T", "year": YEAR_MIN, "authors": [["Curie", "Marie"]]}]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    from_file = [(type(i).__name__, getattr(i, "reason", None)) for i in read_papers(path)]
    from_dicts = [(type(i).__name__, getattr(i, "reason", None)) for i in (decode("-", r) for r in records)]
    assert from_file == from_dicts
    assert [kind for kind, _ in from_file] == ["Rejection"] * 5 + ["Parsed"]
    assert "lone surrogate" in from_file[0][1] and "'note'" in from_file[1][1]
    assert "out of range" in from_file[2][1] and "out of range" in from_file[3][1]
    assert from_file[4][1] == "expected a JSON object, got an array"
    assert to_paper(records[-1]).authors == ("Marie Curie",)
