"""The paper record, the search hit, and the one definition of the text that gets embedded."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

# The fields a Paper knows by name; anything else in an input record is kept in `extra`.
KNOWN_FIELDS = ("paper_id", "title", "abstract", "authors", "year", "categories", "venue", "url", "doi")
# The years a paper may carry, inclusive: the record decoder, the filters and the API schemas share them.
YEAR_MIN, YEAR_MAX = 1000, 2999


@dataclass(frozen=True)
class Paper:
    """One paper as stored and returned. `paper_id` is the external key (arXiv id, DOI...)."""

    paper_id: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    categories: tuple[str, ...] = ()
    venue: str | None = None
    url: str | None = None
    doi: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with list-valued authors/categories and the extra fields."""
        return {
            "paper_id": self.paper_id,
            "title": self.title,
            "abstract": self.abstract,
            "authors": list(self.authors),
            "year": self.year,
            "categories": list(self.categories),
            "venue": self.venue,
            "url": self.url,
            "doi": self.doi,
            "extra": dict(self.extra),
        }


def embed_text(paper: Paper) -> str:
    """The text the model sees for a paper: title and abstract joined by a space.

    This is BEIR's own convention (title + " " + text), so evaluation figures stay comparable
    with published ones.
    """
    if paper.abstract:
        return f"{paper.title} {paper.abstract}".strip()
    return paper.title.strip()


def content_hash(paper: Paper, model_fingerprint: str) -> str:
    """Hash of the embedded text and the model: equal hashes mean the stored vector is still right."""
    digest = hashlib.sha256()
    digest.update(model_fingerprint.encode())
    digest.update(b"\0")
    digest.update(embed_text(paper).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True)
class Hit:
    """A ranked search result: the paper, its score, its 1-based rank and an optional snippet.

    `versions` are the ids of the work's other versions (a preprint's published version...).
    """

    paper: Paper
    score: float
    rank: int
    snippet: str | None = None
    versions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The paper's fields plus score, rank and snippet, as the CLI and API return them."""
        out = self.paper.to_dict()
        out["score"] = round(float(self.score), 6)
        out["rank"] = self.rank
        if self.snippet is not None:
            out["snippet"] = self.snippet
        if self.versions:
            out["versions"] = list(self.versions)
        return out
