"""What a caller may ask for: filters on which papers may come back, and the search modes."""

from __future__ import annotations

from dataclasses import dataclass

# "dense" (embedding similarity), "lexical" (BM25) or "hybrid" (both, fused).
MODES = ("dense", "lexical", "hybrid")
DEFAULT_MODE = "hybrid"
# Related work and recommendations rank with the same modes; hybrid measured best on csfcube-dev
# (docs/quality.md, "Related work and recommendations").
RELATED_DEFAULT_MODE = "hybrid"
# What `papersearch eval --task` measures: free-text search, related-by-id, recommendations.
EVAL_TASKS = ("search", "related", "recommend")


@dataclass
class Filters:
    """Restrictions on which papers may be returned; all None means no restriction.

    `all_versions` shows every version of a work (preprint and published) instead of the
    best-ranked one (search/versions.py); it selects no rows, so `active` ignores it.
    """

    year_from: int | None = None
    year_to: int | None = None
    category: str | None = None
    author: str | None = None
    all_versions: bool = False

    def active(self) -> bool:
        return any(v not in (None, "") for v in (self.year_from, self.year_to, self.category, self.author))
