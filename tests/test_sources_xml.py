"""PubMed/MEDLINE, arXiv Atom and saved OAI-PMH responses, from the real samples (skipped when
absent) and small hostile files: undeclared entities, entity bombs, external entities, truncation."""

from __future__ import annotations

import gzip
import tracemalloc

from indexer.ingest import Delete, Note, Rejection, detect_format, read_items
from indexer.sources.oai import parse_page
from tests.test_sources_json import papers, sample_file

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _article(pmid: str, title: str, abstract: str = "Body.") -> str:
    return (f"<PubmedArticle><MedlineCitation><PMID Version=\"1\">{pmid}</PMID><Article><Journal><Title>J</Title>"
            f"</Journal><ArticleTitle>{title}</ArticleTitle><Abstract><AbstractText>{abstract}</AbstractText>"
            "</Abstract></Article></MedlineCitation></PubmedArticle>\n")


# --- PubMed ------------------------------------------------------------------------------------------------


def test_pubmed_efetch_records_with_mesh_journal_and_doi():
    path = sample_file("pubmed-sample.xml")
    assert detect_format(path) == "pubmed"
    found = papers(read_items(path))
    assert set(found) == {"11748933", "11700088"}
    cryo = found["11748933"]
    assert cryo.title.startswith("Is cryopreservation a homogeneous process?")
    assert cryo.venue == "Cryobiology" and cryo.year == 2001 and "Cryopreservation" in cryo.categories
    assert cryo.doi == "10.1006/cryo.2001.2328" and cryo.url == "https://pubmed.ncbi.nlm.nih.gov/11748933/"
    assert "(P < 0.001)" in cryo.abstract  # &lt; decoded


def test_a_structured_abstract_keeps_its_labels_and_inline_markup():
    (item,) = read_items(sample_file("pubmed-structured-abstract.xml"))
    sections = item.paper.abstract.split("\n")
    assert [s.split(":")[0] for s in sections] == ["OBJECTIVE", "DESIGN", "RESULTS", "CONCLUSIONS"]
    assert "TERT" in item.paper.title and item.paper.venue == "Gut"


def test_an_update_file_turns_delete_citation_into_deletes():
    path = sample_file("pubmed-updatefile-2019-sample.xml.gz")
    items = list(read_items(path))
    deletes = [i.paper_id for i in items if isinstance(i, Delete)]
    assert deletes == ["23203860", "23203861", "23203892", "23203893", "23203894", "23203895", "23203896"]
    assert len(papers(items)) == 176
    structured = [p for p in papers(items).values() if "\n" in p.abstract]
    assert structured and all(":" in p.abstract.split("\n")[0] for p in structured)


def test_an_undeclared_entity_rejects_its_record_and_the_rest_is_read(tmp_path):
    path = tmp_path / "medline.xml"
    path.write_text(HEAD + "<PubmedArticleSet>\n" + _article("1", "Fine") + _article("2", "Caf&eacute; au lait")
                    + _article("3", "Also fine") + "</PubmedArticleSet>\n")
    first, bad, last = read_items(path)
    assert isinstance(bad, Rejection) and bad.location == f"{path}:4"
    assert "undefined entity &eacute;" in bad.reason and "record 2" in bad.reason
    assert (first.paper.paper_id, last.paper.paper_id) == ("1", "3")


