"""Reference-manager libraries in: BibTeX, RIS and CSL-JSON (what Zotero, Mendeley and JabRef export).

Framing only, as in indexer/ingest.py: each entry becomes (location, raw record, error), the
location being the line where the entry starts, and indexer/records.py decides every field of the
record. What is settled here, once for reading and writing:

- BibTeX: bibtexparser 2 splits the file into blocks (each with its line); `@string` macros and
  `#` concatenation are resolved here (bibtexparser 2 resolves only a whole-value macro), LaTeX
  accents, braces and commands are decoded with pylatexenc (bibtexparser's own dependency),
  math as text (`$\\alpha$` -> α). A field given twice keeps its first value, as BibTeX does;
- RIS: records are framed TY ... ER here (rispy has no line numbers and silently merges a record
  that lacks ER into the next one), then each one is read by rispy;
- CSL-JSON: the array is read item by item, so each item has its own line;
- names: "Last, First" (RIS) and family/given (CSL) become "First Last", the form Paper uses
  (indexer/citation_text.py, with the inverses the writers in api/result_formats.py use).

The paper id of an entry: our own export's `papersearch_id` (BibTeX), ID (RIS) or custom.paper_id
(CSL), else the entry's own key (BibTeX key, CSL id), else its DOI, else a hash of its title,
year and authors, so indexing the same library twice updates rather than duplicates.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexer.citation_text import first_last, latex_to_text

__all__ = ["BIBTEX_TYPES", "LIBRARY_FORMATS", "library_papers", "library_records", "read_library",
           "sniff_library_format"]

LIBRARY_FORMATS = ("bibtex", "ris", "csl-json")
# (location, raw record or None, error or None), as indexer/ingest.py's readers yield them.
Framed = tuple[str, "dict[str, Any] | None", "str | None"]

# BibTeX and biblatex entry types (lower case); anything else is a typo or a tool's private type.
BIBTEX_TYPES = frozenset((
    "article", "book", "booklet", "inbook", "incollection", "inproceedings", "conference", "manual",
    "mastersthesis", "misc", "phdthesis", "proceedings", "techreport", "unpublished",
    "online", "electronic", "www", "software", "dataset", "report", "thesis", "patent", "collection",
    "mvbook", "mvcollection", "mvproceedings", "mvreference", "bookinbook", "suppbook", "suppcollection",
    "suppperiodical", "periodical", "reference", "inreference", "set", "xdata", "artwork", "audio",
    "image", "jurisdiction", "legislation", "legal", "letter", "movie", "music", "performance", "review",
    "standard", "video", "preprint",
))
_BIBTEX_MONTHS = {m: name for m, name in zip(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
     "November", "December"), strict=True)}
# BibTeX fields read as LaTeX text; the rest (doi, url, eprint, ids) are taken verbatim.
_BIBTEX_TEXT_FIELDS = ("title", "abstract", "journal", "journaltitle", "booktitle", "keywords")
_BIBTEX_VENUE_FIELDS = ("journal", "journaltitle", "booktitle")
_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")


def _fallback_id(fmt: str, record: dict[str, Any]) -> str | None:
    """An id for an entry that names none: its DOI, else a hash of what identifies it."""
    if record.get("doi"):
        return record["doi"]
    if not record.get("title"):
        return None  # rejected for its missing title anyway
    seed = json.dumps([record.get("title"), record.get("year"), record.get("authors")], ensure_ascii=False)
    return f"{fmt}-{hashlib.sha256(seed.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v not in (None, "", [], {})}


# --- BibTeX ------------------------------------------------------------------------------------


def _split_top(raw: str) -> list[str]:
    """A raw BibTeX value split at `#` outside braces and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(raw):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == '"' and depth == 0:
            quoted = not quoted
        elif ch == "#" and depth == 0 and not quoted:
            parts.append(raw[start:i])
            start = i + 1
    parts.append(raw[start:])
    return [p.strip() for p in parts]


