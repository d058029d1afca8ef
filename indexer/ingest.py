"""Read paper records from files, streaming: each line becomes a Paper or a Rejection.

Formats: JSON Lines (optionally .gz), CSV with a header, the arXiv metadata dump and BEIR
`corpus.jsonl`, the sources' own shapes (indexer/sources/: OpenAlex, Semantic Scholar,
Crossref, PubMed, arXiv Atom, OAI-PMH) and reference-manager libraries (BibTeX, RIS, CSL-JSON:
indexer/library_formats.py), told apart per file. This module only frames records
(files, lines, rows, bytes); they differ in field names and shapes, which the one record decoder
(indexer/records.py) settles for every way in.

A run's inputs (`Inputs`) may be directories and globs of part files; the Semantic Scholar
abstracts dataset among them is not records but the table the `papers` dataset is joined with.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from indexer.library_formats import LIBRARY_FORMATS, read_library, sniff_library_format
from indexer.records import LONE_SURROGATE, Parsed, Rejection, decode, to_paper
from indexer.sources import JSON_SNIFFERS, READERS, XML_ROOTS, Delete, Note, Skipped
from indexer.sources.base import DAMAGED, Locator, json_items, open_binary
from indexer.sources.semantic_scholar import ABSTRACTS, AbstractJoin
from models.errors import InvalidInput, UnknownFormat

__all__ = ["FORMATS", "Delete", "Inputs", "Note", "Parsed", "Rejection", "Skipped", "count_lines", "detect_format",
           "estimate_records", "expand_inputs", "read_items", "read_papers", "to_paper"]

FORMATS = ("jsonl", "csv", "arxiv", "beir", *READERS, *LIBRARY_FORMATS)
Item = Parsed | Rejection | Delete | Skipped | Note
# Abstracts are stored whole, so a CSV field may be far longer than the csv module's 128 KiB default.
_CSV_FIELD_LIMIT = 1 << 30
# Not records: what a snapshot or dataset download puts beside its part files.
_NOT_INPUT = ("manifest", "_SUCCESS", "LICENSE", "README")
_NOT_INPUT_SUFFIXES = (".md", ".txt", ".html", ".pdf", ".md5", ".sha256", ".crc", ".json.sha")
_XML_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)")
_XML_PROLOGUE = re.compile(rb"<[?!][^>]*>")  # the declaration, processing instructions, DOCTYPE, comments


# --- reading lines ------------------------------------------------------------------------------


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(line number, raw line, error) for each line; a truncated gzip ends with one error."""
    with open_binary(path) as handle:
        number = 0
        try:
            for number, raw in enumerate(handle, start=1):
                yield number, raw, None
        except DAMAGED as exc:
            yield number + 1, None, f"the compressed file is truncated or damaged ({exc})"


