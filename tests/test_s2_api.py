"""The Semantic Scholar API, driven by the real `semanticscholar` client against a live server.

The index is the 24-paper sample plus records with DOIs and arXiv ids (tests/test_identifiers.py),
a PubMed record, and, when ../shared/samples is present, the three real S2 paper objects of
s2-papers.jsonl, whose served fields must come back with the shapes and values S2 gave them.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from models.config import Settings
from tests.conftest import ROOT
from tests.live import live_server
from tests.test_identifiers import ID_RECORDS, sample_plus

semanticscholar = pytest.importorskip("semanticscholar")
from semanticscholar import SemanticScholar  # noqa: E402
from semanticscholar.SemanticScholarException import (  # noqa: E402
    BadQueryParametersException,
    ObjectNotFoundException,
)

S2_SAMPLE = ROOT.parent / "shared" / "samples" / "s2-papers.jsonl"
PUBMED_RECORD = {"id": "pubmed-11748933", "pmid": "11748933", "year": 2001, "authors": ["Isachenko E"],
                 "title": "Is cryopreservation a homogeneous process? Ultrastructure and motility of untreated, "
                          "prefreezing, and postthawed spermatozoa of Diplodus puntazzo (Cetti).",
                 "abstract": "This study subdivides the cryopreservation procedure for Diplodus puntazzo "
                             "spermatozoa into three key phases."}
# The fields api/s2_papers.py derives from the index (the shape check compares these).
SERVED = ["paperId", "corpusId", "externalIds", "url", "title", "abstract", "venue", "year", "authors",
          "fieldsOfStudy", "publicationDate", "journal"]


def s2_objects() -> list[dict]:
    if not S2_SAMPLE.is_file():
        return []
    return [json.loads(line) for line in S2_SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def as_record(s2: dict) -> dict:
    """An S2 paper object as a PaperSearch record: its id, text, authors' names; the rest kept as given."""
    record = {k: v for k, v in s2.items() if k not in ("paperId", "authors", "externalIds")}
    return {**record, "id": s2["paperId"], "authors": [a["name"] for a in s2["authors"]],
            "doi": s2["externalIds"].get("DOI"), "externalIds": s2["externalIds"]}


@pytest.fixture(scope="module")
def s2_index(tmp_path_factory, sample_index_dir, embedder):
    records = ID_RECORDS + [PUBMED_RECORD] + [as_record(o) for o in s2_objects()]
    return sample_plus(tmp_path_factory, sample_index_dir, embedder, records, "s2")


@pytest.fixture(scope="module")
def s2(s2_index):
    with live_server(s2_index) as server:
        yield SemanticScholar(api_url=server.url.rstrip("/"), timeout=60, retry=False)


def test_search_first_and_next_page(s2):
    results = s2.search_paper("deep residual learning image recognition", limit=3,
                              fields=["title", "year", "authors", "externalIds"])
    first = [paper.paperId for paper in results.items]
    assert len(first) == 3 and results.offset == 0 and results.next == 3 and results.total >= 24
    assert first[0] in {"resnet-preprint", "cvpr-2016-90"}
    assert not {"resnet-preprint", "cvpr-2016-90"} <= set(first)  # one work, shown once
    results.next_page()
    ids = [paper.paperId for paper in results.items]
    assert len(ids) == 6 and ids[:3] == first and len(set(ids)) == 6
    assert all(paper.title for paper in results.items)


def test_search_filters_by_year_and_field(s2):
    results = s2.search_paper("supergravity conformal field theory", year="1990-1998", limit=5,
                              fields=["title", "year", "fieldsOfStudy"])
    assert results.items and all(1990 <= p.year <= 1998 for p in results.items)
    assert results.items[0].paperId == "hep-th/9711200" and results.items[0].fieldsOfStudy == ["Physics"]
    cs = s2.search_paper("recognition", fields_of_study=["Computer Science"], limit=5, fields=["fieldsOfStudy"])
    assert cs.items and all("Computer Science" in p.fieldsOfStudy for p in cs.items)


def test_get_paper_by_each_id_form(s2):
    forms = {
        "cvpr-2016-90": "cvpr-2016-90",
        "DOI:10.1023/A:1026654312961": "ijtp-38-1113",
        "10.1023/a:1026654312961": "ijtp-38-1113",
        "ARXIV:1706.03762": "1706.03762",
        "arXiv:1512.03385v2": "resnet-preprint",
        "URL:https://arxiv.org/abs/1706.03762v5": "1706.03762",
        "URL:https://papers.nips.cc/paper/7181-attention-is-all-you-need": "nips-2017-7181",
        "PMID:11748933": "pubmed-11748933",
        "hep-th/9711200": "hep-th/9711200",
    }
    for given, expected in forms.items():
        paper = s2.get_paper(given, fields=["title", "externalIds", "year"])
        assert paper.paperId == expected, given
    arxiv = s2.get_paper("ARXIV:1706.03762", fields=["externalIds"])
    assert arxiv.externalIds == {"ArXiv": "1706.03762", "DOI": "10.48550/arxiv.1706.03762"}