def _resolve(raw: str, macros: dict[str, str]) -> str:
    """A raw value ({...}, "...", a number, a macro, or those joined by #) as its text, LaTeX kept."""
    out = []
    for part in _split_top(raw):
        if len(part) >= 2 and (part[0], part[-1]) in (("{", "}"), ('"', '"')):
            out.append(part[1:-1])
        elif part.isdigit():
            out.append(part)
        else:  # a macro; BibTeX warns about an undefined one, its name says more than nothing
            out.append(macros.get(part.lower(), _BIBTEX_MONTHS.get(part.lower(), part)))
    return "".join(out)


def _bibtex_names(raw: str) -> list[str]:
    from bibtexparser.middlewares.names import (
        InvalidNameError,
        parse_single_name_into_parts,
        split_multiple_persons_names,
    )

    names = []
    for name in split_multiple_persons_names(raw):
        try:
            parts = parse_single_name_into_parts(name)
            joined = " ".join(" ".join(p) for p in (parts.first, parts.von, parts.last, parts.jr) if p)
        except InvalidNameError:
            joined = name
        names.append(" ".join(latex_to_text(joined).split()))
    return [n for n in names if n]


def _bibtex_record(entry, macros: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, str] = {}
    for field in entry.fields:  # a field given twice keeps its first value, as BibTeX does
        fields.setdefault(field.key.lower(), _resolve(str(field.value), macros))
    text = {k: " ".join(latex_to_text(fields[k]).split()) for k in _BIBTEX_TEXT_FIELDS if k in fields}
    prefix = (fields.get("archiveprefix") or fields.get("eprinttype") or "").lower()
    arxiv = fields.get("eprint") if prefix in ("arxiv", "") else None
    keywords = [k.strip() for k in re.split(r"[,;]", text.get("keywords", "")) if k.strip()]
    return _compact({
        "id": latex_to_text(fields["papersearch_id"]) if fields.get("papersearch_id") else entry.key,
        "title": text.get("title"),
        "abstract": text.get("abstract"),
        "authors": _bibtex_names(fields["author"]) if "author" in fields else None,
        "year": fields.get("year") or fields.get("date"),
        "venue": next((text[k] for k in _BIBTEX_VENUE_FIELDS if text.get(k)), None),
        "url": fields.get("url"),
        "doi": fields.get("doi"),
        "categories": [fields["primaryclass"]] if fields.get("primaryclass") else None,
        "arxiv_id": arxiv,
        "entry_type": entry.entry_type.lower(),
        "citation_key": entry.key,
        "keywords": keywords,
    })


def _bibtex_failure(block) -> str:
    from bibtexparser.exceptions import BlockAbortedException

    error = block.error
    if isinstance(error, BlockAbortedException):
        return ("the entry never closes: unbalanced braces or quotes "
                f"({' '.join(error.abort_reason.split())[:160]})")
    return f"unreadable BibTeX entry ({' '.join(str(error).split())[:160] or type(error).__name__})"


def _bibtex_records(text: str, name: str) -> Iterator[Framed]:
    import bibtexparser
    from bibtexparser import model

    # bibtexparser logs each block it cannot parse; each one is a rejection with its line here.
    logging.getLogger("bibtexparser").setLevel(logging.ERROR)
    library = bibtexparser.parse_string(text, parse_stack=[])  # values raw: macros resolved here
    macros: dict[str, str] = {}
    for block in library.blocks:
        location = f"{name}:{(block.start_line or 0) + 1}"
        if isinstance(block, model.String):
            macros[block.key.lower()] = _resolve(str(block.value), macros)
            continue
        if isinstance(block, (model.DuplicateFieldKeyBlock, model.DuplicateBlockKeyBlock)):
            block = block.ignore_error_block  # kept: first field value wins; the ingest plan takes the last id
        elif isinstance(block, model.ParsingFailedBlock):
            yield location, None, _bibtex_failure(block)
            continue
        if not isinstance(block, model.Entry):
            continue  # @preamble, @comment, text between entries
        kind = block.entry_type.lower()
        if kind not in BIBTEX_TYPES:
            yield location, None, (f"unknown entry type @{block.entry_type} (expected a BibTeX or biblatex "
                                   "type such as @article, @inproceedings, @book, @misc)")
            continue
        yield location, _bibtex_record(block, macros), None


