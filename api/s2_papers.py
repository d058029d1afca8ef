"""Papers as Semantic Scholar paper objects: the published field names, nothing invented.

A field is served from what the index knows (the table below); a field the record itself carries
under its S2 name (a record that came from S2, with `citationCount` in its extra fields) is served
as stored; any other published field is null. An unpublished field name is a 400, as S2 answers.
"""

from __future__ import annotations

import re
from typing import Any

from models.errors import InvalidQuery
from models.identifiers import ARXIV, CORPUS_ID, DOI, PMID, paper_keys
from models.paper import Paper

# Top-level paper fields of the Graph API (api.semanticscholar.org/api-docs/graph), and the
# sub-fields of authors; citations.* and references.* take the paper fields.
PAPER_FIELDS = (
    "paperId", "corpusId", "externalIds", "url", "title", "abstract", "venue", "publicationVenue", "year",
    "referenceCount", "citationCount", "influentialCitationCount", "isOpenAccess", "openAccessPdf",
    "fieldsOfStudy", "s2FieldsOfStudy", "publicationTypes", "publicationDate", "journal", "citationStyles",
    "authors", "citations", "references", "embedding", "tldr", "textAvailability",
)
AUTHOR_FIELDS = ("authorId", "externalIds", "url", "name", "affiliations", "homepage", "paperCount",
                 "citationCount", "hIndex")
_NESTED = {"authors": AUTHOR_FIELDS, "citations": PAPER_FIELDS, "references": PAPER_FIELDS,
           "embedding": ("specter_v1", "specter_v2")}
# What S2 answers when `fields` is absent.
DEFAULT_FIELDS = ("paperId", "title")
# The fields this index derives from its own columns (the rest are null unless the record has them).
SERVED = ("paperId", "corpusId", "externalIds", "url", "title", "abstract", "venue", "year", "authors",
          "fieldsOfStudy", "publicationDate", "journal")
# arXiv archives -> S2's fields of study, for papers whose record names no fields itself.
_ARCHIVE_FIELDS = {
    "cs": "Computer Science", "math": "Mathematics", "stat": "Mathematics", "q-bio": "Biology",
    "q-fin": "Economics", "econ": "Economics", "eess": "Engineering", "physics": "Physics",
    "astro-ph": "Physics", "cond-mat": "Physics", "gr-qc": "Physics", "hep-ex": "Physics", "hep-lat": "Physics",
    "hep-ph": "Physics", "hep-th": "Physics", "math-ph": "Physics", "nlin": "Physics", "nucl-ex": "Physics",
    "nucl-th": "Physics", "quant-ph": "Physics",
}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EXTERNAL_NAMES = {DOI: "DOI", ARXIV: "ArXiv", PMID: "PubMed", CORPUS_ID: "CorpusId"}


def parse_fields(text: str | None) -> list[str]:
    """The requested fields, checked against the published names (S2's 400 message otherwise)."""
    if text is None or not text.strip():
        return list(DEFAULT_FIELDS)
    fields = [name.strip() for name in text.split(",") if name.strip()]
    unknown = []
    for name in fields:
        top, _, sub = name.partition(".")
        if top not in PAPER_FIELDS or (sub and sub not in _NESTED.get(top, ())):
            unknown.append(name)
    if unknown:
        raise InvalidQuery(f"Unrecognized or unsupported fields: {unknown}")
    return fields


def fields_of_study(paper: Paper) -> list[str] | None:
    """The record's own S2 fields of study, else those of its arXiv categories, else None."""
    own = paper.extra.get("fieldsOfStudy")
    if isinstance(own, list):
        return own
    found = [_ARCHIVE_FIELDS.get(c.split(".")[0]) or _ARCHIVE_FIELDS.get(c) for c in paper.categories]
    return list(dict.fromkeys(f for f in found if f)) or None


def publication_date(paper: Paper) -> str | None:
    for name in ("publicationDate", "date"):
        value = paper.extra.get(name)
        if isinstance(value, str) and _ISO_DATE.match(value):
            return value
    return None


def _external_ids(paper: Paper) -> dict[str, Any]:
    out: dict[str, Any] = {}
    own = paper.extra.get("externalIds")
    if isinstance(own, dict):
        out.update(own)
    for kind, value in paper_keys(paper):
        if kind in _EXTERNAL_NAMES:
            name = _EXTERNAL_NAMES[kind]
            out.setdefault(name, int(value) if kind == CORPUS_ID else value)
    return out


def _authors(paper: Paper, sub: set[str]) -> list[dict[str, Any]]:
    wanted = sub or {"authorId", "name"}
    return [{name: (author if name == "name" else None) for name in ("authorId", *sorted(wanted - {"authorId"}))}
            for author in paper.authors]


def _served(paper: Paper, name: str, sub: set[str]) -> Any:
    if name == "paperId":
        return paper.paper_id
    if name == "externalIds":
        return _external_ids(paper)
    if name == "corpusId":
        return _external_ids(paper).get("CorpusId")
    if name == "abstract":
        return paper.abstract or None
    if name == "venue":
        return paper.venue or ""  # S2 answers "" for a paper without a venue
    if name == "authors":
        return _authors(paper, sub)
    if name == "fieldsOfStudy":
        return fields_of_study(paper)
    if name == "publicationDate":
        return publication_date(paper)
    if name == "journal":
        own = paper.extra.get("journal")
        return own if isinstance(own, dict) else ({"name": paper.venue} if paper.venue else None)
    return getattr(paper, name)  # title, year, url


def s2_paper(paper: Paper, fields: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One paper object with `fields` (paperId always first, as S2 does)."""
    wanted: dict[str, set[str]] = {"paperId": set()}
    for name in fields:
        top, _, sub = name.partition(".")
        wanted.setdefault(top, set())
        if sub:
            wanted[top].add(sub)
    out: dict[str, Any] = {}
    for name, sub in wanted.items():
        if name in SERVED:
            out[name] = _served(paper, name, sub)
        else:
            out[name] = paper.extra.get(name)  # the record's own value under the S2 name, else null
    return {**out, **(extra or {})}
