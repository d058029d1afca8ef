"""Versions of one work: a preprint and its published version are shown once, the others listed.

Two papers are versions of one work when they share a DOI, share an arXiv id, or have the same
work key (normalised title + first author's family name, models.identifiers.work_key) with years
at most one apart; a work is the transitive closure of that. Groups are found at query time from
the index's identifiers table, for the papers a ranking reaches: a write never has to re-group
anything, and a page costs a few indexed lookups (docs/versions.md has the figures).

Paging stays consistent: a work's members do not depend on the ranking, so keeping the first
(best-ranked) member of each work turns the ranking's prefix of length n into a prefix of the
collapsed list, whatever n is; the engine only fetches the ranking deeper until the page is full.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from models.identifiers import ARXIV, DOI, WORK
from models.paper import Hit

# Key kinds that make two papers versions of one work.
_GROUPING_KINDS = (DOI, ARXIV, WORK)
# Hops of "shares a key with" followed from the ranked papers: a chain preprint -> DOI -> journal
# version -> title -> proceedings version is two; more is rare and each hop costs two queries.
MAX_HOPS = 3
# How much deeper than the page the first fetch of a ranking goes, so that a page with a few
# collapsed versions is usually filled in one go.
FETCH_SLACK = 2


def _neighbour_keys(key: tuple[str, str]) -> list[tuple[str, str]]:
    """The keys that join `key`: itself, and for a work key the same title and author a year either side."""
    kind, value = key
    if kind != WORK:
        return [key]
    stem, _, year = value.rpartition("|")
    return [(WORK, f"{stem}|{int(year) + step}") for step in (-1, 0, 1)]


def works(store, paper_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """paper_id -> every paper id of its work (itself included, sorted) for the given stored papers."""
    parent: dict[tuple, tuple] = {}

    def find(node: tuple) -> tuple:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def union(a: tuple, b: tuple) -> None:
        parent[find(a)] = find(b)

    wanted = list(dict.fromkeys(paper_ids))
    expanded: set[str] = set()
    held: set[tuple[str, str]] = set()  # keys some paper holds
    looked_up: set[tuple[str, str]] = set()
    frontier = set(wanted)
    for _ in range(MAX_HOPS):
        for pid, keys in store.identifier_keys(frontier).items():
            for key in keys:
                if key[0] in _GROUPING_KINDS:
                    union(("paper", pid), key)
                    held.add(key)
        expanded |= frontier
        lookups = {near for key in held for near in _neighbour_keys(key)} - looked_up
        looked_up |= lookups
        holders = store.papers_with_keys(lookups)
        for key, pids in holders.items():
            held.add(key)
            for pid in pids:
                union(("paper", pid), key)
        for key in held:  # a work key joins the same title and author a year either side, when held
            for near in _neighbour_keys(key):
                if near in held:
                    union(key, near)
        frontier = {pid for pids in holders.values() for pid in pids} - expanded
        if not frontier:
            break
    members: dict[tuple, list[str]] = {}
    for node in list(parent):
        if node[0] == "paper":
            members.setdefault(find(node), []).append(node[1])
    return {pid: tuple(sorted(members.get(find(("paper", pid)), [pid]))) for pid in wanted}


def one_per_work(store, rowids, scores, limit: int, offset: int, inputs: Iterable[str] = ()) -> tuple[list, bool]:
    """The page [offset, offset + limit) of a ranking with one hit per work, and whether it is full.

    Each hit lists its work's other versions; the works of `inputs` (the papers a related or
    recommend request starts from) are left out, as the inputs themselves are.
    """
    papers = store.papers_by_rowid(rowids)
    ranked = [(papers[r], s) for r, s in zip(rowids.tolist(), scores.tolist(), strict=True) if r in papers]
    sources = list(store.resolve_ids(inputs).values()) if inputs else []
    groups = works(store, [paper.paper_id for paper, _ in ranked] + sources)
    seen = {groups[pid] for pid in sources}
    kept = []
    for paper, score in ranked:
        group = groups[paper.paper_id]
        if group not in seen:
            seen.add(group)
            kept.append((paper, score, group))
            if len(kept) == offset + limit:
                break
    hits = [Hit(paper=paper, score=score, rank=offset + number + 1,
                versions=tuple(pid for pid in group if pid != paper.paper_id))
            for number, (paper, score, group) in enumerate(kept[offset:])]
    return hits, len(kept) == offset + limit


def with_versions(store, hits: list) -> list:
    """The hits, each listing its work's other versions (for a page that shows every version)."""
    groups = works(store, [hit.paper.paper_id for hit in hits])
    return [replace(hit, versions=tuple(pid for pid in groups[hit.paper.paper_id] if pid != hit.paper.paper_id))
            for hit in hits]
