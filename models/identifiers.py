"""Paper identifiers: DOIs, arXiv ids and the other external ids a paper may be looked up by.

One home for what an identifier looks like, so ingest (the stored DOI), the store's lookup table,
every command and endpoint that takes a paper id, and the Semantic Scholar API agree:

- a DOI is stored lower case, without `https://doi.org/` or `doi:` (DOIs are case-insensitive);
- an arXiv id is stored without its version (`2206.03001v2` -> `2206.03001`): the id names the
  work, the version one revision of it; old style ids keep their archive (`hep-th/9901001`);
- a work key joins papers that are versions of one work by title and first author (search/versions.py).

`paper_keys(paper)` is every key a stored paper can be found by; `lookup_keys(text)` every key a
string a user typed may mean (a DOI, an arXiv id, `DOI:...`, `ARXIV:...`, `CorpusId:...`,
`PMID:...`, `URL:...`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

# Key kinds, as stored in the index's identifiers table.
DOI, ARXIV, CORPUS_ID, PMID, URL, WORK = "doi", "arxiv", "corpusid", "pmid", "url", "work"
KINDS = (DOI, ARXIV, CORPUS_ID, PMID, URL, WORK)

_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
# 10.48550/arXiv.2206.03001: the DOI arXiv registers for each of its papers.
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)
_ARXIV_NEW = re.compile(r"^(\d{4}\.\d{4,5})(?:v\d+)?$")
_ARXIV_OLD = re.compile(r"^([a-z][a-z.-]*(?:\.[a-z]{2})?/\d{7})(?:v\d+)?$", re.IGNORECASE)
_ARXIV_PREFIX = re.compile(r"^arxiv:\s*", re.IGNORECASE)
_ARXIV_URL = re.compile(r"^(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/(.+?)(?:\.pdf)?/?$",
                        re.IGNORECASE)
# S2's id prefixes (`DOI:`, `ARXIV:`, `CorpusId:`, `PMID:`, `URL:`), case-insensitive.
_S2_PREFIX = re.compile(r"^(doi|arxiv|corpusid|pmid|url):\s*(.+)$", re.IGNORECASE)
# Record fields (top level or in an S2 `externalIds` object) that may hold an arXiv id.
_ARXIV_FIELDS = ("arxiv_id", "arxiv", "arxivId", "ArXiv", "eprint")
_CORPUS_FIELDS = ("corpusId", "corpusid", "corpus_id", "CorpusId")
_PMID_FIELDS = ("pmid", "PMID", "PubMed")
# Titles shorter than this ("Introduction", "Editorial") join unrelated papers; they get no work key.
_MIN_WORK_TITLE = 20


def normalize_doi(text: Any) -> str | None:
    """The DOI in `text` in its stored form (lower case, no resolver or `doi:` prefix), or None."""
    if not isinstance(text, str):
        return None
    doi = _DOI_PREFIX.sub("", text.strip()).strip()
    return doi.lower() if _DOI.match(doi) else None


def normalize_arxiv(text: Any) -> str | None:
    """The arXiv id in `text` without its version (`arXiv:2206.03001v2` -> `2206.03001`), or None.

    Takes the bare id, an `arXiv:` prefix, an abs/pdf URL and arXiv's own DOI (10.48550/arXiv.X).
    """
    if not isinstance(text, str) or ("." not in text and "/" not in text):
        return None  # every form above has one (a corpus's own ids, "4983", are checked for each paper)
    value = text.strip()
    doi = normalize_doi(value)
    if doi is not None:
        match = _ARXIV_DOI.match(doi)
        if match is None:
            return None
        value = match.group(1)
    url = _ARXIV_URL.match(value)
    if url:
        value = url.group(1)
    value = _ARXIV_PREFIX.sub("", value)
    new = _ARXIV_NEW.match(value)
    if new:
        return new.group(1)
    old = _ARXIV_OLD.match(value)
    return old.group(1).lower() if old else None


def _normalize_url(text: Any) -> str | None:
    """A URL compared without its scheme, `www.`, case of the host or trailing slash."""
    if not isinstance(text, str) or "://" not in text:
        return None
    rest = text.strip().split("://", 1)[1]
    host, _, path = rest.partition("/")
    host = host.lower().removeprefix("www.")
    return f"{host}/{path}".rstrip("/") if host else None


def _whole_number(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    return None


def _first(fields: tuple[str, ...], *records: Mapping[str, Any]) -> Any:
    for record in filter(None, records):  # most papers have no extra fields: nothing to look up
        for name in fields:
            if record.get(name) not in (None, ""):
                return record[name]
    return None


def arxiv_of(paper) -> str | None:
    """The paper's arXiv id: from its fields, its paper_id, its url or an arXiv DOI, in that order."""
    extra = paper.extra or {}
    external = extra.get("externalIds") if isinstance(extra.get("externalIds"), dict) else {}
    for candidate in (_first(_ARXIV_FIELDS, extra, external), paper.paper_id, paper.url, paper.doi):
        found = normalize_arxiv(candidate)
        if found is not None:
            return found
    return None


