"""Read paper records from files, streaming, and turn each line into a Paper or a Rejection.

Formats: JSON Lines (optionally .gz), CSV with a header, the arXiv metadata dump and BEIR
`corpus.jsonl`. They differ only in field names and shapes, so each format is a small table of
aliases and the records all go through one `to_paper`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import InvalidInput, UnknownFormat
from models.paper import Paper

FORMATS = ("jsonl", "csv", "arxiv", "beir")

# Input field -> Paper field. The first alias present wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    "paper_id": ("id", "paper_id", "_id", "arxiv_id"),
    "title": ("title",),
    "abstract": ("abstract", "text", "summary"),
    "authors": ("authors", "author"),
    "year": ("year",),
    "categories": ("categories", "category"),
    "venue": ("venue", "journal-ref", "journal"),
    "url": ("url",),
    "doi": ("doi",),
}
_MAX_ID_CHARS = 512
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_AUTHOR_SPLIT = re.compile(r"\s*;\s*|\s*,\s*(?:and\s+)?|\s+and\s+")
_CATEGORY_SPLIT = re.compile(r"[\s,;]+")
_YEAR_IN_TEXT = re.compile(r"\b(1[5-9]\d\d|2[0-2]\d\d)\b")
# JSON may spell lone UTF-16 surrogates ("\ud800"); they are not text, SQLite and the tokenizer
# refuse them, so they become U+FFFD like any other undecodable character.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Deeper records are junk, and serialising them again later could hit Python's recursion limit.
_MAX_NESTING = 64
# Abstracts are stored whole, so a CSV field may be far longer than the csv module's 128 KiB default.
_CSV_FIELD_LIMIT = 1 << 30


@dataclass(frozen=True)
class Rejection:
    """A record that could not be used: where it was and why."""

    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


@dataclass(frozen=True)
class Parsed:
    """A record that became a Paper, with the place it came from."""

    location: str
    paper: Paper


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
    for _, raw, error in _iter_lines(path):
        if error or raw is None:
            break
        text = raw.decode("utf-8", "replace").lstrip("\ufeff").strip()
        if not text:
            continue
        try:
            first = json.loads(text, parse_constant=lambda name: None)
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


def _json_records(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
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
            # NaN/Infinity are not JSON, but some dumps write them for "missing": read them as null.
            record = json.loads(text, parse_constant=lambda name: None)
        except json.JSONDecodeError as exc:
            yield location, None, f"malformed JSON ({exc.msg} at column {exc.colno})"
            continue
        except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, or [[[[...]]]]
            yield location, None, f"unreadable JSON ({str(exc)[:80] or type(exc).__name__})"
            continue
        if not isinstance(record, dict):
            yield location, None, f"expected a JSON object, got {type(record).__name__}"
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
            if any(isinstance(v, str) and _LONE_SURROGATE.search(v) for v in (*row.keys(), *row.values())):
                yield location, None, "not valid UTF-8"
                continue
            yield location, {k: v for k, v in row.items() if v not in (None, "")}, None


# --- turning a record into a Paper --------------------------------------------------------------


def _clean_text(value: str) -> str:
    return _CONTROL_CHARS.sub("", value).strip()


def _as_text(field: str, value: Any) -> str:
    if isinstance(value, str):
        return _clean_text(value)
    raise InvalidInput(f"field {field!r} must be a string, got {type(value).__name__}")


def _as_list(field: str, value: Any, splitter: re.Pattern) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        parts = splitter.split(value)
    elif isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, list) and all(isinstance(x, str) for x in item):
                # arXiv's authors_parsed shape: [last, first, suffix]
                parts.append(" ".join(x for x in (item[1:2] + item[:1]) if x))
            else:
                raise InvalidInput(f"field {field!r} must hold strings, got {type(item).__name__}")
    else:
        raise InvalidInput(f"field {field!r} must be a list or a string, got {type(value).__name__}")
    return tuple(p for p in (_clean_text(x) for x in parts) if p)


def _as_year(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput("field 'year' must be an integer, got bool")
    if isinstance(value, int):
        year = value
    elif isinstance(value, float) and value.is_integer():
        year = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        year = int(value.strip())
    elif isinstance(value, str) and _YEAR_IN_TEXT.search(value):
        year = int(_YEAR_IN_TEXT.search(value).group(1))
    else:
        raise InvalidInput(f"field 'year' must be an integer, got {value!r:.40}")
    if not 1000 <= year <= 2999:
        raise InvalidInput(f"field 'year' is out of range: {year}")
    return year


def _pick(record: dict[str, Any], field: str) -> tuple[str | None, Any]:
    for alias in _ALIASES[field]:
        if alias in record:
            return alias, record[alias]
    return None, None


def _arxiv_year(record: dict[str, Any]) -> Any:
    versions = record.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        created = versions[0].get("created")
        if isinstance(created, str) and _YEAR_IN_TEXT.search(created):
            return _YEAR_IN_TEXT.search(created).group(1)
    return record.get("update_date")


def _scrub(record: dict[str, Any]) -> dict[str, Any]:
    """The record with lone surrogates replaced by U+FFFD; InvalidInput when nested too deeply.

    Iterative, so a deep record cannot exhaust the Python stack here.
    """
    def clean(value: Any) -> Any:
        if isinstance(value, str) and not value.isascii():
            return _LONE_SURROGATE.sub("\ufffd", value)
        return value

    out: dict[str, Any] = {}
    stack: list[tuple[Any, Any, int]] = [(record, out, 1)]
    while stack:
        source, target, depth = stack.pop()
        if depth > _MAX_NESTING:
            raise InvalidInput(f"record is nested deeper than {_MAX_NESTING} levels")
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            if isinstance(value, (dict, list)):
                child: Any = {} if isinstance(value, dict) else [None] * len(value)
                stack.append((value, child, depth + 1))
                value = child
            else:
                value = clean(value)
            if isinstance(target, dict):
                target[clean(key)] = value
            else:
                target[key] = value
    return out


def to_paper(record: dict[str, Any], fmt: str = "jsonl") -> Paper:
    """Build a Paper from one input record; raises InvalidInput naming the bad field."""
    record = _scrub(record)
    used: set[str] = set()
    values: dict[str, Any] = {}
    for field in _ALIASES:
        alias, value = _pick(record, field)
        if alias is not None:
            used.add(alias)
        values[field] = value
    if fmt == "arxiv" and values["year"] is None:
        values["year"] = _arxiv_year(record)
    if fmt == "jsonl" and values["year"] is None and isinstance(record.get("date"), str):
        values["year"] = record["date"] if _YEAR_IN_TEXT.search(record["date"]) else None

    paper_id = values["paper_id"]
    if paper_id is None or paper_id == "":
        raise InvalidInput("missing id (expected a field 'id', 'paper_id' or '_id')")
    if isinstance(paper_id, int) and not isinstance(paper_id, bool):
        paper_id = str(paper_id)
    paper_id = _as_text("id", paper_id)
    if not paper_id:
        raise InvalidInput("empty id")
    if len(paper_id) > _MAX_ID_CHARS:
        raise InvalidInput(f"id is longer than {_MAX_ID_CHARS} characters")
    if values["title"] is None:
        raise InvalidInput(f"paper {paper_id!r}: missing title")
    title = _as_text("title", values["title"])
    if not title:
        raise InvalidInput(f"paper {paper_id!r}: empty title")
    abstract = _as_text("abstract", values["abstract"]) if values["abstract"] is not None else ""

    def optional_text(field: str) -> str | None:
        value = values[field]
        return None if value is None else (_as_text(field, value) or None)

    extra = {k: v for k, v in record.items() if k not in used}
    return Paper(
        paper_id=paper_id,
        title=title,
        abstract=abstract,
        authors=_as_list("authors", values["authors"], _AUTHOR_SPLIT),
        year=_as_year(values["year"]),
        categories=_as_list("categories", values["categories"], _CATEGORY_SPLIT),
        venue=optional_text("venue"),
        url=optional_text("url"),
        doi=optional_text("doi"),
        extra=extra,
    )


def read_papers(path: str | Path, fmt: str | None = None) -> Iterator[Parsed | Rejection]:
    """Stream a file's records as Parsed papers or Rejections, one per input record."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise UnknownFormat(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    records = _csv_records(path) if fmt == "csv" else _json_records(path)
    for location, record, error in records:
        if error:
            yield Rejection(location, error)
            continue
        try:
            yield Parsed(location, to_paper(record, fmt))
        except InvalidInput as exc:
            yield Rejection(location, str(exc))


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