# --- RIS ---------------------------------------------------------------------------------------


def _ris_record(ref: dict[str, Any]) -> dict[str, Any]:
    def first(*keys: str) -> Any:
        for key in keys:
            value = ref.get(key)
            if isinstance(value, list):
                value = next((v for v in value if v), None)
            if value:
                return value
        return None

    authors = [first_last(a) for a in (ref.get("authors") or []) + (ref.get("first_authors") or [])]
    record = _compact({
        "title": first("title", "primary_title"),
        "abstract": first("abstract", "notes_abstract"),
        "authors": authors,
        "year": first("year", "publication_year", "date"),
        "venue": first("secondary_title", "journal_name", "alternate_title3", "alternate_title2"),
        "url": first("urls"),
        "doi": first("doi"),
        "entry_type": ref.get("type_of_reference"),
        "keywords": ref.get("keywords"),
    })
    return {"id": ref.get("id") or _fallback_id("ris", record), **record}


def _ris_records(text: str, name: str) -> Iterator[Framed]:
    import rispy

    start, lines = None, []

    def parsed() -> Framed:
        location = f"{name}:{start}"
        try:
            refs = rispy.loads("\n".join(lines) + "\nER  - \n")
        except Exception as exc:  # rispy raises plain IOError/ValueError for what it cannot read
            return location, None, f"unreadable RIS record ({str(exc)[:160] or type(exc).__name__})"
        if len(refs) != 1:
            return location, None, "unreadable RIS record"
        return location, _ris_record(refs[0]), None

    for number, line in enumerate(text.splitlines(), start=1):
        match = _RIS_TAG.match(line.lstrip("\ufeff").rstrip())
        tag = match.group(1) if match else None
        if tag == "TY":
            if start is not None:
                yield (f"{name}:{start}", None,
                       f"RIS record has no 'ER  -' end tag (the next record starts at line {number})")
            start, lines = number, [line.lstrip("\ufeff")]
        elif start is None:
            continue  # text outside records: blank lines, a writer's "1." counters
        elif tag == "ER":
            yield parsed()
            start, lines = None, []
        else:
            lines.append(line)
    if start is not None:
        yield f"{name}:{start}", None, "RIS record has no 'ER  -' end tag (the file ends inside it)"


# --- CSL-JSON ----------------------------------------------------------------------------------


def _csl_name(person: Any) -> str | None:
    if not isinstance(person, dict):
        return person if isinstance(person, str) else None
    if person.get("literal"):
        return str(person["literal"])
    parts = (person.get("given"), person.get("dropping-particle"), person.get("non-dropping-particle"),
             person.get("family"), person.get("suffix"))
    return " ".join(str(p) for p in parts if p) or None


def _csl_year(issued: Any) -> Any:
    if isinstance(issued, dict):
        parts = issued.get("date-parts")
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
            return parts[0][0]
        return issued.get("raw") or issued.get("literal")
    return issued


