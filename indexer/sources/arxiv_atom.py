"""arXiv API results (`export.arxiv.org/api/query`, Atom): each `<entry>` becomes a record.

Ids lose their version (`2202.12139v1` -> `2202.12139`, kept in `version`), so they match the
arXiv metadata dump and OAI harvests of arXiv. An error answer (an entry whose id is under
`/api/errors`) is a rejection carrying arXiv's message.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from indexer.records import Rejection
from indexer.sources.base import Note, clean_doi, open_binary
from indexer.sources.xml_records import XmlRecords, child, children, local_name, text_of

NAME = "arxiv-atom"
ROOTS = ("feed",)
RECORD_MARK = b"<entry>"
_VERSION = re.compile(r"^(?P<id>.+?)(?P<version>v\d+)?$")


def read(path: Path, joins=None) -> Iterator[tuple[str, dict] | Rejection | Note]:
    with open_binary(path) as handle:
        for item in XmlRecords(handle, path, ("entry",)):
            if not isinstance(item, tuple):
                yield item
                continue
            location, entry = item
            identifier = text_of(child(entry, "id"))
            if "/api/errors" in identifier:
                yield Rejection(location, f"the arXiv API answered an error: {text_of(child(entry, 'summary'))}")
                continue
            yield location, to_raw(entry)


def split_version(arxiv_id: str) -> tuple[str, str | None]:
    """`2202.12139v1` -> ("2202.12139", "v1"); `hep-th/9504118` -> ("hep-th/9504118", None)."""
    match = _VERSION.match(arxiv_id)
    return match.group("id"), match.group("version")


def to_raw(entry: ET.Element) -> dict:
    """One Atom <entry> as a raw record."""
    arxiv_id, version = split_version(text_of(child(entry, "id")).rsplit("/abs/", 1)[-1])
    alternate = next((link.get("href") for link in children(entry, "link") if link.get("rel") == "alternate"), None)
    primary = next((c.get("term") for c in entry if local_name(c.tag) == "primary_category"), None)
    terms = [primary] + [c.get("term") for c in children(entry, "category")]
    raw = {
        "paper_id": arxiv_id or None,
        "title": text_of(child(entry, "title")) or None,
        "abstract": text_of(child(entry, "summary")),
        "authors": [text_of(child(author, "name")) for author in children(entry, "author")],
        "year": text_of(child(entry, "published")) or None,
        "categories": list(dict.fromkeys(t for t in terms if t)),
        "venue": text_of(child(entry, "journal_ref")) or None,
        "url": alternate,
        "doi": clean_doi(text_of(child(entry, "doi"))),
        "source": NAME,
        "version": version,
        "comment": text_of(child(entry, "comment")) or None,
    }
    return {k: v for k, v in raw.items() if v not in (None, "", [])}
