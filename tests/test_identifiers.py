"""DOIs and arXiv ids: normalised at ingest, and accepted wherever a paper id is (store, engine, CLI, API)."""

from __future__ import annotations

import gzip
import itertools
import json
import sqlite3
from contextlib import closing

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api.app import create_app
from api.cli import main
from indexer.build import add_papers
from indexer.records import to_paper
from indexer.store import IndexStore, layout
from indexer.store import identifiers as id_table
from models import identifiers
from models.config import Settings
from models.errors import AmbiguousId, PaperNotFound
from models.identifiers import lookup_keys, normalize_arxiv, normalize_doi, normalize_title, paper_keys
from search.engine import SearchEngine
from tests.conftest import shared_dataset

# Preprints and their published versions, with the ids as real records spell them. The ResNet
# preprint carries the journal's DOI (as arXiv listings often do), so that DOI names two papers.
ID_RECORDS = [
    {"id": "1706.03762", "title": "Attention Is All You Need", "doi": "https://doi.org/10.48550/arXiv.1706.03762",
     "authors": ["Ashish Vaswani", "Noam Shazeer", "Niki Parmar"], "year": 2017, "categories": ["cs.CL", "cs.LG"],
     "abstract": "The dominant sequence transduction models are based on complex recurrent or convolutional "
                 "networks. We propose the Transformer, based solely on attention mechanisms."},
    {"id": "nips-2017-7181", "title": "Attention is All you Need", "venue": "NeurIPS",
     "url": "https://papers.nips.cc/paper/7181-attention-is-all-you-need",
     "authors": ["A. Vaswani", "N. Shazeer"], "year": 2017, "categories": ["cs.CL"],
     "abstract": "A network architecture for sequence transduction based on attention alone, dispensing with "
                 "recurrence and convolutions entirely, that trains faster and translates better."},
    {"id": "resnet-preprint", "title": "Deep Residual Learning for Image Recognition",
     "url": "https://arxiv.org/abs/1512.03385v1", "doi": "doi:10.1109/CVPR.2016.90",
     "authors": ["Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"], "year": 2015, "categories": ["cs.CV"],
     "abstract": "Deeper neural networks are more difficult to train. We present a residual learning framework "
                 "to ease the training of networks that are substantially deeper than those used previously."},
    {"id": "cvpr-2016-90", "title": "Deep residual learning for image recognition", "doi": "10.1109/CVPR.2016.90",
     "authors": ["K. He", "X. Zhang"], "year": 2016, "venue": "CVPR", "categories": ["cs.CV"],
     "abstract": "Residual networks reformulate layers as learning residual functions with reference to the "
                 "layer inputs, and win the ILSVRC 2015 classification task with 152 layers."},
    {"id": "hep-th/9711200", "title": "The Large N Limit of Superconformal Field Theories and Supergravity",
     "authors": ["Juan M. Maldacena"], "year": 1997, "categories": ["hep-th"],
     "abstract": "We show that the large N limit of certain conformal field theories in various dimensions "
                 "include in their Hilbert space a sector describing supergravity on anti-de Sitter spaces."},
    {"id": "ijtp-38-1113", "title": "The large N limit of superconformal field theories and supergravity",
     "eprint": "hep-th/9711200", "doi": "10.1023/A:1026654312961", "venue": "Int. J. Theor. Phys.",
     "authors": ["Maldacena, Juan"], "year": 1999, "categories": ["hep-th"],
     "abstract": "The large N limit of conformal field theories is related to supergravity and string theory "
                 "on anti-de Sitter space times a compact manifold."},
]


