"""Ranked lists out: BibTeX, RIS, CSL-JSON, CSV and JSON Lines, for the CLI (`--format`) and the
API (`format=` or the Accept header). The one home of the writers and of citation keys.

Each writer is the inverse of a reader `papersearch index` has, so an export indexes back with
the same ids, titles, authors, years, DOIs and abstracts (tests/test_export_round_trip.py):

- BibTeX: values LaTeX-escaped (`latex_escape`, the inverse of the reader's decoding), the
  title in an extra pair of braces so styles keep its capitals, the paper id in `papersearch_id`;
- RIS: the paper id is the record's ID; a tag holds one line, so line breaks become spaces;
- CSL-JSON: `id` and `citation-key` are the citation key (what Pandoc and citeproc cite by), the
  paper id is in `custom.paper_id` (CSL-JSON 1.0.2's place for data of one's own);
- CSV: one row per hit, the columns `papersearch index` reads (authors joined by "; ");
- JSON Lines: the hits exactly as `--json` prints them.

Only the standard library is imported at the top: the CLI builds its parser from FORMATS.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

from indexer.citation_text import family_given, latex_escape
from indexer.library_formats import BIBTEX_TYPES
from models.paper import Hit, Paper

# Output format -> media type (what `format=` names and what an Accept header asks for).
MEDIA_TYPES = {
    "bibtex": "application/x-bibtex",
    "ris": "application/x-research-info-systems",
    "csl-json": "application/vnd.citationstyles.csl+json",
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
}
FORMATS = tuple(MEDIA_TYPES)
EXTENSIONS = {"bibtex": "bib", "ris": "ris", "csl-json": "json", "csv": "csv", "jsonl": "jsonl"}
# The API's own answer: `format=json` or an Accept header that takes JSON.
JSON = "json"
# The answers with a place for a snippet; a search for any other format computes none.
SHOWS_SNIPPETS = frozenset((JSON, "jsonl"))
_JSON_MEDIA = ("application/json", "application/*", "*/*")
_TITLE_STOPWORDS = frozenset(("a", "an", "the", "on", "of", "in", "for", "and", "to", "with", "from", "at", "by",
                              "is", "are", "towards", "toward", "via", "using", "about"))
CSV_COLUMNS = ("rank", "score", "paper_id", "title", "authors", "year", "venue", "doi", "url", "categories",
               "abstract")
_IN_BOOK = frozenset(("inproceedings", "incollection", "inbook", "conference"))
_CSL_TYPES = frozenset(("article", "article-journal", "article-magazine", "article-newspaper", "book", "chapter",
                        "dataset", "paper-conference", "report", "thesis", "software", "manuscript", "webpage",
                        "patent", "review", "entry-encyclopedia", "standard"))
_RIS_TYPES = frozenset(("JOUR", "BOOK", "CHAP", "CONF", "CPAPER", "THES", "RPRT", "GEN", "UNPB", "DATA", "COMP",
                        "ELEC", "EJOUR", "PAT", "MANSCPT", "STAND"))


# --- citation keys ------------------------------------------------------------------------------


# Letters that NFKD does not split into an ASCII letter and an accent.
_LATIN_LETTERS = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss", "Æ": "AE", "æ": "ae", "Œ": "OE",
                                "œ": "oe", "Đ": "D", "đ": "d", "Þ": "Th", "þ": "th", "ı": "i"})


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_LATIN_LETTERS))
    return re.sub(r"[^a-z0-9]", "", "".join(ch for ch in folded if not unicodedata.combining(ch)).lower())


def base_key(paper: Paper) -> str:
    """First author's family name + year + first significant title word: "zingale2019improved"."""
    first = paper.authors[0] if paper.authors else ""
    family = _ascii_word(first.split(",")[0] if "," in first else family_given(first)[0])  # "Last, First" too
    words = [w for w in (_ascii_word(w) for w in paper.title.split()) if w]
    word = next((w for w in words if w not in _TITLE_STOPWORDS), words[0] if words else "")
    return f"{family or 'anon'}{paper.year or 'nd'}{word}"


