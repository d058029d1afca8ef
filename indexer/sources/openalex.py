"""OpenAlex works: snapshot parts (`works/updated_date=*/part_*.gz`, one work per line) and API
pages (`{"meta": ..., "results": [...]}`).

The abstract is rebuilt from `abstract_inverted_index` (word -> positions); positions no word
claims are gaps, left out with a note. Retracted works and paratext (front matter, indexes) are
skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexer.records import Rejection
from indexer.sources.base import Locator, Note, Skipped, clean_doi, collapse, json_items

NAME = "openalex"
RECORD_MARK = b'"abstract_inverted_index"'  # one per work, in every shape
_PREFIX = "https://openalex.org/"
# Older records have concepts, not topics; levels 0-1 are fields ("Biology"), deeper ones are noise.
_CONCEPT_LEVELS = (0, 1)


def sniff(first: dict) -> bool:
    """Whether a JSON record is an OpenAlex work."""
    identifier = first.get("id")
    return (isinstance(identifier, str) and identifier.startswith(_PREFIX + "W")) or "abstract_inverted_index" in first


def read(path: Path, joins=None) -> Iterator[tuple[str, dict] | Rejection | Skipped | Note]:
    for item in json_items(path, Locator(path)):
        if isinstance(item, Rejection):
            yield item
            continue
        location, work = item
        if not isinstance(work, dict):
            yield location, work  # the decoder names what it is instead
            continue
        if work.get("is_retracted") is True:
            yield Skipped(location, "retracted")
            continue
        if work.get("is_paratext") is True or work.get("type") == "paratext":
            yield Skipped(location, "paratext")
            continue
        abstract, problem = rebuild_abstract(work.get("abstract_inverted_index"))
        if problem:
            yield Note(location, f"work {_short(work.get('id'))!r}: abstract_inverted_index {problem}")
        yield location, to_raw(work, abstract)


def rebuild_abstract(index: Any) -> tuple[str, str | None]:
    """(abstract text, what was wrong with the index or None). Gaps are skipped, words kept in order."""
    if index is None:
        return "", None
    if not isinstance(index, dict):
        return "", f"is not an object (got {type(index).__name__}); indexed without an abstract"
    words: dict[int, str] = {}
    for word, positions in index.items():
        for position in positions if isinstance(positions, list) else ():
            if isinstance(position, int) and not isinstance(position, bool) and 0 <= position < 1_000_000:
                words.setdefault(position, word)
    if not words:
        return "", None
    last = max(words)
    missing = last + 1 - len(words)
    text = " ".join(words[p] for p in sorted(words))
    problem = f"has {missing} gap(s) in positions 0-{last}; the abstract is rebuilt from the words present" \
        if missing else None
    return text, problem


def _short(identifier: Any) -> Any:
    return identifier.removeprefix(_PREFIX) if isinstance(identifier, str) else identifier


def _authors(work: dict) -> list[str]:
    names = []
    for authorship in work.get("authorships") or ():
        if isinstance(authorship, dict):
            author = authorship.get("author") or {}
            name = author.get("display_name") if isinstance(author, dict) else None
            name = name or authorship.get("raw_author_name")
            if isinstance(name, str) and name:
                names.append(name)
    return names


def _categories(work: dict) -> list[str]:
    topics = [t.get("display_name") for t in work.get("topics") or () if isinstance(t, dict)]
    if not topics:
        topics = [c.get("display_name") for c in work.get("concepts") or ()
                  if isinstance(c, dict) and c.get("level") in _CONCEPT_LEVELS]
    return list(dict.fromkeys(t for t in topics if isinstance(t, str) and t))


def _ids(work: dict) -> dict:
    ids = work.get("ids") if isinstance(work.get("ids"), dict) else {}
    out = {}
    for key, value in ids.items():
        if key in ("openalex", "doi") or not isinstance(value, (str, int)):
            continue
        out[key] = str(value).rsplit("/", 1)[-1]  # https://pubmed.ncbi.nlm.nih.gov/29456894 -> 29456894
    return out


def to_raw(work: dict, abstract: str) -> dict:
    """One OpenAlex work as a raw record."""
    location = work.get("primary_location") if isinstance(work.get("primary_location"), dict) else {}
    source = location.get("source") if isinstance(location.get("source"), dict) else {}
    doi = clean_doi(work.get("doi"))
    raw = {
        "paper_id": _short(work.get("id")),
        "title": work.get("title") if work.get("title") is not None else work.get("display_name"),
        "abstract": collapse(abstract),
        "authors": _authors(work),
        "year": work.get("publication_year"),
        "categories": _categories(work),
        "venue": source.get("display_name"),
        "url": location.get("landing_page_url") or (f"https://doi.org/{doi}" if doi else None),
        "doi": doi,
        "source": NAME,
        "type": work.get("type"),
        "ids": _ids(work),
    }
    return {k: v for k, v in raw.items() if v not in (None, "", [], {})}
