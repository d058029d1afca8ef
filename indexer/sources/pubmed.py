"""PubMed / MEDLINE XML: baseline and update files (`pubmed25n0001.xml.gz`) and EFetch output.

Each `<PubmedArticle>` becomes a record: PMID as the id, the title and abstract with inline markup
(<i>, <sub>) kept as text, a structured abstract's sections joined as "LABEL: text" lines, authors,
the journal as venue, the DOI, and the MeSH headings as categories. `<DeleteCitation>` in an update
file withdraws PMIDs: each becomes a delete.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from indexer.records import Rejection
from indexer.sources.base import Delete, Note, open_binary
from indexer.sources.xml_records import XmlRecords, child, children, text_of

NAME = "pubmed"
ROOTS = ("PubmedArticleSet", "PubmedArticle", "MedlineCitationSet")
RECORD_MARK = b"<PubmedArticle>"
_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation")


def read(path: Path, joins=None) -> Iterator[tuple[str, dict] | Rejection | Delete | Note]:
    """The records of one MEDLINE XML file (gzip or not), streamed."""
    with open_binary(path) as handle:
        for item in XmlRecords(handle, path, _TAGS):
            if not isinstance(item, tuple):
                yield item
                continue
            location, element = item
            if element.tag == "DeleteCitation":
                for pmid in children(element, "PMID"):
                    if text_of(pmid):
                        yield Delete(location, text_of(pmid))
                continue
            yield location, to_raw(element)


def _abstract(abstract: ET.Element | None) -> str:
    parts = []
    for section in children(abstract, "AbstractText"):
        body = text_of(section)
        label = section.get("Label")
        if body:
            parts.append(f"{label.strip().upper()}: {body}" if label else body)
    return "\n".join(parts)


def _author(author: ET.Element) -> str:
    collective = text_of(child(author, "CollectiveName"))
    if collective:
        return collective
    given = text_of(child(author, "ForeName")) or text_of(child(author, "Initials"))
    names = (given, text_of(child(author, "LastName")), text_of(child(author, "Suffix")))
    return " ".join(n for n in names if n)


def _year(article: ET.Element | None) -> str | None:
    issue = child(child(article, "Journal"), "JournalIssue")
    date = child(issue, "PubDate")
    for candidate in (text_of(child(date, "Year")), text_of(child(date, "MedlineDate")),
                      text_of(child(child(article, "ArticleDate"), "Year"))):
        if candidate:
            return candidate  # MedlineDate is text ("1998 Dec-1999 Jan"); the decoder finds its year
    return None


def _doi(element: ET.Element, article: ET.Element | None) -> str | None:
    for location in children(article, "ELocationID"):
        if location.get("EIdType") == "doi" and text_of(location):
            return text_of(location)
    for article_id in children(child(child(element, "PubmedData"), "ArticleIdList"), "ArticleId"):
        if article_id.get("IdType") == "doi" and text_of(article_id):
            return text_of(article_id)
    return None


def to_raw(element: ET.Element) -> dict:
    """One <PubmedArticle> (or <PubmedBookArticle>) as a raw record."""
    citation = child(element, "MedlineCitation")
    if citation is None:
        citation = child(element, "BookDocument")  # a <PubmedBookArticle>: the book holds the fields
    article = child(citation, "Article")
    article = citation if article is None else article
    pmid = text_of(child(citation, "PMID"))
    title = text_of(child(article, "ArticleTitle")) or text_of(child(child(article, "Book"), "BookTitle"))
    mesh = [text_of(child(heading, "DescriptorName"))
            for heading in children(child(citation, "MeshHeadingList"), "MeshHeading")]
    journal = child(article, "Journal")
    raw = {
        "paper_id": pmid or None,
        "title": title or None,
        "abstract": _abstract(child(article, "Abstract")),
        "authors": [_author(a) for a in children(child(article, "AuthorList"), "Author")],
        "year": _year(article),
        "categories": [m for m in mesh if m],
        "venue": text_of(child(journal, "Title")) or None,
        "doi": _doi(element, article),
        "url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else None,
        "source": NAME,
    }
    return {k: v for k, v in raw.items() if v not in (None, "", [])}
