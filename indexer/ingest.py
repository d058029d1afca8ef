"""Read paper records from files, streaming: each line becomes a Paper or a Rejection.

Formats: JSON Lines (optionally .gz), CSV with a header, the arXiv metadata dump and BEIR
`corpus.jsonl`; reference-manager libraries (BibTeX, RIS, CSL-JSON) in indexer/library_formats.py.
This module only frames records (files, lines, rows, bytes); they differ in field
names and shapes, which the one record decoder (indexer/records.py) settles for every way in.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexer.library_formats import LIBRARY_FORMATS, read_library, sniff_library_format
from indexer.records import LONE_SURROGATE, Parsed, Rejection, decode, to_paper
from models.errors import InvalidInput, UnknownFormat

__all__ = ["FORMATS", "Parsed", "Rejection", "count_lines", "detect_format", "read_papers", "to_paper"]

FORMATS = ("jsonl", "csv", "arxiv", "beir", *LIBRARY_FORMATS)
# Abstracts are stored whole, so a CSV field may be far longer than the csv module's 128 KiB default.
_CSV_FIELD_LIMIT = 1 << 30


# --- reading lines ------------------------------------------------------------------------------


def _open_binary(path: Path):
    """The file's bytes, decompressed when it is gzip (told by its magic number, not its name)."""
    handle = path.open("rb")
    if handle.peek(2)[:2] == b"\x1f\x8b" if hasattr(handle, "peek") else False:
        return gzip.GzipFile(fileobj=handle)
    return handle


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(line number, raw line, error) for each line; a truncated gzip ends with one error."""
    with _open_binary(path) as handle:
        number = 0
        try:
            for number, raw in enumerate(handle, start=1):
                yield number, raw, None
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            yield number + 1, None, f"the compressed file is truncated or damaged ({exc})"


def detect_format(path: Path) -> str:
    """Guess a file's format from its name and its first record."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        return "csv"
    try:
        with _open_binary(path) as handle:
            head = handle.read(1 << 16).decode("utf-8", "replace")
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError):
        head = ""  # the reader reports the damage with its line
    library = sniff_library_format(name, head)
    if library:
        return library
    for _, raw, error in _iter_lines(path):
        if error or raw is None:
            break
        text = raw.decode("utf-8", "replace").lstrip("\ufeff").strip()
        if not text:
            continue
        try:
            first = json.loads(text)
        except (ValueError, RecursionError):
            break
        if not isinstance(first, dict):
            break
        if "_id" in first and "id" not in first:
            return "beir"
        if "versions" in first or "update_date" in first or "authors_parsed" in first:
            return "arxiv"
        return "jsonl"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    raise UnknownFormat(
        f"{path}: cannot tell the format from the name or the first line. "
        f"Pass --format with one of: {', '.join(FORMATS)}."
    )


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
    with _open_binary(path) as raw:
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
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
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


def read_papers(path: str | Path, fmt: str | None = None) -> Iterator[Parsed | Rejection]:
    """Stream a file's records as Parsed papers or Rejections, one per input record."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise UnknownFormat(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt in LIBRARY_FORMATS:
        records = read_library(path, fmt)
    else:
        records = _csv_records(path) if fmt == "csv" else _json_records(path)
    for location, record, error in records:
        if error:
            yield Rejection(location, error)
            continue
        yield decode(location, record, fmt)


def count_lines(path: str | Path) -> int:
    """Lines in a file (decompressed), for a progress bar's total; cheap next to embedding."""
    total = 0
    try:
        with _open_binary(Path(path)) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                total += block.count(b"\n")
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError):
        pass
    return total
