"""A reference library as liked papers: which entries are in the index, which are not.

An entry is the indexed paper it names by identifier (its id, DOI or arXiv id, through the
store's paper lookup) or, failing that, the indexed paper whose title is the same once case,
accents, punctuation and spacing are set aside. The title candidates come from BM25 over the
title's own terms, so matching costs one small lexical query per entry, not a scan.
Entries found in neither way are recommended from by their own title and abstract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.identifiers import normalize_title
from models.paper import Paper
from search.lexical import query_terms

if TYPE_CHECKING:
    from search.engine import SearchEngine

# BM25 candidates whose titles are compared with an entry's; the same title ranks first or
# near it, since every one of its terms matches.
TITLE_CANDIDATES = 5


@dataclass(frozen=True)
class LibraryMatch:
    """How a library's entries met the index: entry id -> indexed paper id, and the rest."""

    matched: dict[str, str]
    unmatched: list[Paper]

    def counts(self) -> dict[str, int]:
        return {"entries": len(self.matched) + len(self.unmatched), "matched": len(self.matched),
                "unmatched": len(self.unmatched)}


def _identifiers(entry: Paper) -> list[str]:
    arxiv = entry.extra.get("arxiv_id")
    return [key for key in (entry.paper_id, entry.doi, arxiv if isinstance(arxiv, str) else None) if key]


def _by_identifier(engine: SearchEngine, entries: list[Paper]) -> dict[str, str]:
    """Entry id -> indexed paper id, for entries whose id, DOI or arXiv id the store knows."""
    keys = list(dict.fromkeys(key for entry in entries for key in _identifiers(entry)))
    # The store's one paper lookup, which resolves DOIs and arXiv ids as well as paper ids.
    found = {key: paper.paper_id for key, paper in engine.store.get_papers(keys).items()}
    matched = {}
    for entry in entries:
        hit = next((found[key] for key in _identifiers(entry) if key in found), None)
        if hit is not None:
            matched[entry.paper_id] = hit
    return matched


def _by_title(engine: SearchEngine, entry: Paper) -> str | None:
    wanted = normalize_title(entry.title)
    terms = query_terms(entry.title)
    if not wanted or not terms:
        return None
    rowids, _ = engine._lexical.top(terms, TITLE_CANDIDATES, None)
    for paper in engine.store.papers_by_rowid(rowids.tolist()).values():
        if normalize_title(paper.title) == wanted:
            return paper.paper_id
    return None


def match_library(engine: SearchEngine, entries: list[Paper]) -> LibraryMatch:
    """Each entry as an indexed paper (by identifier, then by title) or as an unmatched entry."""
    matched = _by_identifier(engine, entries)
    unmatched = []
    for entry in entries:
        if entry.paper_id in matched:
            continue
        found = _by_title(engine, entry)
        if found is None:
            unmatched.append(entry)
        else:
            matched[entry.paper_id] = found
    return LibraryMatch(matched, unmatched)