def citation_keys(papers: Sequence[Paper]) -> list[str]:
    """A unique key per paper, the same for the same set of papers whatever their order.

    Papers sharing a base key are taken in paper-id order: the first keeps it, the next get
    "a", "b", ... (then "aa", ...), skipping any key another paper already has.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    bases = [base_key(p) for p in papers]
    for paper, base in zip(papers, bases, strict=True):
        groups[base].append(paper.paper_id)
    taken = set(groups)
    key_of: dict[tuple[str, str], str] = {}
    for base, ids in groups.items():
        suffix = 0
        for position, paper_id in enumerate(sorted(set(ids))):
            key = base
            if position:
                while True:
                    suffix += 1
                    key = base + _letters(suffix)
                    if key not in taken:
                        break
                taken.add(key)
            key_of[(base, paper_id)] = key
    return [key_of[(base, p.paper_id)] for p, base in zip(papers, bases, strict=True)]


def _letters(n: int) -> str:
    """1 -> a, 26 -> z, 27 -> aa."""
    out = ""
    while n:
        n, rest = divmod(n - 1, 26)
        out = chr(ord("a") + rest) + out
    return out


# --- writers ------------------------------------------------------------------------------------


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _verbatim(value: str) -> str:
    """A DOI or URL as a BibTeX value: as given, unless its braces would end the value."""
    depth = 0
    for ch in value:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            break
    return value if depth == 0 else value.replace("{", "%7B").replace("}", "%7D")


def _bibtex_name(name: str) -> str:
    escaped = latex_escape(name)
    # A comma or a word "and" would split or reorder the name: braces keep it whole.
    return f"{{{escaped}}}" if "," in name or re.search(r"\band\b", name, re.IGNORECASE) else escaped


def to_bibtex(hits: Sequence[Hit]) -> str:
    papers = [h.paper for h in hits]
    entries = []
    for paper, key in zip(papers, citation_keys(papers), strict=True):
        kind = str(paper.extra.get("entry_type", "")).lower()
        kind = kind if kind in BIBTEX_TYPES else ("article" if paper.venue else "misc")
        arxiv = paper.extra.get("arxiv_id")
        fields = [
            ("title", f"{{{latex_escape(_one_line(paper.title))}}}"),
            ("author", " and ".join(_bibtex_name(a) for a in paper.authors)),
            ("year", str(paper.year) if paper.year else ""),
            ("booktitle" if kind in _IN_BOOK else "journal", latex_escape(paper.venue or "")),
            ("doi", _verbatim(paper.doi or "")),
            ("url", _verbatim(paper.url or "")),
            ("eprint", _verbatim(str(arxiv)) if isinstance(arxiv, str) else ""),
            ("archiveprefix", "arXiv" if isinstance(arxiv, str) else ""),
            ("primaryclass", latex_escape(paper.categories[0]) if paper.categories else ""),
            ("abstract", latex_escape(_one_line(paper.abstract))),
            ("papersearch_id", latex_escape(paper.paper_id)),
        ]
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
        entries.append(f"@{kind}{{{key},\n{body}\n}}\n")
    return "\n".join(entries)


def to_ris(hits: Sequence[Hit]) -> str:
    import rispy

    class _Writer(rispy.RisWriter):
        def set_header(self, count: int) -> str:
            return ""  # rispy numbers records ("1."), which is not RIS

    refs = []
    for hit in hits:
        paper = hit.paper
        kind = str(paper.extra.get("entry_type", "")).upper()
        names = [family_given(a) for a in paper.authors]
        ref = {
            "type_of_reference": kind if kind in _RIS_TYPES else ("JOUR" if paper.venue else "GEN"),
            "id": paper.paper_id,
            "title": _one_line(paper.title),
            "authors": [f"{family}, {given}" if given else family for family, given in names],
            "year": str(paper.year) if paper.year else None,
            "secondary_title": _one_line(paper.venue) or None,
            "doi": paper.doi,
            "urls": [paper.url] if paper.url else None,
            "keywords": list(paper.categories) or None,
            "abstract": _one_line(paper.abstract) or None,
        }
        refs.append({k: v for k, v in ref.items() if v})
    return rispy.dumps(refs, implementation=_Writer)


def csl_items(hits: Sequence[Hit]) -> list[dict]:
    papers = [h.paper for h in hits]
    items = []
    for paper, key in zip(papers, citation_keys(papers), strict=True):
        kind = str(paper.extra.get("entry_type", "")).lower()
        authors = []
        for name in paper.authors:
            family, given = family_given(name)
            authors.append({"family": family, "given": given} if given else {"literal": family})
        arxiv = paper.extra.get("arxiv_id")
        item = {
            "id": key, "citation-key": key,
            "type": kind if kind in _CSL_TYPES else ("article-journal" if paper.venue else "article"),
            "title": paper.title, "author": authors,
            "issued": {"date-parts": [[paper.year]]} if paper.year else None,
            "container-title": paper.venue, "DOI": paper.doi, "URL": paper.url,
            "number": f"arXiv:{arxiv}" if isinstance(arxiv, str) else None,
            "abstract": paper.abstract or None,
            "custom": {"paper_id": paper.paper_id},
        }
        items.append({k: v for k, v in item.items() if v not in (None, [], "")})
    return items


def to_csl_json(hits: Sequence[Hit]) -> str:
    return json.dumps(csl_items(hits), ensure_ascii=False, indent=2) + "\n"


def to_csv(hits: Sequence[Hit]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for hit in hits:
        paper = hit.paper
        writer.writerow([hit.rank, round(float(hit.score), 6), paper.paper_id, paper.title, "; ".join(paper.authors),
                         paper.year or "", paper.venue or "", paper.doi or "", paper.url or "",
                         " ".join(paper.categories), paper.abstract])
    return out.getvalue()


def to_jsonl(hits: Sequence[Hit]) -> str:
    return "".join(json.dumps(hit.to_dict(), ensure_ascii=False) + "\n" for hit in hits)


WRITERS = {"bibtex": to_bibtex, "ris": to_ris, "csl-json": to_csl_json, "csv": to_csv, "jsonl": to_jsonl}


def export(fmt: str, hits: Sequence[Hit]) -> str:
    """A ranked list in one of FORMATS."""
    return WRITERS[fmt](hits)


# --- HTTP: which format a request asks for, and the answer -------------------------------------


def _listing() -> str:
    return ", ".join(f"{name} ({media})" for name, media in (("json", "application/json"), *MEDIA_TYPES.items()))


def requested_format(format_param: str | None, accept: str | None) -> str:
    """The format a request asks for: `format=` first, else the Accept header; JSON by default.

    An unknown `format=` is a 400 and an Accept header that takes none of them a 406, both in
    the error shape and listing the formats.
    """
    from api.errors import ApiError

    if format_param is not None:
        name = format_param.strip().lower()
        if name == JSON or name in MEDIA_TYPES:
            return name
        raise ApiError(400, "unknown_format", f"Unknown format {format_param!r:.60}; choose one of: {_listing()}.")
    if not accept:
        return JSON
    ranges = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranges.append((-quality, position, media.lower()))
    by_media = {media: name for name, media in MEDIA_TYPES.items()}
    for _, _, media in sorted(ranges):
        if media in _JSON_MEDIA:
            return JSON
        if media in by_media:
            return by_media[media]
    raise ApiError(406, "not_acceptable", f"Cannot answer with {accept!r:.120}; this endpoint answers in: "
                                          f"{_listing()}. Or pass format=NAME.")


# For /openapi.json: the media types a ranked list may answer in, and the 406.
EXPORT_RESPONSES: dict = {
    200: {"description": "The ranked list: JSON, or an export format (format= or the Accept header)",
          "content": {media: {"schema": {"type": "string"}} for media in MEDIA_TYPES.values()}},
    406: {"description": "The Accept header takes none of the formats (listed in the message)",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
}


def export_response(fmt: str, hits: Sequence[Hit], name: str):
    """The ranked list as a download (`papersearch-NAME.EXT`) in an export format."""
    from fastapi.responses import Response

    return Response(export(fmt, hits), media_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="papersearch-{name}.{EXTENSIONS[fmt]}"',
                             "Vary": "Accept"})
