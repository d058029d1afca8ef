"""Every export format, read by a real parser of that format and indexed back with `papersearch index`:
ids, titles, authors, years, DOIs and abstracts survive."""

from __future__ import annotations

import csv
import io
import json

import bibtexparser
import pytest
import rispy

from api.cli import main
from api.result_formats import FORMATS, citation_keys, export
from indexer.store import IndexStore
from models.identifiers import normalize_doi
from models.paper import Hit, Paper

# Papers that make writers work: LaTeX specials, ligature look-alikes, accents, particles, a comma
# particles and a suffix in names, an id with a slash and an underscore, a DOI with parentheses,
# no year, no authors.
TRICKY = [
    Paper("hep-th/9901001_v2", "Café {braces} & 50% of $x_1^2$ -- a `quoted'' #1 ~ test",
          "An abstract with \\alpha, {unbalanced and } braces,\nnewlines and “curly” quotes.",
          ("Zoë O'Brien-Łukasiewicz", "Martin van Exter", "Ludwig van Beethoven Jr."), 2019, ("hep-th",),
          "Phys. Rev. D", "https://example.org/a?b=c&d=e", "10.1016/S1297-9562(02)90002-1"),
    Paper("10.5555/no-year", "The Same First Word Twice", "", (), None),
    Paper("x-3", "The Same First Word Twice", "Different paper, same key base.", (), None),
]


def _hits(sample_engine) -> list[Hit]:
    found = sample_engine.search("lightweight OCR", limit=4, mode="dense", snippets=False)
    return found + [Hit(paper, 0.1, len(found) + i + 1) for i, paper in enumerate(TRICKY)]


def export_ids(fmt: str, text: str) -> list[str]:
    """The paper ids an export holds, in order, read by that format's own parser."""
    if fmt == "bibtex":
        library = bibtexparser.parse_string(text)
        assert not library.failed_blocks
        return [entry["papersearch_id"] for entry in library.entries]
    if fmt == "ris":
        return [ref["id"] for ref in rispy.loads(text)]
    if fmt == "csl-json":
        return [item["custom"]["paper_id"] for item in json.loads(text)]
    if fmt == "csv":
        return [row["paper_id"] for row in csv.DictReader(io.StringIO(text))]
    return [json.loads(line)["paper_id"] for line in text.splitlines()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_parses_and_indexes_back_with_the_same_papers(fmt, sample_engine, tmp_path, capsys):
    hits = _hits(sample_engine)
    text = export(fmt, hits)
    # The ids as that format's parser reads them (BibTeX still LaTeX-escaped: compare decoded below).
    assert len(export_ids(fmt, text)) == len(hits)
    path = tmp_path / f"results.{ {'bibtex': 'bib', 'csl-json': 'json'}.get(fmt, fmt) }"
    path.write_text(text, encoding="utf-8")
    index = tmp_path / "index"
    assert main(["index", str(path), "--index", str(index), "--json", "-q"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["indexed"] == len(hits)
    store = IndexStore.open(index)
    try:
        back = store.get_papers([h.paper.paper_id for h in hits])
    finally:
        store.close()
    # RIS holds one line per tag and BibTeX entries are read with their spacing collapsed.
    flat = fmt in ("bibtex", "ris")
    for hit in hits:
        original, copy = hit.paper, back[hit.paper.paper_id]
        assert copy.title == original.title
        assert copy.authors == original.authors
        # Indexing stores a DOI in its normal form (lower case), as any imported DOI.
        assert (copy.year, copy.doi) == (original.year, normalize_doi(original.doi) or original.doi)
        abstract = " ".join(original.abstract.split()) if flat else original.abstract
        assert copy.abstract == abstract


def test_citation_keys_are_unique_and_do_not_depend_on_order(sample_engine):
    hits = _hits(sample_engine)
    papers = [h.paper for h in hits]
    keys = citation_keys(papers)
    assert len(set(keys)) == len(keys)
    assert dict(zip([p.paper_id for p in papers], keys, strict=True)) == dict(
        zip([p.paper_id for p in reversed(papers)], citation_keys(list(reversed(papers))), strict=True))
    by_id = dict(zip([p.paper_id for p in papers], keys, strict=True))
    assert by_id["hep-th/9901001_v2"] == "obrienlukasiewicz2019cafe"
    # Same base key: the first by paper id keeps it, the next gets "a".
    assert (by_id["10.5555/no-year"], by_id["x-3"]) == ("anonndsame", "anonndsamea")
    assert all(k.isascii() and k.isalnum() for k in keys)


def test_bibtex_fields_as_bibtexparser_reads_them(sample_engine):
    comma = Paper("c-1", "A name with a comma", authors=("Smith, Jr.", "Ann and Bob Group"), year=2020)
    text = export("bibtex", [*_hits(sample_engine), Hit(comma, 0.1, 99)])
    entries = {e.key: e for e in bibtexparser.parse_string(text).entries}
    tricky = entries["obrienlukasiewicz2019cafe"]
    assert tricky.entry_type == "article" and tricky["journal"] == "Phys. Rev. D"
    assert tricky["doi"] == "10.1016/S1297-9562(02)90002-1"
    assert entries["smith2020name"]["author"] == "{Smith, Jr.} and {Ann and Bob Group}"  # kept whole
