"""OAI-PMH responses: one ListRecords/GetRecord page -> records, deletes, the resumption token.

Used by the harvester (indexer/harvest.py) on each page it fetches, and by `papersearch index` on
saved responses. Metadata formats mapped: `oai_dc` (any repository: DSpace, EPrints, OJS),
arXiv's own `arXiv` and `arXivRaw`. A record whose header says `status="deleted"` is a delete.
arXiv ids lose their `oai:arXiv.org:` prefix, so they match the arXiv dump and the arXiv API.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from indexer.records import Rejection
from indexer.sources.base import Delete, Note, clean_doi, collapse, open_binary
from indexer.sources.xml_records import DefusedXmlException, XmlRecords, child, children, local_name, text_of

NAME = "oai"
ROOTS = ("OAI-PMH",)
RECORD_MARK = b"<record>"
PREFIXES = ("oai_dc", "arXiv", "arXivRaw")
_ARXIV_OAI = "oai:arXiv.org:"
_URL = re.compile(r"^https?://", re.I)


class OaiError(Exception):
    """The endpoint answered with an OAI error (`<error code=...>`) or with something not OAI-PMH."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


@dataclass
class Page:
    """One parsed response: its items, the token for the next page ("" or None: the list is done)."""

    items: list = field(default_factory=list)
    token: str | None = None
    complete_size: int | None = None
    max_datestamp: str | None = None


def parse_page(body: bytes, where: str) -> Page:
    """Parse one OAI-PMH response body; `where` names it in locations (a URL or a file).

    Raises OaiError for an OAI error answer (noRecordsMatch included) and for a body that is not
    OAI-PMH XML (an HTML page, a proxy's error).
    """
    page = Page()
    records = XmlRecords(io.BytesIO(body), where, ("record",))
    for item in records:
        page.items.extend(_items(item))
        if isinstance(item, tuple):
            stamp = text_of(child(child(item[1], "header"), "datestamp"))
            if stamp and (page.max_datestamp is None or stamp > page.max_datestamp):
                page.max_datestamp = stamp
    try:
        envelope = records.envelope()
    except (ET.ParseError, DefusedXmlException) as exc:
        raise OaiError("notOaiPmh", f"the answer is not OAI-PMH XML ({exc})") from None
    if local_name(envelope.tag) != "OAI-PMH":
        raise OaiError("notOaiPmh", f"the answer is XML with root <{local_name(envelope.tag)}>, not <OAI-PMH>")
    for error in envelope.iter():
        if local_name(error.tag) == "error":
            raise OaiError(error.get("code") or "error", text_of(error))
    for token in envelope.iter():
        if local_name(token.tag) == "resumptionToken":
            page.token = (token.text or "").strip() or None
            size = token.get("completeListSize")
            page.complete_size = int(size) if size and size.isdigit() else None
    return page


def read(path: Path, joins=None) -> Iterator[tuple[str, dict] | Rejection | Delete | Note]:
    """A saved OAI-PMH response (ListRecords or GetRecord), as `papersearch index` reads it."""
    with open_binary(path) as handle:
        for item in XmlRecords(handle, path, ("record",)):
            yield from _items(item)


def _items(item) -> Iterator[tuple[str, dict] | Rejection | Delete | Note]:
    if not isinstance(item, tuple):
        yield item
        return
    location, record = item
    header = child(record, "header")
    identifier = record_id(text_of(child(header, "identifier")))
    if header is not None and header.get("status") == "deleted":
        if identifier:
            yield Delete(location, identifier)
        return
    metadata = child(record, "metadata")
    body = metadata[0] if metadata is not None and len(metadata) else None
    if body is None:
        yield Rejection(location, f"OAI record {identifier!r} has no metadata")
        return
    mapper = _MAPPERS.get(local_name(body.tag))
    if mapper is None:
        yield Rejection(location, f"OAI record {identifier!r}: metadata format <{local_name(body.tag)}> is not one "
                                  f"of {', '.join(PREFIXES)}")
        return
    raw = mapper(body)
    raw.setdefault("paper_id", identifier)
    raw["source"] = NAME
    raw["datestamp"] = text_of(child(header, "datestamp")) or None
    yield location, {k: v for k, v in raw.items() if v not in (None, "", [])}


def record_id(identifier: str) -> str:
    """The id a record is stored under: the OAI identifier, arXiv's without its `oai:arXiv.org:`."""
    return identifier.removeprefix(_ARXIV_OAI)


# --- metadata formats ---------------------------------------------------------------------------


def _dc_name(name: str) -> str:
    """Dublin Core creators are mostly "Last, First": made "First Last" like every other source."""
    last, comma, first = name.partition(",")
    return f"{first.strip()} {last.strip()}" if comma and first.strip() and "," not in first else name


def _oai_dc(dc: ET.Element) -> dict:
    def values(name: str) -> list[str]:
        return [v for v in (text_of(e) for e in children(dc, name)) if v]

    identifiers = values("identifier")
    descriptions = list(dict.fromkeys(values("description")))
    return {
        "title": (values("title") or [None])[0],
        "abstract": "\n".join(descriptions),  # several, often one per language: all are searchable
        # Some repositories (this EUR one among them) name the author only as a contributor.
        "authors": [_dc_name(n) for n in values("creator") or values("contributor")],
        "year": (values("date") or [None])[0],
        "categories": list(dict.fromkeys(values("subject"))),
        "venue": (values("source") or [None])[0],
        "url": next((i for i in identifiers if _URL.match(i)), None),
        "doi": next((clean_doi(i) for i in identifiers + values("relation") if clean_doi(i)), None),
        "type": (values("type") or [None])[0],
        "language": (values("language") or [None])[0],
    }


def _arxiv_common(body: ET.Element) -> dict:
    arxiv_id = text_of(child(body, "id"))
    return {
        "paper_id": arxiv_id or None,
        "title": text_of(child(body, "title")) or None,
        "abstract": collapse(text_of(child(body, "abstract"))),
        "categories": text_of(child(body, "categories")).split(),
        "venue": text_of(child(body, "journal-ref")) or None,
        "doi": clean_doi(text_of(child(body, "doi"))),
        "url": f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        "comment": text_of(child(body, "comments")) or None,
    }


def _arxiv(body: ET.Element) -> dict:
    authors = []
    for author in children(child(body, "authors"), "author"):
        parts = (text_of(child(author, name)) for name in ("forenames", "keyname", "suffix"))
        authors.append(" ".join(p for p in parts if p))
    return {**_arxiv_common(body), "authors": authors, "year": text_of(child(body, "created")) or None}


def _arxiv_raw(body: ET.Element) -> dict:
    first = child(child(body, "version"), "date")  # the first version's date: when it was submitted
    return {**_arxiv_common(body), "authors": text_of(child(body, "authors")) or None,
            "year": text_of(first) or None}


_MAPPERS = {"dc": _oai_dc, "arXiv": _arxiv, "arXivRaw": _arxiv_raw}