def detect_format(path: Path) -> str:
    """Guess a file's format from its name and its first record (XML: its root element)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        return "csv"
    head = _head(path)
    library = sniff_library_format(name, head.decode("utf-8", "replace"))
    if library:  # by extension or first characters, before a JSON array is taken for a source's
        return library
    # XML by content, unless the name says JSON Lines: such a file starting with "<" is bad lines.
    if head.lstrip().startswith(b"<") and not name.endswith((".jsonl", ".ndjson")):
        return _xml_format(path, head)
    first = _first_json_record(path)
    if isinstance(first, tuple) and isinstance(first[1], dict):
        record = first[1]
        for fmt, sniff in JSON_SNIFFERS:
            if sniff(record):
                return fmt
        if "_id" in record and "id" not in record:
            return "beir"
        if "versions" in record or "update_date" in record or "authors_parsed" in record:
            return "arxiv"
        return "jsonl"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    raise UnknownFormat(
        f"{path}: cannot tell the format from the name or the first line. "
        f"Pass --format with one of: {', '.join(FORMATS)}."
    )


def _first_json_record(path: Path):
    """The first item of a JSON file that is not null (an S2 batch answer starts with null for an
    id it did not find), or the first rejection."""
    for item in json_items(path, Locator(path)):
        if not isinstance(item, tuple) or item[1] is not None:
            return item
    return None


def _head(path: Path, size: int = 1 << 16) -> bytes:
    try:
        with open_binary(path) as handle:
            return handle.read(size).lstrip(b"\xef\xbb\xbf")
    except DAMAGED:
        return b""


def _xml_format(path: Path, head: bytes) -> str:
    root = _XML_ROOT.search(_XML_PROLOGUE.sub(b"", head))
    name = root.group(1).decode().rpartition(":")[2] if root else "?"
    if name in XML_ROOTS:
        return XML_ROOTS[name]
    raise UnknownFormat(f"{path}: XML with root <{name}> is not a format PaperSearch reads (MEDLINE "
                        f"<PubmedArticleSet>, Atom <feed> from the arXiv API, <OAI-PMH> responses).")


def _json_records(path: Path) -> Iterator[tuple[str, Any, str | None]]:
    for number, raw, error in _iter_lines(path):
        location = f"{path}:{number}"
        if error:
            yield location, None, error
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield location, None, f"line is not valid UTF-8 (byte {exc.start})"
            continue
        text = text.lstrip("\ufeff").strip()
        if not text:
            continue
        try:
            # NaN/Infinity are not JSON, but some dumps write them; the decoder turns them into null.
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield location, None, f"malformed JSON ({exc.msg} at column {exc.colno})"
            continue
        except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, or [[[[...]]]]
            yield location, None, f"unreadable JSON ({str(exc)[:80] or type(exc).__name__})"
            continue
        yield location, record, None


def _csv_records(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    with open_binary(path) as raw:
        # surrogateescape keeps reading past a bad byte; the row holding it is rejected below.
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        dialect = "excel-tab" if path.name.lower().removesuffix(".gz").endswith(".tsv") else "excel"
        reader = csv.DictReader(text, dialect=dialect)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # one bad row; the reader carries on with the next line
                yield f"{path}:{reader.line_num}", None, f"unreadable CSV row ({exc})"
                continue
            except DAMAGED as exc:
                yield f"{path}:{reader.line_num + 1}", None, f"the compressed file is truncated or damaged ({exc})"
                return
            location = f"{path}:{reader.line_num}"
            if None in row:
                yield location, None, "more values than header columns"
                continue
            if any(isinstance(v, str) and LONE_SURROGATE.search(v) for v in (*row.keys(), *row.values())):
                yield location, None, "not valid UTF-8"
                continue
            yield location, {k: v for k, v in row.items() if v not in (None, "")}, None


def read_items(path: str | Path, fmt: str | None = None, joins: AbstractJoin | None = None) -> Iterator[Item]:
    """Stream a file's records as Parsed papers or Rejections, plus what a source says beside them:
    Deletes (ids it withdrew), Skipped (records it marks as not papers) and Notes (repairs)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt == ABSTRACTS:
        raise InvalidInput(f"{path} is the Semantic Scholar abstracts dataset: index it in one run with the papers "
                           f"dataset it completes, e.g. papersearch index papers/ abstracts/")
    if fmt not in FORMATS:
        raise UnknownFormat(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt in READERS:
        for item in READERS[fmt].read(path, joins):
            yield decode(item[0], item[1], fmt) if isinstance(item, tuple) else item
        return
    if fmt in LIBRARY_FORMATS:
        records = read_library(path, fmt)
    else:
        records = _csv_records(path) if fmt == "csv" else _json_records(path)
    for location, record, error in records:
        if error:
            yield Rejection(location, error)
            continue
        yield decode(location, record, fmt)


def read_papers(path: str | Path, fmt: str | None = None) -> Iterator[Parsed | Rejection]:
    """Stream a file's records as Parsed papers or Rejections, one per input record."""
    for item in read_items(path, fmt):
        if isinstance(item, (Parsed, Rejection)):
            yield item


# --- a run's inputs: directories, globs, per-file formats, joins ----------------------------------


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files named, directories (their data files, recursively, sorted) and globs (`parts/*.gz`)."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_data_file(p, path))
            if not found:
                raise InvalidInput(f"{path} is a directory with no input files in it")
            files.extend(found)
        elif not path.exists() and glob.has_magic(str(given)):
            found = sorted(Path(p) for p in glob.glob(str(given), recursive=True) if Path(p).is_file())
            if not found:
                raise InvalidInput(f"{given}: no file matches this pattern")
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def _is_data_file(path: Path, top: Path) -> bool:
    parts = path.relative_to(top).parts
    if any(part.startswith(".") for part in parts) or path.name.startswith(_NOT_INPUT):
        return False
    return not path.name.lower().endswith(_NOT_INPUT_SUFFIXES)


class Inputs:
    """One run's input files with each one's format, and the join tables they need (the S2
    abstracts dataset). Close it (or use it as a context manager) to drop the join's temp file."""

    def __init__(self, paths: Sequence[str | Path], fmt: str | None = None):
        self.fmt = fmt
        formats = [(path, fmt or detect_format(path)) for path in expand_inputs(paths)]
        self.files = [path for path, kind in formats if kind != ABSTRACTS]
        self.formats = {path: kind for path, kind in formats}
        self.joins = AbstractJoin([path for path, kind in formats if kind == ABSTRACTS])
        if not self.files:
            raise InvalidInput("the inputs hold only the Semantic Scholar abstracts dataset; add the papers "
                               "dataset it completes")

    def read(self, path: Path) -> Iterator[Item]:
        return read_items(path, self.formats[path], self.joins)

    def estimate(self) -> int:
        """Roughly how many records the run holds, for a progress bar."""
        return sum(estimate_records(path, self.formats[path]) for path in self.files)

    def close(self) -> None:
        self.joins.close()

    def __enter__(self) -> Inputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def estimate_records(path: str | Path, fmt: str | None = None) -> int:
    """Records in a file, roughly: its lines, or for XML and JSON pages the marks one record has."""
    mark = getattr(READERS.get(fmt or ""), "RECORD_MARK", None)
    return count_lines(path, mark)


def count_lines(path: str | Path, mark: bytes | None = None) -> int:
    """Lines in a file (decompressed), for a progress bar's total; cheap next to embedding. With
    `mark`, how often it occurs instead (a record's tag in XML, a key each record of a page has)."""
    lines = marks = 0
    try:
        with open_binary(Path(path)) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                lines += block.count(b"\n")
                marks += block.count(mark) if mark else 0
    except DAMAGED:
        pass
    return marks or lines if mark else lines
