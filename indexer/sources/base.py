"""What every source reader shares: the items it yields besides records, framing of bytes and JSON,
and the few text rules the published shapes need (markup, DOIs, whitespace).

A reader yields, per input record, one of:
- `(location, raw)`: a raw record dict in the decoder's vocabulary (paper_id, title, abstract,
  authors, year, categories, venue, url, doi; any other key lands in `Paper.extra`);
- `Rejection`: the record is unusable (the decoder's own rejections come later, from the raw dict);
- `Delete`: the source says this id is gone (PubMed DeleteCitation, an OAI deleted record);
- `Skipped`: the source says this is not a paper to index (retracted, paratext), counted by reason;
- `Note`: the record is indexed, but something about it was repaired (an inverted index with gaps).
"""

from __future__ import annotations

import codecs
import gzip
import html
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.records import Rejection

__all__ = ["DAMAGED", "Delete", "Locator", "Note", "Skipped", "clean_doi", "collapse", "json_items", "open_binary",
           "strip_markup"]

# Errors a damaged or truncated gzip stream raises part way through.
DAMAGED = (EOFError, gzip.BadGzipFile, zlib.error, OSError)
# A JSON page (one document holding an array of records) is read in pieces of this size.
_CHUNK = 1 << 20
# One record may not grow beyond this while its end is looked for: a file without one is damaged.
MAX_RECORD_BYTES = 64 << 20


@dataclass(frozen=True)
class Delete:
    """The source withdrew this id: it is removed from the index through the writer's delete path."""

    location: str
    paper_id: str


@dataclass(frozen=True)
class Skipped:
    """A record the source marks as not a paper to index, counted by `reason`."""

    location: str
    reason: str


@dataclass(frozen=True)
class Note:
    """A record that was indexed after a repair the user should hear about."""

    location: str
    text: str

    def __str__(self) -> str:
        return f"{self.location}: note: {self.text}"


class Locator:
    """`FILE:LINE` for each record, unique within a file: a record sharing its first line with the
    previous one (a compact JSON page, single-line XML) gets ` #N`, its place on that line. The
    ingest plan tells records apart by location, so two may never share one."""

    def __init__(self, path: Path):
        self._path = path
        self._line = -1
        self._on_line = 0

    def __call__(self, line: int) -> str:
        if line == self._line:
            self._on_line += 1
            return f"{self._path}:{line} #{self._on_line}"
        self._line, self._on_line = line, 1
        return f"{self._path}:{line}"


# --- bytes ------------------------------------------------------------------------------------------


def open_binary(path: Path):
    """The file's bytes, decompressed when it is gzip (told by its magic number, not its name)."""
    handle = path.open("rb")
    if handle.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=handle)
    return handle


# --- text -------------------------------------------------------------------------------------------

_TAG = re.compile(r"<[^<>]*>")
_BLOCK_END = re.compile(r"</(?:[\w-]+:)?(?:p|title|sec|list-item|div|br)\s*>|<(?:[\w-]+:)?br\s*/>", re.I)
_LEADING_ABSTRACT = re.compile(r"^\s*(?:abstract|summary)\s*[:.]?\s*\n", re.I)
_DOI = re.compile(r"10\.\d{4,9}/\S+")


def collapse(text: str | None) -> str:
    """Runs of whitespace (newlines of a wrapped XML title, double spaces) as one space."""
    return " ".join(text.split()) if text else ""


def strip_markup(text: str | None) -> str:
    """JATS/HTML markup as plain text: block ends become line breaks, other tags vanish, entities
    are decoded, a leading "Abstract" heading is dropped. Paragraphs stay on their own lines."""
    if not text:
        return ""
    plain = html.unescape(_TAG.sub("", _BLOCK_END.sub("\n", text)))
    plain = _LEADING_ABSTRACT.sub("", "\n".join(collapse(line) for line in plain.split("\n")).strip())
    return "\n".join(line for line in plain.split("\n") if line)


def clean_doi(value: Any) -> str | None:
    """A DOI as the bare `10.x/y` form, from a URL (https://doi.org/...), `doi:` text or the bare form."""
    if not isinstance(value, str):
        return None
    match = _DOI.search(value.strip())
    return match.group().rstrip(".,;") if match else None


# --- JSON: lines or one page holding an array -------------------------------------------------------

_ARRAY_KEY = re.compile(r'(?<!\\)"(results|items|data)"\s*:\s*\[')


def json_items(path: Path, locate: Locator) -> Iterator[tuple[str, Any] | Rejection]:
    """Each JSON record of a file as (location, value): one per line (JSON Lines), or the elements of
    the array of a page (`{"results": [...]}`, `{"message": {"items": [...]}}`, `[...]`), which is
    read piece by piece, so a page of any size is never held whole. A single-work page
    (`{"message": {...}}`) yields its message."""
    with open_binary(path) as handle:
        first = _first_line(handle)
    kind = _page_kind(first)
    yield from (_lines(path, locate) if kind == "lines" else _page(path, locate))


