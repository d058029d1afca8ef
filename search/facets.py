"""Facet counts and date order over the candidates a ranking considered, and the corpus summary.

A ranking looks at more papers than it returns (hybrid fuses the top HYBRID_DEPTH of each side),
so the counts describe those candidates: "of the papers this query found, how many per year and
per category". Counting reads three short columns of those few hundred rows (IndexStore.facet_rows)
and counts in Python: at 100k papers a hybrid search with facets cost 1.22x the wall time and
+2.4 ms CPU of one without (`papersearch bench facets`, docs in benchmarks/facets.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from models.errors import InvalidQuery

FACET_FIELDS = ("year", "category", "venue")
SORTS = ("relevance", "date")
# The fewest candidates facets and date order look at, whatever the page size: the hybrid depth,
# so a dense or lexical search with facets counts over as many papers as a hybrid one.
FACET_DEPTH = 100
# Values listed per facet (the most frequent; years are then listed newest first).
FACET_VALUES = 20
# Categories and examples on the landing view.
CORPUS_TOP_CATEGORIES = 12
CORPUS_EXAMPLES = 4
EXAMPLE_WORDS = 6


def checked_facets(names: Iterable[str] | str | None) -> tuple[str, ...]:
    """Facet names from a list or a comma-separated string; unknown ones are an InvalidQuery naming them."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = names.split(",")
    wanted = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    unknown = [n for n in wanted if n not in FACET_FIELDS]
    if unknown:
        raise InvalidQuery(f"Unknown facet {', '.join(map(repr, unknown))}; choose from {', '.join(FACET_FIELDS)}.")
    return wanted


def check_sort(sort: str) -> None:
    if sort not in SORTS:
        raise InvalidQuery(f"Unknown sort {sort!r}; choose one of: {', '.join(SORTS)}.")


def needs_candidates(facets: Sequence[str], sort: str) -> bool:
    """Whether a request looks past its own page (so the ranking must reach FACET_DEPTH)."""
    return bool(facets) or sort != "relevance"


def apply(store, rowids: np.ndarray, scores: np.ndarray, facets: Sequence[str], sort: str,
          ) -> tuple[np.ndarray, np.ndarray, dict[str, list[dict]]]:
    """The ranking in `sort` order and the facet counts of its candidates."""
    if not needs_candidates(facets, sort) or len(rowids) == 0:
        return rowids, scores, {name: [] for name in facets}
    rows = {row[0]: row for row in store.facet_rows(rowids.tolist())}
    if sort == "date":
        rowids, scores = date_order(rowids, scores, [rows[r][1] if r in rows else None for r in rowids.tolist()])
    return rowids, scores, count(rows.values(), facets)


def date_order(rowids: np.ndarray, scores: np.ndarray, years: Sequence[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Newest first, papers without a year last; within a year the ranking's own order (stable)."""
    keys = np.array([-(year if year is not None else -10_000) for year in years], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    return rowids[order], scores[order]


def count(rows: Iterable[tuple], facets: Sequence[str]) -> dict[str, list[dict]]:
    """{facet: [{"value", "count"}, ...]} over (rowid, year, categories JSON, venue) rows."""
    counters = {name: Counter() for name in facets}
    for _, year, categories, venue in rows:
        if "year" in counters and year is not None:
            counters["year"][year] += 1
        if "category" in counters:
            counters["category"].update(set(json.loads(categories)))
        if "venue" in counters and venue:
            counters["venue"][venue] += 1
    out = {}
    for name, counter in counters.items():
        top = counter.most_common(FACET_VALUES)
        if name == "year":
            top.sort(key=lambda item: -item[0])
        out[name] = [{"value": value, "count": number} for value, number in top]
    return out


def corpus_summary(store) -> dict:
    """What the index holds, for the landing view: papers, year range, top categories, example queries.

    Reads every row's year, categories and venue once (callers cache it per generation); the
    examples are the opening words of the newest paper's title in each of the top categories.
    """
    rows = store.facet_rows()
    counts = count(rows, ("category",))
    counts["category"] = counts["category"][:CORPUS_TOP_CATEGORIES]
    years = [row[1] for row in rows if row[1] is not None]
    newest: dict[str, tuple[int, int]] = {}
    wanted = [item["value"] for item in counts["category"][:CORPUS_EXAMPLES]]
    for rowid, year, categories, _ in rows:
        for category in set(json.loads(categories)) & set(wanted):
            if (year or 0, rowid) > newest.get(category, (-1, -1)):
                newest[category] = (year or 0, rowid)
    papers = store.papers_by_rowid([rowid for _, rowid in newest.values()])
    examples = [example_query(papers[rowid].title) for category in wanted
                if (rowid := newest.get(category, (0, None))[1]) in papers]
    return {"papers": len(rows), "year_min": min(years, default=None), "year_max": max(years, default=None),
            "categories": counts["category"], "papers_with_venue": sum(1 for row in rows if row[3]),
            "examples": list(dict.fromkeys(e for e in examples if e))}


def example_query(title: str) -> str:
    """A short query from a title: the part before a colon, at most EXAMPLE_WORDS words."""
    head = title.split(":", 1)[0] if ":" in title[:80] and len(title.split(":", 1)[0].split()) >= 2 else title
    return " ".join(head.split()[:EXAMPLE_WORDS]).strip(" ,.;")
