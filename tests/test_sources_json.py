"""OpenAlex, Semantic Scholar and Crossref, read from the real records in ../shared/samples (skipped
when absent) and from small edge-case files: pages, parts, gaps, truncation, joins."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from indexer.ingest import Inputs, Note, Parsed, Rejection, Skipped, detect_format, read_items
from indexer.sources.openalex import rebuild_abstract
from tests.conftest import shared_sample

sample_file = shared_sample  # the other source tests import it from here


def papers(items) -> dict:
    return {i.paper.paper_id: i.paper for i in items if isinstance(i, Parsed)}


# --- OpenAlex -------------------------------------------------------------------------------------------


def test_openalex_works_map_every_field_and_skip_paratext():
    path = sample_file("openalex-works.jsonl")
    assert detect_format(path) == "openalex"
    items = list(read_items(path))
    assert [i.reason for i in items if isinstance(i, Skipped)] == ["paratext"]  # W4392695120 "Index"
    found = papers(items)
    assert len(found) == 8
    oa = found["W2741809807"]
    assert oa.title.startswith("The state of OA")
    assert oa.abstract.startswith("Despite growing interest in Open Access (OA) to scholarly literature")
    assert oa.doi == "10.7717/peerj.4375" and oa.year == 2018 and oa.venue == "PeerJ"
    assert oa.extra["ids"]["pmid"] == "29456894" and oa.extra["type"] == "article"
    assert "Academic Publishing and Open Access" in oa.categories
    assert oa.authors[0] == "Heather Piwowar"
    assert found["W4254361891"].authors == ()          # a book with no authorships
    assert found["W2041234663"].abstract == ""         # abstract_inverted_index null: title only
    assert found["W1541318120"].extra["type"] == "preprint"


def test_openalex_api_page_and_snapshot_part(tmp_path):
    page = sample_file("openalex-works-page.json")
    assert detect_format(page) == "openalex"
    assert set(papers(read_items(page))) == {"W2755950973", "W2741809807"}
    # A snapshot part as published: gzip, under works/updated_date=.../, no .jsonl suffix.
    part = tmp_path / "works" / "updated_date=2023-05-16" / "part_000.gz"
    part.parent.mkdir(parents=True)
    part.write_bytes(gzip.compress(sample_file("openalex-snapshot-works-part_000.jsonl").read_bytes()))
    items = list(read_items(part))
    assert len(items) == 27
    # The grants of this part have no title: one rejection each, naming file, line and work.
    missing = [i for i in items if isinstance(i, Rejection)]
    assert missing and all("missing title" in r.reason and "W43" in r.reason and str(part) in r.location
                           for r in missing)
    article = papers(items)["W4206759534"]
    assert article.categories == ("Chemistry", "Biochemical engineering", "Engineering")  # concepts, levels 0-1


def test_inverted_index_with_gaps_is_rebuilt_with_a_note(tmp_path):
    assert rebuild_abstract({"deep": [0], "nets": [1, 3], "learn": [4]}) == (
        "deep nets nets learn", "has 1 gap(s) in positions 0-4; the abstract is rebuilt from the words present")
    assert rebuild_abstract({"a": [0], "b": [1]}) == ("a b", None)
    path = tmp_path / "works.jsonl"
    work = {"id": "https://openalex.org/W1", "title": "Gappy", "abstract_inverted_index": {"one": [0], "three": [2]}}
    path.write_text(json.dumps(work) + "\n" + json.dumps({**work, "id": "https://openalex.org/W2",
                                                           "is_retracted": True}) + "\n")
    note, parsed, skipped = read_items(path)
    assert isinstance(note, Note) and note.location == f"{path}:1" and "'W1'" in note.text and "gap" in note.text
    assert parsed.paper.abstract == "one three"
    assert skipped == Skipped(f"{path}:2", "retracted")


def test_a_truncated_part_keeps_what_was_read_and_names_the_place(tmp_path):
    lines = sample_file("openalex-works.jsonl").read_bytes()
    whole = gzip.compress(lines)
    part = tmp_path / "part_001.gz"
    part.write_bytes(whole[: len(whole) * 2 // 3])
    items = list(read_items(part, "openalex"))
    assert isinstance(items[-1], Rejection) and "truncated or damaged" in items[-1].reason
    assert items[-1].location.startswith(f"{part}:")
    assert len(papers(items)) >= 3  # the works before the cut


# --- Semantic Scholar -------------------------------------------------------------------------------------


def test_s2_graph_api_objects_and_batch_answer():
    lines, batch = sample_file("s2-papers.jsonl"), sample_file("s2-papers-batch.json")
    assert detect_format(lines) == detect_format(batch) == "s2"
    one, other = papers(read_items(lines)), papers(read_items(batch))  # the batch's leading null is no record
    assert one.keys() == other.keys() and len(one) == 3
    did = one["c31c87c591a25c64fbaa82e8ac6a81831b6ac7ce"]
    assert did.title == "How Much Should We Trust Differences-in-Differences Estimates?"
    assert did.doi == "10.2139/ssrn.288970" and did.extra["corpusid"] == 470667 and did.abstract


def test_s2_bulk_papers_joined_with_abstracts_by_corpusid(tmp_path):
    papers_file = tmp_path / "papers" / "part0.gz"
    papers_file.parent.mkdir()
    papers_file.write_bytes(gzip.compress(sample_file("s2-dataset-papers.jsonl").read_bytes()))
    # The recorded abstracts sample holds other corpusids; give three of them the papers' ids,
    # in reverse order and across two parts (the datasets' parts are in no corpusid order).
    rows = [json.loads(line) for line in sample_file("s2-dataset-papers.jsonl").read_text().splitlines()[:3]]
    abstracts = [json.loads(line) for line in sample_file("s2-abstracts.jsonl").read_text().splitlines()[:3]]
    (tmp_path / "abstracts").mkdir()
    for number, (row, abstract) in enumerate(zip(reversed(rows), abstracts, strict=True)):
        part = tmp_path / "abstracts" / f"part{number % 2}.jsonl"
        with part.open("a") as handle:
            handle.write(json.dumps({**abstract, "corpusid": row["corpusid"]}) + "\n")
    with Inputs([tmp_path / "papers", tmp_path / "abstracts"]) as inputs:
        assert inputs.files == [papers_file]  # the abstracts are a join table, not records
        found = [i.paper for i in inputs.read(papers_file) if isinstance(i, Parsed)]
    assert len(found) == 100
    by_corpus = {p.extra["corpusid"]: p for p in found}
    for row, abstract in zip(reversed(rows), abstracts, strict=True):
        assert by_corpus[row["corpusid"]].abstract == abstract["abstract"].strip()
    assert sum(bool(p.abstract) for p in found) == 3
    assert found[0].paper_id == "d5ec1ea2c9261c54cf41fef1e5c9f2f8abe28ce2"  # from the dataset's url


def test_the_abstracts_dataset_alone_is_refused_with_the_way_out(tmp_path):
    from models.errors import InvalidInput

    path = shutil.copy(sample_file("s2-abstracts.jsonl"), tmp_path / "abstracts.jsonl")
    assert detect_format(path) == "s2-abstracts"
    with pytest.raises(InvalidInput, match="papers dataset"):
        Inputs([path])


# --- Crossref --------------------------------------------------------------------------------------------


def test_crossref_page_strips_jats_and_reads_issued_and_container():
    path = sample_file("crossref-works.json")
    assert detect_format(path) == "crossref"
    items = list(read_items(path))
    assert len(items) == 20
    # The `component` has no title: rejected, named by its DOI and its place in the page.
    (rejected,) = [i for i in items if isinstance(i, Rejection)]
    assert "10.1364/oe.20.010242.m002" in rejected.reason and rejected.location.startswith(f"{path}:1 #")
    found = papers(items)
    juncker = found["10.1093/ejil/chaa052"]
    assert juncker.abstract.startswith("Jean-Claude Juncker was President") and "<" not in juncker.abstract
    assert juncker.year == 2020 and juncker.venue == "European Journal of International Law"
    assert found["10.1007/s15002-013-0459-8"].venue == "Orthopädie & Rheuma"  # &amp; unescaped
    assert found["10.1163/1574-9347_dnp_e12213830"].year is None               # date-parts [[null]]
    assert found["10.1016/s0140-6736(11)60792-7"].year == 2011


def test_crossref_single_work_and_public_data_file_part(tmp_path):
    single = papers(read_items(sample_file("crossref-work-single.json")))
    assert single["10.1515/crelle-2013-0024"].abstract.startswith("We investigate rigidity")
    items = json.loads(sample_file("crossref-works-2019.json").read_text())["message"]["items"]
    part = tmp_path / "0.json.gz"  # the public data file: {"items": [...]} per gzip part
    part.write_bytes(gzip.compress(json.dumps({"items": items}, indent=2).encode()))
    assert detect_format(part) == "crossref"
    found = list(read_items(part))
    assert [i.location for i in found] == [f"{part}:{n}" for n in _item_lines(part)]
    assert len(papers(found)) == 3


def _item_lines(path) -> list[int]:
    """Line numbers on which the items of an indented {"items": [...]} document start."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    return [n for n, line in enumerate(lines, start=1) if line == "    {"]
