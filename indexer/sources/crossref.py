"""Crossref works: REST API pages (`{"message": {"items": [...]}}`), single works
(`{"message": {...}}`), the public data file's parts (`{"items": [...]}`, gzip) and items one per line.

The JATS abstract (`<jats:p>`, `<jats:title>Abstract</jats:title>`) is stripped to text, the year
is the first of `issued.date-parts`, the container title is the venue. Crossref escapes `&` in
titles as `&amp;`; they are unescaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexer.records import Rejection
from indexer.sources.base import Locator, clean_doi, collapse, json_items, strip_markup

NAME = "crossref"
RECORD_MARK = b'"is-referenced-by-count"'  # one per work (references have none)


# Keys of Crossref's own records; CSL JSON (a reference manager's export) shares DOI and
# container-title but has none of these, and its title is a string, not a list.
_CROSSREF_KEYS = ("member", "prefix", "deposited", "indexed", "reference-count", "is-referenced-by-count")


def sniff(first: dict) -> bool:
    return "DOI" in first and not isinstance(first.get("title"), str) and any(k in first for k in _CROSSREF_KEYS)


def read(path: Path, joins=None) -> Iterator[tuple[str, Any] | Rejection]:
    for item in json_items(path, Locator(path)):
        if isinstance(item, Rejection) or not isinstance(item[1], dict):
            yield item
            continue
        yield item[0], to_raw(item[1])


def _first_text(value: Any) -> str | None:
    """Crossref's text fields are lists ("title": ["..."]): the first non-empty one, unescaped."""
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str) and text.strip():
            return collapse(html.unescape(text))
    return None


def _year(work: dict) -> Any:
    for key in ("issued", "published", "published-print", "published-online"):
        parts = (work.get(key) or {}).get("date-parts") if isinstance(work.get(key), dict) else None
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0] and parts[0][0] is not None:
            return parts[0][0]
    return None


def _authors(work: dict) -> list[str]:
    names = []
    for author in work.get("author") or ():
        if not isinstance(author, dict):
            continue
        name = " ".join(p for p in (author.get("given"), author.get("family")) if isinstance(p, str) and p)
        name = name or author.get("name")
        if isinstance(name, str) and name:
            names.append(name)
    return names


def to_raw(work: dict) -> dict:
    """One Crossref work as a raw record: the DOI is its id."""
    doi = clean_doi(work.get("DOI")) or work.get("DOI")
    raw = {
        "paper_id": doi,
        "title": _first_text(work.get("title")),
        "abstract": strip_markup(work.get("abstract")) if isinstance(work.get("abstract"), str) else None,
        "authors": _authors(work),
        "year": _year(work),
        "categories": [s for s in work.get("subject") or () if isinstance(s, str)],
        "venue": _first_text(work.get("container-title")),
        "url": work.get("URL") if isinstance(work.get("URL"), str) else None,
        "doi": doi,
        "source": NAME,
        "type": work.get("type"),
    }
    return {k: v for k, v in raw.items() if v not in (None, "", [])}