def test_default_fields_are_accepted_and_unknown_ones_are_null(s2):
    paper = s2.get_paper("cvpr-2016-90")  # the client asks for every published field
    assert paper.title == "Deep residual learning for image recognition" and paper.venue == "CVPR"
    assert paper.citationCount is None and paper.citations == [] and paper.tldr is None
    assert paper.raw_data["citationCount"] is None and paper.raw_data["authors"][0] == {
        "authorId": None, "affiliations": None, "citationCount": None, "externalIds": None, "hIndex": None,
        "homepage": None, "name": "K. He", "paperCount": None, "url": None}
    with pytest.raises(BadQueryParametersException, match="Unrecognized or unsupported fields"):
        s2.get_paper("cvpr-2016-90", fields=["title", "bogus"])


def test_unknown_id_raises_the_clients_not_found_error(s2):
    with pytest.raises(ObjectNotFoundException, match="DOI:10.9999/none"):
        s2.get_paper("DOI:10.9999/none")
    with pytest.raises(ObjectNotFoundException):
        s2.get_paper("CorpusId:1")
    with pytest.raises(ObjectNotFoundException):
        s2.get_recommended_papers("no-such-paper")
    with pytest.raises(ObjectNotFoundException):
        s2.get_recommended_papers_from_lists(["no-such-paper"])


def test_get_papers_batch_with_an_unknown_id(s2):
    ids = ["ARXIV:1706.03762", "DOI:10.9999/none", "PMID:11748933", "DOI:10.1109/CVPR.2016.90"]
    # the client tells found from missing by the externalIds of what came back
    papers, missing = s2.get_papers(ids, fields=["title", "externalIds"], return_not_found=True)
    assert [p.paperId for p in papers] == ["1706.03762", "pubmed-11748933"]
    assert missing == ["DOI:10.9999/none", "DOI:10.1109/CVPR.2016.90"]  # unknown; held by two papers


def test_recommendations(s2):
    for_paper = s2.get_recommended_papers("ARXIV:1706.03762", limit=5, fields=["title", "year"])
    ids = [p.paperId for p in for_paper]
    assert len(ids) == 5 and not {"1706.03762", "nips-2017-7181"} & set(ids)
    from_lists = s2.get_recommended_papers_from_lists(["ARXIV:1512.03385"], ["DOI:10.1023/A:1026654312961"],
                                                       limit=4, fields=["title"])
    ids = [p.paperId for p in from_lists]
    assert len(ids) == 4 and not {"resnet-preprint", "cvpr-2016-90", "ijtp-38-1113"} & set(ids)


def test_title_match_and_bulk(s2):
    match = s2.search_paper("Deep Residual Learning for Image Recognition", match_title=True, fields=["title"])
    assert match.paperId in {"resnet-preprint", "cvpr-2016-90"} and match.raw_data["matchScore"] >= 80
    with pytest.raises(ObjectNotFoundException, match="Title match not found"):
        s2.search_paper("zzzz qqqq nothing like any title at all", match_title=True)
    bulk = s2.search_paper("learning", bulk=True, fields=["title"])
    ids = [p.paperId for p in bulk]  # iterates every page the token hands out
    assert ids and len(ids) == len(set(ids))


def test_shapes_match_real_s2_objects(s2):
    objects = s2_objects()
    if not objects:
        pytest.skip(f"{S2_SAMPLE} is absent")
    for real in objects:
        ours = s2.get_paper(f"CorpusId:{real['corpusId']}", fields=SERVED).raw_data
        assert ours["paperId"] == real["paperId"]
        for name in SERVED:
            assert type(ours[name]) is type(real[name]), name
        for name in ("title", "abstract", "year", "venue", "corpusId", "publicationDate", "journal",
                     "fieldsOfStudy"):
            assert ours[name] == real[name], name
        assert [a["name"] for a in ours["authors"]] == [a["name"] for a in real["authors"]]
        assert set(ours["authors"][0]) == set(real["authors"][0]) == {"authorId", "name"}
        assert {k: str(v).lower() for k, v in ours["externalIds"].items()} == \
               {k: str(v).lower() for k, v in real["externalIds"].items()}
        # a field the index holds only because the record carried it is served as the record had it
        assert s2.get_paper(real["paperId"], fields=["citationCount"]).citationCount == real["citationCount"]


def test_error_bodies_have_s2s_shape(s2_index, embedder):
    with TestClient(create_app(Settings(index_dir=s2_index), embedder=embedder)) as client:
        missing = client.get("/graph/v1/paper/DOI:10.9999/none")
        assert missing.status_code == 404 and missing.json() == {"error": "Paper with id DOI:10.9999/none not found"}
        bad = client.get("/graph/v1/paper/search", params={"query": "x", "limit": 1000})
        assert bad.status_code == 400 and isinstance(bad.json()["error"], str)
        assert client.get("/graph/v1/paper/search", params={"query": "x", "minCitationCount": 5}).status_code == 400
        batch = client.post("/graph/v1/paper/batch", json={"ids": "not a list"})
        assert batch.status_code == 400 and "ids" in batch.json()["error"]
        for path in ("/graph/v1/author/123", "/graph/v1/paper/cvpr-2016-90/citations",
                     "/graph/v1/paper/DOI:10.1023/A:1026654312961/references", "/graph/v1/author/search"):
            unserved = client.get(path)
            assert unserved.status_code == 404 and "not served" in unserved.json()["error"], path