def test_entity_bombs_and_external_entities_are_never_expanded(tmp_path):
    lol = "".join(f"<!ENTITY lol{n} \"{f'&lol{n - 1};' * 10}\">" for n in range(1, 10))
    path = tmp_path / "bomb.xml"
    path.write_text(HEAD + f'<!DOCTYPE PubmedArticleSet [<!ENTITY lol0 "lol">{lol}'
                    f'<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<PubmedArticleSet>\n'
                    + _article("1", "Boom &lol9;") + _article("2", "Leak &xxe;") + _article("3", "Safe")
                    + "</PubmedArticleSet>\n")
    tracemalloc.start()
    items = list(read_items(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 << 20  # 10^9 "lol"s were never built
    note, boom, leak, safe = items
    assert isinstance(note, Note) and "not expanded" in note.text
    assert "undefined entity &lol9;" in boom.reason and "undefined entity &xxe;" in leak.reason
    assert safe.paper.title == "Safe"
    smuggled = tmp_path / "inner.xml"
    smuggled.write_text(HEAD + "<PubmedArticleSet>" + _article("4", "x").replace(
        "<MedlineCitation>", '<!DOCTYPE x [<!ENTITY a "b">]><MedlineCitation>') + "</PubmedArticleSet>")
    (refused,) = read_items(smuggled)
    assert isinstance(refused, Rejection) and "DTD declaration" in refused.reason


def test_a_truncated_gzip_update_file(tmp_path):
    whole = sample_file("pubmed-updatefile-2019-sample.xml.gz").read_bytes()
    cut = tmp_path / "pubmed19n0001.xml.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    items = list(read_items(cut))
    assert isinstance(items[-1], Rejection) and "truncated" in items[-1].reason
    assert 20 < len(papers(items)) < 176
    plain = tmp_path / "cut.xml"
    plain.write_bytes(gzip.decompress(whole)[:900_000])
    last = list(read_items(plain))[-1]
    assert isinstance(last, Rejection) and "never ends" in last.reason


# --- arXiv Atom ------------------------------------------------------------------------------------------


def test_arxiv_api_feeds_old_and_new():
    for name in ("arxiv-api.atom", "arxiv-api-2026.atom"):
        path = sample_file(name)
        assert detect_format(path) == "arxiv-atom"
        found = papers(read_items(path))
        assert len(found) == 10
        assert all("v" not in pid.split(".")[-1] for pid in found)  # versions are not part of the id
    testing = papers(read_items(sample_file("arxiv-api-2026.atom")))["2202.12139"]
    assert testing.title.startswith("Testing Deep Learning Models") and testing.year == 2022
    assert testing.extra["version"] == "v1" and testing.url == "https://arxiv.org/abs/2202.12139v1"
    assert testing.categories == ("cs.SE", "cs.LG")  # the primary category first, once
    old = papers(read_items(sample_file("arxiv-api.atom")))
    assert any(p.doi for p in old.values()) and any(p.venue for p in old.values())


# --- saved OAI-PMH responses -----------------------------------------------------------------------------


def test_saved_oai_responses_in_each_metadata_format():
    dc = papers(read_items(sample_file("oai-dspace7-listrecords-oai_dc.xml")))  # xml-stylesheet PI, XOAI
    assert len(dc) == 58 and dc["oai:dspace.mit.edu:1721.1/140717"].authors == ("Martin Brody",)
    arxiv = papers(read_items(sample_file("oai-arxiv-listrecords-arXiv.xml")))
    ks = arxiv["1412.8544"]
    assert ks.authors == ("Sander Uijlen", "Bas Westerbaan") and ks.doi == "10.4204/eptcs.172.11"  # lower case
    assert ks.venue == "EPTCS 172, 2014, pp. 154-164" and ks.year == 2014 and ks.categories == ("cs.DM",)
    raw = papers(read_items(sample_file("oai-arxiv-getrecord-arXivRaw.xml")))["1810.09584"]
    assert raw.year == 2018 and len(raw.authors) >= 2


def test_oai_pages_carry_tokens_and_errors():
    first = parse_page(sample_file("oai-dspace-listidentifiers-resumption-p1.xml").read_bytes(), "p1")
    last = parse_page(sample_file("oai-dspace-listidentifiers-resumption-p2.xml").read_bytes(), "p2")
    assert first.token == "oai_dc/2016-01-01T00:00:00Z/2017-01-01T00:00:00Z//100" and first.complete_size == 154
    assert last.token is None  # an empty token ends the list
    listed = parse_page(sample_file("oai-arxiv-listrecords-arXivRaw-resumption.xml").read_bytes(), "arxiv")
    assert listed.token == "726959|1001" and len(listed.items) == 6 and listed.max_datestamp == "2014-12-22"
    # A deleted record (no recorded page has one; tests/test_harvest.py serves one too) is a delete.
    page = sample_file("oai-arxiv-listrecords-arXiv.xml").read_text().replace(
        "<header>", '<header status="deleted">', 1)
    (gone, kept) = parse_page(page.encode(), "page").items
    assert gone == Delete("page:6", "1412.8544") and isinstance(kept, tuple)
