"""Hostile and odd input, property-based (hypothesis): files through ingestion and the index, queries
through the engine. Every input gets a result or the specific error its flaw calls for; nothing crashes the
process or corrupts the index.

Example counts are modest where the model runs (an encode costs 10-50 ms); PAPERSEARCH_FUZZ_SCALE
multiplies them all. Each test prints how many examples it ran.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.build import index_file
from indexer.check import check_index
from indexer.ingest import Parsed, Rejection, read_papers
from indexer.store import IndexStore
from models.config import Settings
from models.errors import InvalidQuery, UnknownFormat
from models.paper import YEAR_MAX, YEAR_MIN
from models.query import MODES, Filters

SCALE = float(os.environ.get("PAPERSEARCH_FUZZ_SCALE", "1"))
COUNTS: dict[str, int] = {}


def fuzz_settings(examples: int):
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def counted(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


@pytest.fixture(autouse=True)
def report_examples(request, capsys):
    yield
    name = request.node.name
    if name in COUNTS:
        with capsys.disabled():
            print(f"\n[fuzz] {name}: {COUNTS[name]} examples")


# --- strategies ---------------------------------------------------------------------------------

NASTY = ["\ufeff", "\r\n", "\r", "\x00", "\x07", "\u202e", "\u200f", "\u200b", "مرحبا بالعالم", "שלום",
         "漢字テキスト", "한국어", "👩\u200d🔬🧬", "e\u0301\u0308", "\u0000\u0000", "\ud800", "\udfff", "\\", '"',
         "'; DROP TABLE papers; --", "NaN", "null", "\u2028", "\U0010ffff", "%", "_", "*", "NEAR(", "AND", "-"]

# Any code point, lone surrogates included (hypothesis leaves them out by default).
any_char = st.characters(exclude_categories=[])
text = st.one_of(
    st.text(any_char, max_size=40),
    st.lists(st.sampled_from(NASTY), max_size=6).map("".join),
    st.tuples(st.text(any_char, max_size=5), st.integers(2_000, 150_000)).map(lambda t: (t[0] + " word") * (t[1] // 5)),
)
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.integers(-10**30, 10**30), text)
junk = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                    max_leaves=8)
paper_id = st.one_of(st.sampled_from(["a", "b", "2101.00001", "dup"]), st.text(any_char, max_size=12),
                     st.integers(), junk)
# Mostly plausible records with odd text (these reach the model and the index) ...
plausible = st.builds(
    lambda known, unknown: {**unknown, **known},
    st.fixed_dictionaries(
        {"id": st.one_of(st.sampled_from(["a", "b", "2101.00001", "dup"]), st.text(any_char, min_size=1, max_size=12),
                         st.integers(0, 10**12)),
         "title": st.one_of(st.text(any_char, min_size=1, max_size=40), text)},
        optional={"abstract": text, "authors": st.one_of(st.lists(text, max_size=3), text),
                  "year": st.one_of(st.integers(1000, 2999), st.integers(1000, 2999).map(str)),
                  "categories": st.one_of(st.lists(text, max_size=3), text)}),
    st.dictionaries(st.text(any_char, max_size=8), junk, max_size=2))
# ... and records with the wrong shapes everywhere.
malformed = st.builds(
    lambda known, unknown: {**unknown, **known},
    st.fixed_dictionaries(
        {"id": paper_id, "title": st.one_of(text, junk)},
        optional={"abstract": st.one_of(text, junk), "authors": st.one_of(st.lists(text, max_size=3), junk),
                  "year": st.one_of(st.integers(-5, 3000), st.floats(), text, junk),
                  "categories": st.one_of(st.lists(text, max_size=3), text, junk), "_id": paper_id}),
    st.dictionaries(st.text(any_char, max_size=8), junk, max_size=2))
record = st.one_of(plausible, plausible, malformed)


def encode_line(item, style: dict) -> bytes:
    """One record as the bytes of a line: JSON (ASCII-escaped or raw), or raw junk bytes."""
    if isinstance(item, bytes):
        return item
    line = json.dumps(item, ensure_ascii=style["ascii"], allow_nan=True)
    return line.encode("utf-8", "surrogatepass")  # raw lone surrogates are invalid UTF-8 on purpose


garbage_line = st.one_of(st.binary(max_size=40).filter(lambda b: b"\n" not in b),
                         st.sampled_from([b"", b"   ", b"[1, 2]", b'{"id": "x", "title": ', b"[" * 5000 + b"]" * 5000]))
file_item = st.one_of(record, record, record, garbage_line)
file_style = st.fixed_dictionaries({"ascii": st.booleans(), "bom": st.booleans(), "crlf": st.booleans(),
                                    "gzip": st.booleans(), "cut": st.one_of(st.none(), st.floats(0, 1))})


def write_file(path: Path, items: list, style: dict) -> Path:
    newline = b"\r\n" if style["crlf"] else b"\n"
    data = (b"\xef\xbb\xbf" if style["bom"] else b"") + newline.join(encode_line(i, style) for i in items)
    if style["gzip"]:
        data = gzip.compress(data)
        path = path.with_suffix(".jsonl.gz")
        if style["cut"] is not None:  # a download that stopped part-way
            data = data[: int(len(data) * style["cut"])]
    path.write_bytes(data)
    return path


def blank(item) -> bool:
    """A line ingestion skips: empty after decoding, dropping a BOM and stripping whitespace."""
    if not isinstance(item, bytes):
        return False
    try:
        return not item.decode("utf-8").lstrip("\ufeff").strip()
    except UnicodeDecodeError:
        return False


def stable(value: str) -> bool:
    """Text that ingestion keeps byte for byte (apart from stripping)."""
    return value.isprintable() and value == value.strip() and bool(value)


# --- ingestion ----------------------------------------------------------------------------------


@given(items=st.lists(file_item, max_size=8), style=file_style)
@fuzz_settings(300)
def test_ingestion_accounts_for_every_line_and_never_crashes(tmp_path_factory, items, style):
    counted("test_ingestion_accounts_for_every_line_and_never_crashes")
    path = write_file(tmp_path_factory.mktemp("in") / "papers.jsonl", items, style)
    try:
        results = list(read_papers(path))
    except UnknownFormat as exc:  # the only whole-file problem of an existing file: its format
        assert f"{path}: cannot tell the format" in str(exc)
        return
    assert all(isinstance(r, (Parsed, Rejection)) for r in results)
    truncated = style["gzip"] and style["cut"] is not None
    lines = [i for i in items if not blank(i)]
    # Junk bytes that happen to start with gzip's magic number are (rightly) read as a broken gzip.
    accidental_gzip = not style["gzip"] and path.read_bytes()[:2] == b"\x1f\x8b"
    if not truncated and not accidental_gzip:
        # One result per non-blank line (a BOM or CRLF never merges or splits records).
        assert len(results) == len(lines)
    for result in results:
        if isinstance(result, Rejection):
            assert result.reason and result.location.startswith(str(path))
            continue
        paper = result.paper
        for value in (paper.paper_id, paper.title, paper.abstract, *paper.authors, *paper.categories):
            assert isinstance(value, str)
            assert "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
        assert (paper.title or paper.abstract) and paper.paper_id
        json.dumps(paper.to_dict(), ensure_ascii=False).encode("utf-8")  # every field can be printed
    for item, result in zip(lines, results, strict=False):
        if not truncated and isinstance(item, dict) and isinstance(result, Parsed):
            title = item["title"]
            if isinstance(title, str) and stable(title):
                assert result.paper.title == title  # stored whole, however long


@given(rows=st.lists(st.lists(st.one_of(text, st.integers().map(str)), min_size=0, max_size=5), max_size=6),
       tsv=st.booleans())
@fuzz_settings(150)
def test_csv_rows_are_read_or_rejected_one_by_one(tmp_path_factory, rows, tsv):
    counted("test_csv_rows_are_read_or_rejected_one_by_one")
    path = tmp_path_factory.mktemp("csv") / ("papers.tsv" if tsv else "papers.csv")
    with path.open("w", encoding="utf-8", errors="surrogatepass", newline="") as handle:
        writer = csv.writer(handle, dialect="excel-tab" if tsv else "excel")
        writer.writerow(["id", "title", "abstract"])
        writer.writerows(rows)
    results = list(read_papers(path))
    assert all(isinstance(r, (Parsed, Rejection)) for r in results)
    assert len(results) <= len(rows)


@pytest.mark.parametrize("content, reason", [
    (b'{"id": "a", "title": "x\\ud800y"}', "a lone surrogate"),  # the same decision as POST /papers
    (b'{"id": "a", "title": "t", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "unreadable JSON"),
    (b'{"id": "a", "title": "t", "x": ' + b"[" * 80 + b"]" * 80 + b"}", "nested deeper than 64 levels"),
    (b'{"id": "a", "title": "t", "year": NaN}', None),
    (b'{"id": "a", "title": "t", "year": 1' + b"0" * 5000 + b"}", "unreadable JSON"),
    (b'{"id": 1.5, "title": "t"}', "field 'id' must be a string, got float"),
    (b'{"id": "a", "title": ["t"]}', "field 'title' must be a string, got list"),
    (b'{"id": "a", "title": "t", "authors": [{"name": "x"}]}', "field 'authors' must hold strings, got dict"),
    (b'{"id": "\\u0000", "title": "t"}', "empty id"),
    (b"\xff\xfe{}", "not valid UTF-8"),
])
def test_hostile_json_lines(tmp_path, content, reason):
    path = tmp_path / "papers.jsonl"
    path.write_bytes(content + b"\n" + b'{"id": "next", "title": "the next line still counts"}\n')
    first, second = list(read_papers(path))
    assert isinstance(second, Parsed) and second.paper.paper_id == "next"
    if reason is None:
        assert isinstance(first, Parsed), first
    else:
        assert isinstance(first, Rejection) and reason in first.reason, first


def test_a_csv_abstract_longer_than_the_csv_module_default_is_stored_whole(tmp_path):
    abstract = "long " * 60_000  # 300 KB, past csv's 128 KiB field limit
    path = tmp_path / "papers.csv"
    path.write_text(f"id,title,abstract\n1,Title,{abstract}\n2,Second,short\n", encoding="utf-8")
    first, second = list(read_papers(path))
    assert first.paper.abstract == abstract.strip() and second.paper.paper_id == "2"


def test_a_bad_byte_in_a_csv_rejects_that_row_only(tmp_path):
    path = tmp_path / "papers.csv"
    path.write_bytes(b"id,title\n1,good\n2,bad \xff byte\n3,also good\n")
    results = list(read_papers(path))
    assert [type(r).__name__ for r in results] == ["Parsed", "Rejection", "Parsed"]
    assert "not valid UTF-8" in results[1].reason


@pytest.mark.parametrize("content", [
    b"", gzip.compress(b"")[:5], gzip.compress(b'{"id": "a", "title": "t"}\n' * 50)[:-30]])
def test_empty_and_truncated_files(tmp_path, content):
    path = tmp_path / "papers.jsonl.gz"
    path.write_bytes(content)
    results = list(read_papers(path))
    assert all(isinstance(r, (Parsed, Rejection)) for r in results)
    if content:
        assert isinstance(results[-1], Rejection) and "truncated or damaged" in results[-1].reason


# --- through the index, with the real model -------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_index(tmp_path_factory, sample_index_dir):
    import shutil

    target = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(sample_index_dir, target)
    return target


@given(items=st.lists(file_item, min_size=1, max_size=5), style=file_style)
@fuzz_settings(60)
def test_hostile_files_never_corrupt_the_index(tmp_path_factory, fuzz_index, embedder, items, style):
    counted("test_hostile_files_never_corrupt_the_index")
    path = write_file(tmp_path_factory.mktemp("in") / "papers.jsonl", items, style)
    expected = {}
    try:
        for result in read_papers(path):
            if isinstance(result, Parsed):
                expected[result.paper.paper_id] = result.paper  # the last record of an id wins
    except UnknownFormat:
        with pytest.raises(UnknownFormat, match="cannot tell the format"):
            index_file(Settings(index_dir=fuzz_index), path, embedder=embedder)
        return
    report = index_file(Settings(index_dir=fuzz_index), path, embedder=embedder)
    assert report.indexed + report.unchanged == len(expected)
    store = IndexStore.open(fuzz_index)
    try:
        assert store.get_papers(list(expected)) == expected  # stored whole, exactly as read
        index, _ = store.load_vector_index()
        assert store.vector_file_problem is None and index.ntotal == store.count()
    finally:
        store.close()


def test_the_fuzzed_index_still_checks_clean(fuzz_index):
    """Runs after the property above (same module fixture): nothing it wrote broke an invariant."""
    report = check_index(fuzz_index)
    assert report.ok, report.problems


# --- queries ------------------------------------------------------------------------------------

DEFAULTS = Settings()


def broken_rules(query=None, limit=5, offset=0, mode="hybrid", filters=None) -> list[str]:
    """The message fragments of every request rule an input breaks (the oracle for the tests below).

    An input that breaks none must get results; one that breaks some must get InvalidQuery saying
    one of them (which one the engine checks first is its own business).
    """
    broken = []
    if query is not None:
        text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in query).strip()
        if not text:
            broken.append("The query is empty")
        elif len(text) > DEFAULTS.max_query_chars:
            broken.append(f"the limit is {DEFAULTS.max_query_chars}")
    if not 1 <= limit <= DEFAULTS.max_limit:
        broken.append("limit must be between")
    if not 0 <= offset <= DEFAULTS.max_offset:
        broken.append("offset must be between")
    if mode not in MODES:
        broken.append("Unknown mode")
    if filters is not None:
        if filters.year_from is not None and not YEAR_MIN <= filters.year_from <= YEAR_MAX:
            broken.append("year_from must be a year")
        for name in ("category", "author"):
            value = getattr(filters, name)
            if value is not None and len(value) > DEFAULTS.max_filter_chars:
                broken.append(f"The {name} filter must be text")
    return broken


def answered_as_the_rules_say(call, broken: list[str]):
    """Run `call`; it must succeed when no rule is broken, else raise InvalidQuery naming one."""
    if not broken:
        return call()
    with pytest.raises(InvalidQuery) as caught:
        call()
    assert any(fragment in str(caught.value) for fragment in broken), (str(caught.value), broken)
    return None


QUERIES = ["", "   ", "\t\n", "a" * 100_000, "!!!???...", "*", '"', "AND OR NOT", '"protein" NEAR/3 folding*',
           "title:ocr^2 -segmentation", "'; DROP TABLE papers; --", "1 OR 1=1", "\x00", "\ud800", "👩‍🔬",
           "مرحبا", "漢字", "%", "_", "NULL", "e\u0301"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_named_hostile_queries(sample_engine, query, mode):
    hits = answered_as_the_rules_say(lambda: sample_engine.search(query, limit=5, mode=mode),
                                     broken_rules(query, mode=mode))
    if hits is not None:
        assert len(hits) <= 5 and [h.rank for h in hits] == list(range(1, len(hits) + 1))


@given(query=st.one_of(text, st.sampled_from(QUERIES)), limit=st.integers(-2, 120), offset=st.integers(-2, 20_000),
       mode=st.sampled_from([*MODES, "bogus"]))
@fuzz_settings(60)
def test_any_query_gets_results_or_a_clear_error(sample_engine, query, limit, offset, mode):
    counted("test_any_query_gets_results_or_a_clear_error")
    hits = answered_as_the_rules_say(lambda: sample_engine.search(query, limit=limit, offset=offset, mode=mode),
                                     broken_rules(query, limit, offset, mode))
    if hits is not None:
        assert len(hits) <= limit


@given(category=st.one_of(st.none(), text), author=st.one_of(st.none(), text),
       year_from=st.one_of(st.none(), st.integers(-10**6, 10**6)), related_text=st.one_of(st.none(), text))
@fuzz_settings(40)
def test_hostile_filters_and_related_text(sample_engine, category, author, year_from, related_text):
    counted("test_hostile_filters_and_related_text")
    filters = Filters(year_from=year_from, category=category, author=author)
    if related_text is None:
        call = lambda: sample_engine.related("seed-01", limit=5, filters=filters)  # noqa: E731
    else:
        call = lambda: sample_engine.related(text=related_text, limit=5, filters=filters)  # noqa: E731
    hits = answered_as_the_rules_say(call, broken_rules(related_text, filters=filters))
    if hits is not None:
        assert len(hits) <= 5 and all(h.paper.paper_id != "seed-01" or related_text is not None for h in hits)


def test_the_queried_index_is_unchanged(sample_index_dir):
    store = IndexStore.open(sample_index_dir)
    assert store.count() == 24 and store.generation == 1
    store.close()
    assert check_index(sample_index_dir).ok
