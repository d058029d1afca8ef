"""The one record decoder: a raw record (a dict from a file, an HTTP body or a Ray shard) -> Paper.

Every way in (`papersearch index`, POST /papers, `index --ray`) decodes through `to_paper`, so a
record means the same everywhere. What is decided here, once:

- field names: each Paper field has a table of aliases, the first one present wins;
- shapes: ids may be integers, authors and categories a list or one string to split, arXiv's
  `authors_parsed` lists become "First Last", years may be text holding a year;
- text: control characters are dropped and whitespace stripped in the known text fields;
- a paper needs a title or an abstract; with only an abstract the title is "" (BEIR corpora);
- lone UTF-16 surrogates anywhere (keys too) reject the record: they are not Unicode text, and
  SQLite, UTF-8 and the JSON answer would all fail on them later;
- NaN and +-Infinity anywhere (extra fields too) become null: some dumps write them for
  "missing", and they are not JSON, so an answer holding one could not be encoded;
- years lie in models.paper.YEAR_MIN..YEAR_MAX; records nest at most _MAX_NESTING levels.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from models.errors import InvalidInput
from models.identifiers import normalize_doi
from models.paper import YEAR_MAX, YEAR_MIN, Paper

__all__ = ["LONE_SURROGATE", "Parsed", "Rejection", "decode", "json_type", "raw_id", "to_paper"]

# Ends the reason of a record with neither title nor abstract: nothing in it could be searched.
NO_TEXT = " and no abstract"
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
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Deeper records are junk, and serialising them again later could hit Python's recursion limit.
_MAX_NESTING = 64


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


# --- the whole record: nesting, surrogates, non-finite numbers ------------------------------------


def _lone_surrogate(field: Any, text: str) -> InvalidInput:
    char = LONE_SURROGATE.search(text).group()
    return InvalidInput(f"field {field!r:.60} holds {char!a}, a lone surrogate, which is not valid Unicode text")


def _scrub(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of the record with NaN/Infinity as None; InvalidInput for lone surrogates or deep nesting.

    Iterative, so a deep record cannot exhaust the Python stack here. A problem is named by the
    top-level field that holds it.
    """
    out: dict[str, Any] = {}
    # (source container, target container, depth, top-level field or None at the top)
    stack: list[tuple[Any, Any, int, Any]] = [(record, out, 1, None)]
    while stack:
        source, target, depth, top = stack.pop()
        if depth > _MAX_NESTING:
            raise InvalidInput(f"record is nested deeper than {_MAX_NESTING} levels")
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            field = key if top is None else top
            if isinstance(key, str) and not key.isascii() and LONE_SURROGATE.search(key):
                raise _lone_surrogate(field, key)
            if isinstance(value, (dict, list)):
                child: Any = {} if isinstance(value, dict) else [None] * len(value)
                stack.append((value, child, depth + 1, field))
                value = child
            elif isinstance(value, str):
                if not value.isascii() and LONE_SURROGATE.search(value):
                    raise _lone_surrogate(field, value)
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            target[key] = value
    return out


# --- one field at a time ----------------------------------------------------------------------------


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
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise InvalidInput(f"field 'year' is out of range: {year} (expected {YEAR_MIN}-{YEAR_MAX})")
    return year


def _as_id(value: Any) -> str:
    if value is None or value == "":
        raise InvalidInput("missing id (expected a field 'id', 'paper_id' or '_id')")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    paper_id = _as_text("id", value)
    if not paper_id:
        raise InvalidInput("empty id")
    if len(paper_id) > _MAX_ID_CHARS:
        raise InvalidInput(f"id is longer than {_MAX_ID_CHARS} characters")
    return paper_id


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


def json_type(value: Any) -> str:
    """A JSON value's kind as a person would say it ("an array", "a string", "null")."""
    names = {list: "an array", dict: "an object", str: "a string", bool: "a boolean", int: "a number",
             float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# --- the decoder ------------------------------------------------------------------------------------


def to_paper(record: Any, fmt: str = "jsonl") -> Paper:
    """Build a Paper from one input record; raises InvalidInput naming the bad field.

    `fmt` only adds where a year may come from (arXiv's version dates, a jsonl `date`).
    """
    if not isinstance(record, dict):
        raise InvalidInput(f"expected a JSON object, got {json_type(record)}")
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

    paper_id = _as_id(values["paper_id"])
    abstract = _as_text("abstract", values["abstract"]) if values["abstract"] is not None else ""
    # The abstract alone is enough to search (many BEIR corpora leave titles empty); the title
    # then stays "" and the embedded text is the abstract.
    title = _as_text("title", values["title"]) if values["title"] is not None else ""
    if not title and not abstract:
        raise InvalidInput(f"paper {paper_id!r}: {'missing' if values['title'] is None else 'empty'} title{NO_TEXT}")

    def optional_text(field: str) -> str | None:
        value = values[field]
        return None if value is None else (_as_text(field, value) or None)

    return Paper(
        paper_id=paper_id,
        title=title,
        abstract=abstract,
        authors=_as_list("authors", values["authors"], _AUTHOR_SPLIT),
        year=_as_year(values["year"]),
        categories=_as_list("categories", values["categories"], _CATEGORY_SPLIT),
        venue=optional_text("venue"),
        url=optional_text("url"),
        # Stored lower case without a resolver prefix; text that is no DOI is kept as given.
        doi=normalize_doi(optional_text("doi")) or optional_text("doi"),
        extra={k: v for k, v in record.items() if k not in used},
    )


def decode(location: str, record: Any, fmt: str = "jsonl") -> Parsed | Rejection:
    """One record from `location` as a Parsed paper, or a Rejection saying why it is unusable."""
    try:
        return Parsed(location, to_paper(record, fmt))
    except InvalidInput as exc:
        return Rejection(location, str(exc))


def raw_id(record: Any) -> str | None:
    """The id a raw record claims (even a rejected one), printable and short, or None."""
    if not isinstance(record, dict):
        return None
    for key in _ALIASES["paper_id"]:
        value = record.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            # Shown back to a client, so it must encode even when the record did not.
            return str(value)[:200].encode("utf-8", "backslashreplace").decode("utf-8")
    return None
