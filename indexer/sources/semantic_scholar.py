"""Semantic Scholar: Academic Graph API paper objects (`/paper/batch` arrays, `/paper/search` pages
`{"data": [...]}`, one object per line) and the bulk datasets (`papers` lines with `corpusid`).

The bulk `papers` dataset has no abstracts; they ship in the separate `abstracts` dataset. Given
both in one run, each paper gets its abstract by `corpusid` through `AbstractJoin`: the abstracts
files are loaded once into a temporary SQLite table on disk (keyed by corpusid), and the papers
look theirs up in batches. Neither dataset is held in memory, and neither needs sorting (the
parts are in no corpusid order).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from indexer.records import Rejection
from indexer.sources.base import Locator, clean_doi, json_items

NAME = "s2"
ABSTRACTS = "s2-abstracts"
RECORD_MARK = b'"paperId"'  # Graph API pages; the datasets have one paper per line
_LOOKUP_BATCH = 512
_LOAD_BATCH = 4096


def sniff(first: dict) -> bool:
    return "paperId" in first or ("corpusid" in first and "title" in first)


def sniff_abstracts(first: dict) -> bool:
    return "corpusid" in first and "abstract" in first and "title" not in first


class AbstractJoin:
    """The abstracts dataset of a run, by corpusid, in a temporary on-disk SQLite table."""

    def __init__(self, paths: Sequence[Path]):
        self._paths = list(paths)
        self._db: sqlite3.Connection | None = None
        self.rejected: list[Rejection] = []

    def _load(self) -> sqlite3.Connection:
        db = sqlite3.connect("")  # "" = a private temporary database on disk, gone on close
        db.execute("CREATE TABLE abstracts (corpusid INTEGER PRIMARY KEY, abstract TEXT NOT NULL)")
        for path in self._paths:
            rows = []
            for item in json_items(path, Locator(path)):
                if isinstance(item, Rejection):
                    self.rejected.append(item)
                    continue
                record = item[1]
                corpus_id = _corpus_id(record.get("corpusid")) if isinstance(record, dict) else None
                if corpus_id is None or not isinstance(record.get("abstract"), str):
                    self.rejected.append(Rejection(item[0], "abstracts record without a corpusid and an abstract"))
                    continue
                rows.append((corpus_id, record["abstract"]))
                if len(rows) >= _LOAD_BATCH:
                    db.executemany("INSERT OR REPLACE INTO abstracts VALUES (?, ?)", rows)
                    rows.clear()
            db.executemany("INSERT OR REPLACE INTO abstracts VALUES (?, ?)", rows)
        db.commit()
        return db

    def lookup(self, corpus_ids: Iterable[int]) -> dict[int, str]:
        if not self._paths:
            return {}
        if self._db is None:
            self._db = self._load()
        keys = list(dict.fromkeys(corpus_ids))
        marks = ",".join("?" * len(keys))
        return dict(self._db.execute(f"SELECT corpusid, abstract FROM abstracts WHERE corpusid IN ({marks})", keys))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def read(path: Path, joins: AbstractJoin | None = None) -> Iterator[tuple[str, Any] | Rejection]:
    """Paper objects or bulk `papers` lines; bulk lines without an abstract get theirs from `joins`."""
    pending: list[tuple[str, dict]] = []
    for item in json_items(path, Locator(path)):
        if isinstance(item, Rejection):
            yield item
            continue
        location, paper = item
        if paper is None:
            continue  # a /paper/batch answer holds null for each id it did not find
        if not isinstance(paper, dict):
            yield location, paper
            continue
        pending.append((location, to_raw(paper)))
        if len(pending) >= _LOOKUP_BATCH:
            yield from _joined(pending, joins)
            pending = []
    yield from _joined(pending, joins)


def _joined(pending: list[tuple[str, dict]], joins: AbstractJoin | None) -> Iterator[tuple[str, dict]]:
    wanted = [raw["corpusid"] for _, raw in pending if "abstract" not in raw and "corpusid" in raw]
    found = joins.lookup(wanted) if joins is not None and wanted else {}
    for location, raw in pending:
        if "abstract" not in raw and raw.get("corpusid") in found:
            raw["abstract"] = found[raw["corpusid"]]
        yield location, raw


def _corpus_id(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _get(paper: dict, *keys: str) -> Any:
    """The first of these keys present (Graph API camelCase, then the datasets' lowercase)."""
    for key in keys:
        if paper.get(key) is not None:
            return paper[key]
    return None


def _paper_id(paper: dict, corpus_id: int | None) -> str | None:
    if isinstance(paper.get("paperId"), str):
        return paper["paperId"]
    url = paper.get("url")
    if isinstance(url, str) and "/paper/" in url:
        return url.rstrip("/").rsplit("/", 1)[-1]  # the datasets' url ends in the paperId
    return f"CorpusId:{corpus_id}" if corpus_id is not None else None


def _categories(paper: dict) -> list[str]:
    fields = list(_get(paper, "fieldsOfStudy") or [])
    for entry in _get(paper, "s2FieldsOfStudy", "s2fieldsofstudy") or ():
        if isinstance(entry, dict) and isinstance(entry.get("category"), str):
            fields.append(entry["category"])
    return list(dict.fromkeys(f for f in fields if isinstance(f, str) and f))


def _venue(paper: dict) -> str | None:
    for candidate in (paper.get("venue"), (_get(paper, "journal") or {}).get("name"),
                      (_get(paper, "publicationVenue") or {}).get("name")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate
    return None


def to_raw(paper: dict) -> dict:
    """One S2 paper (either shape) as a raw record."""
    external = _get(paper, "externalIds", "externalids") or {}
    external = external if isinstance(external, dict) else {}
    corpus_id = _corpus_id(_get(paper, "corpusId", "corpusid")) or _corpus_id(external.get("CorpusId"))
    raw = {
        "paper_id": _paper_id(paper, corpus_id),
        "title": paper.get("title"),
        "abstract": paper.get("abstract"),
        "authors": [a.get("name") for a in paper.get("authors") or () if isinstance(a, dict) and a.get("name")],
        "year": paper.get("year"),
        "categories": _categories(paper),
        "venue": _venue(paper),
        "url": paper.get("url"),
        "doi": clean_doi(external.get("DOI")),
        "source": NAME,
        "corpusid": corpus_id,
        "ids": {k: str(v) for k, v in external.items() if v is not None and k not in ("DOI", "CorpusId")},
    }
    return {k: v for k, v in raw.items() if v not in (None, "", [], {})}