_LATEX = re.compile(r"\\[a-z]+|[{}$]")
_NOT_WORD = re.compile(r"[^\w]+")
# A bytes.translate table turning every byte that is not an ASCII word character (`\w`) into a
# space: for ASCII text, `_NOT_WORD` (and the `[{}$]` of `_LATEX`) in one C-level pass.
_ASCII_WORD_ONLY = bytes(code if code < 128 and re.fullmatch(r"\w", chr(code)) else 32 for code in range(256))


def normalize_title(title: str) -> str:
    """A title compared without case, accents, punctuation, LaTeX markup or extra spaces."""
    title = title or ""
    return _normalize_ascii_title(title) if title.isascii() else _normalize_any_title(title)


def _normalize_any_title(title: str) -> str:
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _LATEX.sub(" ", text)
    return " ".join(_NOT_WORD.sub(" ", text).split())


def _normalize_ascii_title(title: str) -> str:
    """`normalize_title` for ASCII text, ~15x faster (a build normalises every stored title):
    NFKD leaves ASCII as it is and no ASCII character is a combining mark, so only the lower-casing,
    the LaTeX commands (rare: only with a backslash) and the non-word characters remain."""
    text = title.lower()
    if "\\" in text:
        text = _LATEX.sub(" ", text)
    return b" ".join(text.encode("ascii").translate(_ASCII_WORD_ONLY).split()).decode("ascii")


def _surname(author: str) -> str:
    """An author's family name, for comparing "J. Smith", "John Smith" and "Smith, John"."""
    name = author.split(",")[0] if "," in author else (author.split() or [""])[-1]
    return normalize_title(name)


def work_key(paper) -> str | None:
    """`title|surname|year`: the normalised title, the first author's family name and the year.

    Keys equal but for years at most one apart are versions of one work (search/versions.py); a
    paper without a year, an author or a title of some length has none.
    """
    if not paper.authors or paper.year is None:
        return None  # checked first: a corpus without authors or years then normalises no title
    title = normalize_title(paper.title)
    if len(title) < _MIN_WORK_TITLE:
        return None
    surname = _surname(paper.authors[0])
    return f"{title}|{surname}|{paper.year}" if surname else None


def paper_keys(paper) -> list[tuple[str, str]]:
    """Every (kind, value) a stored paper can be looked up or grouped by."""
    extra = paper.extra or {}
    external = extra.get("externalIds") if isinstance(extra.get("externalIds"), dict) else {}
    keys = [(DOI, normalize_doi(paper.doi)), (ARXIV, arxiv_of(paper)),
            (CORPUS_ID, _whole_number(_first(_CORPUS_FIELDS, extra, external))),
            (PMID, _whole_number(_first(_PMID_FIELDS, extra, external))),
            (URL, _normalize_url(paper.url)), (WORK, work_key(paper))]
    return list(dict.fromkeys((kind, value) for kind, value in keys if value))


def lookup_keys(text: str) -> list[tuple[str, str]]:
    """The (kind, value) keys a typed identifier may mean; empty when it looks like none.

    A bare DOI or arXiv id (any form above) is recognised as such; S2's prefixes name the kind.
    """
    text = (text or "").strip()
    prefixed = _S2_PREFIX.match(text)
    kind, value = (prefixed.group(1).lower(), prefixed.group(2).strip()) if prefixed else (None, text)
    if kind == CORPUS_ID or kind == PMID:
        number = _whole_number(value)
        return [(kind, number)] if number else []
    if kind == URL:
        found = [(ARXIV, normalize_arxiv(value)), (DOI, normalize_doi(value)), (URL, _normalize_url(value))]
        return [(k, v) for k, v in found if v]
    keys = []
    if kind in (None, DOI, ARXIV) and normalize_doi(value):
        keys.append((DOI, normalize_doi(value)))
    if kind in (None, DOI, ARXIV) and normalize_arxiv(value):
        keys.append((ARXIV, normalize_arxiv(value)))
    if kind is None and not keys and _normalize_url(value):
        keys.append((URL, _normalize_url(value)))
    return keys