def _csl_record(item: dict[str, Any]) -> dict[str, Any]:
    custom = item.get("custom") if isinstance(item.get("custom"), dict) else {}
    authors = item.get("author") if isinstance(item.get("author"), list) else []
    number = item.get("number")
    keywords = item.get("keyword")
    record = _compact({
        "title": item.get("title"),
        "abstract": item.get("abstract"),
        "authors": [n for n in map(_csl_name, authors) if n],
        "year": _csl_year(item.get("issued")),
        "venue": item.get("container-title"),
        "url": item.get("URL"),
        "doi": item.get("DOI"),
        "arxiv_id": custom.get("arxiv_id") or (number if isinstance(number, str) and "arxiv" in number.lower()
                                               else None),
        "entry_type": item.get("type"),
        "citation_key": item.get("citation-key"),
        "keywords": [k.strip() for k in keywords.split(",") if k.strip()] if isinstance(keywords, str) else None,
    })
    own = custom.get("paper_id") or item.get("id")
    return {"id": own if own not in (None, "") else _fallback_id("csl", record), **record}


def _csl_records(text: str, name: str) -> Iterator[Framed]:
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def where(offset: int) -> str:
        return f"{name}:{bisect.bisect_left(newlines, offset) + 1}"

    decoder = json.JSONDecoder()
    position = len(text) - len(text.lstrip("\ufeff \t\r\n"))
    if text.startswith("{", position):  # one item on its own
        text = text[:position] + "[" + text[position:] + "]"
    if not text.startswith("[", position):
        yield where(position), None, "a CSL-JSON library is a JSON array of items"
        return
    position += 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return
        try:
            item, end = decoder.raw_decode(text, position)
        except ValueError as exc:  # the rest of the array cannot be framed
            yield where(position), None, f"malformed JSON ({getattr(exc, 'msg', exc)})"
            return
        if isinstance(item, dict):
            yield where(position), _csl_record(item), None
        else:
            yield where(position), None, f"expected a CSL item (a JSON object), got {type(item).__name__}"
        position = end


# --- entry points ------------------------------------------------------------------------------

_READERS = {"bibtex": _bibtex_records, "ris": _ris_records, "csl-json": _csl_records}


def library_records(text: str, fmt: str, name: str = "<library>") -> Iterator[Framed]:
    """Each entry of a library's text as (NAME:LINE, raw record, None) or (NAME:LINE, None, reason)."""
    return _READERS[fmt](text, name)


def library_papers(text: str, fmt: str | None = None, name: str = "library") -> tuple[list, list]:
    """A library's text (an upload) as (Papers, Rejections); `fmt` None tells it from the text."""
    from indexer.records import Parsed, decode
    from models.errors import UnknownFormat

    fmt = fmt or sniff_library_format(name, text[:1 << 16])
    if fmt not in _READERS:
        raise UnknownFormat(f"cannot tell the library's format from its text; name it: {', '.join(LIBRARY_FORMATS)}.")
    papers, rejected = [], []
    for location, record, error in library_records(text, fmt, name):
        result = decode(location, record) if error is None else None
        if isinstance(result, Parsed):
            papers.append(result.paper)
        else:
            rejected.append(result or f"{location}: {error}")
    return papers, [str(r) for r in rejected]


def read_library(path: Path, fmt: str) -> Iterator[Framed]:
    """A library file's entries (see `library_records`); a file that is not UTF-8 is one rejection."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        yield f"{path}:{line}", None, f"not valid UTF-8 (byte {exc.start})"
        return
    yield from library_records(text, fmt, str(path))


def sniff_library_format(name: str, head: str) -> str | None:
    """The library format a file holds, told by its name or its first characters; None when none."""
    lowered = name.lower()
    if lowered.endswith((".bib", ".bibtex")):
        return "bibtex"
    if lowered.endswith(".ris"):
        return "ris"
    start = head.lstrip("\ufeff \t\r\n")
    if start.startswith("TY  -"):
        return "ris"
    if start[:1] not in "[{" and re.search(r"^\s*@[A-Za-z]+\s*[{(]", head, re.MULTILINE):
        return "bibtex"  # comments may come before the first entry
    # CSL-JSON: an array of objects with CSL's "type" (a JSON Lines file starts with an object).
    if start.startswith("[") and re.match(r"\[\s*\{", start) and re.search(r'"type"\s*:', head):
        return "csl-json"
    return None