def sample_plus(tmp_path_factory, sample_index_dir, embedder, records: list[dict], name: str):
    """A private copy of the 24-paper sample index with `records` added (for a module to read)."""
    import shutil

    target = tmp_path_factory.mktemp(name) / "index"
    shutil.copytree(sample_index_dir, target, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    add_papers(Settings(index_dir=target), [to_paper(r) for r in records], embedder=embedder)
    return target


@pytest.fixture(scope="module")
def id_index(tmp_path_factory, sample_index_dir, embedder):
    """The 24-paper sample plus ID_RECORDS."""
    return sample_plus(tmp_path_factory, sample_index_dir, embedder, ID_RECORDS, "ids")


@pytest.fixture(scope="module")
def id_engine(id_index, embedder):
    with closing(SearchEngine.open(Settings(index_dir=id_index), encoder=embedder)) as engine:
        yield engine


@pytest.mark.parametrize(("text", "doi"), [
    ("10.1109/CVPR.2016.90", "10.1109/cvpr.2016.90"),
    ("https://doi.org/10.1109/CVPR.2016.90", "10.1109/cvpr.2016.90"),
    ("http://dx.doi.org/10.1023/A:1026654312961", "10.1023/a:1026654312961"),
    ("doi:10.48550/arXiv.2206.03001", "10.48550/arxiv.2206.03001"),
    ("DOI: 10.1000/xyz", "10.1000/xyz"),
    ("not a doi", None), ("11.1000/x", None), ("", None), (None, None),
])
def test_doi_normal_form(text, doi):
    assert normalize_doi(text) == doi


@pytest.mark.parametrize(("text", "arxiv"), [
    ("2206.03001", "2206.03001"), ("2206.03001v2", "2206.03001"), ("arXiv:2206.03001v2", "2206.03001"),
    ("ARXIV:1706.03762", "1706.03762"), ("0704.0001", "0704.0001"), ("hep-th/9901001", "hep-th/9901001"),
    ("hep-th/9901001v3", "hep-th/9901001"), ("math.GT/0309136", "math.gt/0309136"),
    ("https://arxiv.org/abs/2206.03001v1", "2206.03001"), ("http://arxiv.org/pdf/2206.03001v2.pdf", "2206.03001"),
    ("10.48550/arXiv.2206.03001", "2206.03001"), ("https://doi.org/10.48550/ARXIV.2206.03001", "2206.03001"),
    ("10.1109/CVPR.2016.90", None), ("2206.030", None), ("seed-01", None), ("", None),
])
def test_arxiv_normal_form(text, arxiv):
    assert normalize_arxiv(text) == arxiv


# Titles (and author names, for surnames) where the ASCII fast path could part from the general one.
TRICKY_ASCII = ["", " ", "A", "UPPER lower 123", "_under_score_", "C++/C#: a,b;c", "~!@#$%^&*()",
                "\\alpha-helix", "A\\textbf{B}c", "$\\sqrt{2}$ is {irrational}", "\\", "\\\\ab", "\\Alpha",
                "x\x00y", "a\tb\nc\x1cd\x1fe\x0bf\x0cg", "Tab\x7fDel", "  many   spaces  ", "O'Neill-Smith, J."]


def _real_ascii_titles() -> list[str]:
    """ASCII titles and author names of every corpus under ../shared/data (40,000 arXiv records)."""
    texts = []
    for name in ("scifact", "cranfield", "csfcube-dev"):
        with gzip.open(shared_dataset(name) / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
            texts += [json.loads(line).get("title") or "" for line in lines]
    with gzip.open(shared_dataset("arxiv-daily-2025-2026") / "papers.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in itertools.islice(lines, 40_000):
            record = json.loads(line)
            texts += [record.get("title") or "", *[a for a in record.get("authors") or [] if isinstance(a, str)]]
    return [text for text in texts if text.isascii()]


def test_ascii_title_fast_path_equals_the_general_one_on_real_titles():
    texts = _real_ascii_titles()
    assert len(texts) > 100_000 and any("\\" in text for text in texts)  # LaTeX titles are among them
    differ = [t for t in texts if identifiers._normalize_ascii_title(t) != identifiers._normalize_any_title(t)]
    assert differ == []


@pytest.mark.parametrize("title", TRICKY_ASCII)
def test_ascii_title_fast_path_equals_the_general_one_on_tricky_titles(title):
    assert identifiers._normalize_ascii_title(title) == identifiers._normalize_any_title(title)


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_title_fast_path_equals_the_general_one_on_any_ascii(title):
    assert identifiers._normalize_ascii_title(title) == identifiers._normalize_any_title(title)


def test_normalize_title_folds_accents_case_markup_and_spaces():
    assert normalize_title("Schrödinger's  Équation, \\emph{revisited}") == "schrodinger s equation revisited"
    assert normalize_title("SCHRODINGER'S equation {Revisited}") == "schrodinger s equation revisited"
    assert normalize_title(None) == ""


def test_lookup_keys_read_every_form():
    assert lookup_keys("arXiv:2206.03001v2") == [("arxiv", "2206.03001")]
    assert lookup_keys("DOI:10.48550/arXiv.2206.03001") == [("doi", "10.48550/arxiv.2206.03001"),
                                                           ("arxiv", "2206.03001")]
    assert lookup_keys("CorpusId:470667") == [("corpusid", "470667")]
    assert lookup_keys("PMID:11748933") == [("pmid", "11748933")]
    assert ("arxiv", "2206.03001") in lookup_keys("URL:https://arxiv.org/abs/2206.03001")
    assert lookup_keys("seed-01") == [] and lookup_keys("CorpusId:abc") == []


def test_ingest_normalises_the_doi_and_derives_the_arxiv_id():
    papers = {r["id"]: to_paper(r) for r in ID_RECORDS}
    assert papers["1706.03762"].doi == "10.48550/arxiv.1706.03762"
    assert papers["resnet-preprint"].doi == "10.1109/cvpr.2016.90"
    assert to_paper({"id": "x", "title": "t", "doi": "see journal"}).doi == "see journal"  # no DOI: kept
    arxiv = {pid: dict(paper_keys(p)).get("arxiv") for pid, p in papers.items()}
    assert arxiv == {"1706.03762": "1706.03762", "nips-2017-7181": None, "resnet-preprint": "1512.03385",
                     "cvpr-2016-90": None, "hep-th/9711200": "hep-th/9711200", "ijtp-38-1113": "hep-th/9711200"}
    # from a record field, the paper id, the url or arXiv's DOI
    assert dict(paper_keys(to_paper({"id": "a", "title": "t", "doi": "10.48550/arXiv.2301.00001"})))["arxiv"] \
        == "2301.00001"


def test_store_resolves_dois_and_arxiv_ids(id_index):
    store = IndexStore.open(id_index)
    try:
        forms = ["cvpr-2016-90", "10.1023/A:1026654312961", "https://doi.org/10.1023/a:1026654312961",
                 "arXiv:1706.03762v5", "1512.03385v2", "https://arxiv.org/abs/1512.03385", "URL:arxiv.org"]
        found = store.get_papers(forms)
        assert {given: paper.paper_id for given, paper in found.items()} == {
            "cvpr-2016-90": "cvpr-2016-90", "10.1023/A:1026654312961": "ijtp-38-1113",
            "https://doi.org/10.1023/a:1026654312961": "ijtp-38-1113", "arXiv:1706.03762v5": "1706.03762",
            "1512.03385v2": "resnet-preprint", "https://arxiv.org/abs/1512.03385": "resnet-preprint"}
        assert set(store.embeddings_for(["DOI:10.48550/arXiv.1706.03762"])) == {"DOI:10.48550/arXiv.1706.03762"}
        rowid = store.rowids_for(["1706.03762"])["1706.03762"]
        assert store.rowids_for(["arXiv:1706.03762"]) == {"arXiv:1706.03762": rowid}
        with pytest.raises(AmbiguousId, match=r"'10.1109/CVPR.2016.90' is ambiguous: 2 papers.*cvpr-2016-90"):
            store.get_papers(["10.1109/CVPR.2016.90"])
        with pytest.raises(AmbiguousId, match="hep-th/9711200"):  # two papers hold arXiv id hep-th/9711200 ...
            store.get_papers(["arXiv:hep-th/9711200"])
        assert store.get_papers(["hep-th/9711200"])["hep-th/9711200"].paper_id == "hep-th/9711200"  # ... an id wins
    finally:
        store.close()


def test_old_index_gets_the_table_filled_once_where_it_may_be_written(tmp_path, id_index):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(id_index, old, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    db = sqlite3.connect(layout.db_file(old))
    db.executescript("DROP TABLE identifiers; DELETE FROM meta WHERE key='identifiers_version';")
    db.close()
    store = IndexStore.open(old)  # a reader where it may write fills the table once, under the lock
    try:
        assert store.get_papers(["10.1023/a:1026654312961"])["10.1023/a:1026654312961"].paper_id == "ijtp-38-1113"
        assert store._fetch("SELECT count(*) FROM identifiers")[0][0] >= 2 * len(ID_RECORDS)
    finally:
        store.close()
    store = IndexStore.open(old, writable=True)
    try:
        assert store.get_papers(["10.1023/a:1026654312961"])["10.1023/a:1026654312961"].paper_id == "ijtp-38-1113"
        count = store._fetch("SELECT count(*) FROM identifiers")[0][0]
        assert count >= 2 * len(ID_RECORDS)
        # The scan a read-only old index falls back to finds what the table finds.
        keys = [("doi", "10.1109/cvpr.2016.90"), ("arxiv", "1706.03762"), ("doi", "10.9999/none")]
        assert id_table.papers_with(store._fetch, keys, indexed=False) == id_table.papers_with(store._fetch, keys, True)
    finally:
        store.close()
    store = IndexStore.open(old, writable=True)  # idempotent: a second open changes nothing
    try:
        assert store._fetch("SELECT count(*) FROM identifiers")[0][0] == count
    finally:
        store.close()


def test_engine_related_and_recommend_take_any_form(id_engine):
    by_arxiv = id_engine.related(paper_id="arXiv:1706.03762v2", limit=5, mode="dense")
    by_id = id_engine.related(paper_id="1706.03762", limit=5, mode="dense")
    assert [h.paper.paper_id for h in by_arxiv] == [h.paper.paper_id for h in by_id]
    assert "1706.03762" not in [h.paper.paper_id for h in by_arxiv]
    hits = id_engine.recommend(["https://doi.org/10.1023/A:1026654312961"], ["arXiv:1706.03762"], limit=5)
    assert not {"ijtp-38-1113", "1706.03762"} & {h.paper.paper_id for h in hits}
    with pytest.raises(PaperNotFound, match="10.9999/unknown"):
        id_engine.related(paper_id="10.9999/unknown")
    with pytest.raises(PaperNotFound, match="arXiv:2401.99999"):
        id_engine.recommend(["arXiv:2401.99999"])
    with pytest.raises(AmbiguousId, match="10.1109/CVPR.2016.90"):
        id_engine.related(paper_id="10.1109/CVPR.2016.90")


def test_cli_related_and_delete_by_identifier(id_index, tmp_path, capsys):
    import shutil

    assert main(["related", "arXiv:1706.03762v2", "--index", str(id_index), "--json", "-k", "3"]) == 0
    assert len([json.loads(x) for x in capsys.readouterr().out.splitlines()]) == 3
    assert main(["related", "10.1109/CVPR.2016.90", "--index", str(id_index)]) == 1
    assert "ambiguous" in capsys.readouterr().err
    assert main(["recommend", "-p", "doi:10.9999/nothing", "--index", str(id_index)]) == 1
    assert "'doi:10.9999/nothing'" in capsys.readouterr().err
    copy = tmp_path / "copy"
    shutil.copytree(id_index, copy, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    assert main(["delete", "10.1023/A:1026654312961", "--index", str(copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": ["10.1023/A:1026654312961"], "not_found": []}
    store = IndexStore.open(copy)
    try:
        assert store.get_papers(["ijtp-38-1113", "10.1023/a:1026654312961"]) == {}
        # its identifiers went with it: the arXiv id now names the preprint alone
        assert store.get_papers(["arXiv:hep-th/9711200"])["arXiv:hep-th/9711200"].paper_id == "hep-th/9711200"
    finally:
        store.close()


def test_api_paper_related_recommend_delete_by_identifier(id_index, tmp_path, embedder):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(id_index, copy, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    with TestClient(create_app(Settings(index_dir=copy, api_key="k"), embedder=embedder)) as client:
        assert client.get("/papers/10.1023/A:1026654312961").json()["paper_id"] == "ijtp-38-1113"
        assert client.get("/papers/arXiv:1512.03385v3").json()["paper_id"] == "resnet-preprint"
        related = client.get("/papers/arXiv:1706.03762v1/related", params={"limit": 3})
        assert related.status_code == 200 and len(related.json()["results"]) == 3
        answer = client.post("/recommend", json={"positive": ["doi:10.48550/arXiv.1706.03762"]})
        assert answer.status_code == 200 and answer.json()["results"]
        ambiguous = client.get("/papers/10.1109/CVPR.2016.90")
        assert ambiguous.status_code == 400 and "10.1109/CVPR.2016.90" in ambiguous.json()["error"]["message"]
        unknown = client.get("/papers/10.9999/unknown")
        assert unknown.status_code == 404 and "10.9999/unknown" in unknown.json()["error"]["message"]
        gone = client.delete("/papers/arXiv:1706.03762", headers={"Authorization": "Bearer k"})
        assert gone.status_code == 200, gone.text
        assert client.get("/papers/1706.03762").status_code == 404