def _first_line(handle) -> str:
    try:
        for raw in handle:
            text = raw.decode("utf-8", "replace").lstrip("\ufeff").strip()
            if text:
                return text
    except DAMAGED:
        pass
    return ""


def _page_kind(first: str) -> str:
    if first.startswith("["):
        return "page"
    try:
        value = json.loads(first)
    except (ValueError, RecursionError):
        return "page" if first.startswith("{") else "lines"  # a pretty-printed page starts with "{" alone
    if isinstance(value, dict) and (any(isinstance(value.get(k), list) for k in ("results", "items", "data"))
                                    or isinstance(value.get("message"), dict)):
        return "page"
    return "lines"


def _lines(path: Path, locate: Locator) -> Iterator[tuple[str, Any] | Rejection]:
    number = 0
    with open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                text = raw.decode("utf-8", "replace").lstrip("\ufeff").strip()
                if not text:
                    continue
                location = locate(number)
                try:
                    yield location, json.loads(text)
                except json.JSONDecodeError as exc:
                    yield Rejection(location, f"malformed JSON ({exc.msg} at column {exc.colno})")
                except (ValueError, RecursionError) as exc:
                    yield Rejection(location, f"unreadable JSON ({str(exc)[:80] or type(exc).__name__})")
        except DAMAGED as exc:
            yield Rejection(f"{path}:{number + 1}", f"the compressed file is truncated or damaged ({exc})")


class _Text:
    """Decoded text of a file read in pieces: `buffer[pos:]` is what is not consumed yet, `line` the
    line number at `pos`. Consuming moves `pos` (no copy); a piece read drops what was consumed."""

    def __init__(self, handle):
        self._handle = handle
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.buffer = ""
        self.pos = 0
        self.line = 1
        self.eof = False

    def more(self) -> bool:
        """Read the next piece; False at the end of the file."""
        if self.eof:
            return False
        block = self._handle.read1(_CHUNK)  # read1: a damaged gzip loses no bytes before the damage
        self.eof = not block
        piece = self._decoder.decode(block, final=self.eof)
        self.buffer = self.buffer[self.pos:] + (piece.lstrip("\ufeff") if not self.buffer else piece)
        self.pos = 0
        return not self.eof

    def consume(self, upto: int) -> None:
        self.line += self.buffer.count("\n", self.pos, upto)
        self.pos = upto

    @property
    def pending(self) -> int:
        return len(self.buffer) - self.pos


def _page(path: Path, locate: Locator) -> Iterator[tuple[str, Any] | Rejection]:
    decoder = json.JSONDecoder()
    with open_binary(path) as handle:
        text = _Text(handle)
        try:
            start = _find_array(text)
            if start is None:
                yield from _whole_document(path, text)
                return
            text.consume(start)
            while True:
                if not _skip_separators(text):
                    yield Rejection(f"{path}:{text.line}", "the JSON page ends before its array does (truncated?)")
                    return
                if text.buffer.startswith("]", text.pos):
                    return
                try:
                    value, end = decoder.raw_decode(text.buffer, text.pos)
                except (ValueError, RecursionError) as exc:
                    if text.pending <= MAX_RECORD_BYTES and text.more():
                        continue  # the record goes on in the next piece
                    yield Rejection(f"{path}:{text.line}", f"malformed JSON in the page's array ({str(exc)[:80]}); "
                                                           "the rest of this file is not read")
                    return
                if end == len(text.buffer) and text.more():
                    continue  # a number at the very end of a piece may go on in the next one
                yield locate(text.line), value
                text.consume(end)
        except DAMAGED as exc:
            yield Rejection(f"{path}:{text.line}", f"the compressed file is truncated or damaged ({exc})")


def _find_array(text: _Text) -> int | None:
    """Offset just inside the records array: a top-level `[`, or the first results/items/data key."""
    while True:
        stripped = text.buffer.lstrip()
        if stripped.startswith("["):
            return len(text.buffer) - len(stripped) + 1
        match = _ARRAY_KEY.search(text.buffer)
        if match:
            return match.end()
        if len(text.buffer) > MAX_RECORD_BYTES or not text.more():
            return None


def _skip_separators(text: _Text) -> bool:
    """Move past whitespace and commas; False when the file ends first."""
    while True:
        position = text.pos
        while position < len(text.buffer) and text.buffer[position] in " \t\r\n,":
            position += 1
        text.consume(position)
        if position < len(text.buffer):
            return True
        if not text.more():
            return False


def _whole_document(path: Path, text: _Text) -> Iterator[tuple[str, Any] | Rejection]:
    """A page without a records array: a single work (`{"message": {...}}`) or one record."""
    while text.more():
        if text.pending > MAX_RECORD_BYTES:
            yield Rejection(f"{path}:1", "a JSON document over 64 MiB without a records array")
            return
    try:
        value = json.loads(text.buffer[text.pos:])
    except (ValueError, RecursionError) as exc:
        yield Rejection(f"{path}:1", f"malformed JSON ({str(exc)[:80]})")
        return
    if isinstance(value, dict) and isinstance(value.get("message"), dict):
        value = value["message"]
    yield f"{path}:1", value
