"""A reference library as liked papers: `recommend --library`, POST /recommend with `library`, the engine."""

from __future__ import annotations

import json

import pytest

from api.cli import main
from indexer.library_formats import library_papers
from models.identifiers import normalize_title
from search.library import match_library
from tests.test_api import assert_error

# seed-17 by its key, seed-01 by its title (other case, braces, a full stop), and one paper the
# index does not hold, liked through its own title and abstract.
LIBRARY = r"""
@article{seed-17,
  title = {Some other title the index does not know},
  year = 2021,
}

@inproceedings{helix2022,
  title = {{HelixFold}: an efficient implementation of {AlphaFold2} using {PaddlePaddle}.},
  author = {Wang, Guoxia and Fang, Xiaomin},
  booktitle = {arXiv},
}

@article{mine,
  title = {Fast protein structure prediction},
  abstract = {We predict the three-dimensional structure of proteins from their amino acid sequence
              with a deep network trained on the Protein Data Bank, as AlphaFold does.},
  author = {Doe, Jane},
  year = 2023,
}
"""
ONLY_MINE = LIBRARY[LIBRARY.index("@article{mine"):]


def test_titles_compare_without_case_accents_punctuation_or_spacing():
    title = "{HelixFold}: An  Efficient—implementation, Café."
    assert normalize_title(title) == "helixfold an efficient implementation cafe"


def test_entries_match_by_id_and_by_title_and_the_rest_stay_unmatched(sample_engine):
    entries, rejected = library_papers(LIBRARY, "bibtex")
    assert rejected == []
    match = match_library(sample_engine, entries)
    assert match.matched == {"seed-17": "seed-17", "helix2022": "seed-01"}
    assert [e.paper_id for e in match.unmatched] == ["mine"]
    assert match.counts() == {"entries": 3, "matched": 2, "unmatched": 1}


def test_unmatched_entries_recommend_through_their_own_text(sample_engine):
    entries, _ = library_papers(ONLY_MINE, "bibtex")
    hits, match = sample_engine.recommend_library(entries, limit=3, mode="dense")
    assert match.counts()["unmatched"] == 1
    assert hits[0].paper.paper_id == "seed-01"  # HelixFold, the index's one protein-structure paper
    hits, _ = sample_engine.recommend_library(library_papers(LIBRARY, "bibtex")[0], limit=10)
    assert not {"seed-01", "seed-17"} & {h.paper.paper_id for h in hits}  # never what the library holds


def test_api_recommends_from_an_uploaded_library(client):
    answer = client.post("/recommend", json={"library": LIBRARY, "library_format": "bibtex", "limit": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["library"] == {"entries": 3, "matched": 2, "unmatched": 1, "rejected": 0, "rejections": []}
    assert body["positive"] == ["seed-17", "seed-01"]
    assert len(body["results"]) == 5 and not {"seed-01", "seed-17"} & {r["paper_id"] for r in body["results"]}
    # The format is told from the text when not named; the answer exports like any ranked list.
    exported = client.post("/recommend?format=ris", json={"library": LIBRARY, "limit": 2})
    assert exported.headers["content-type"].startswith("application/x-research-info-systems")
    assert exported.text.count("ER  -") == 2


def test_api_library_that_gives_nothing_to_go_by_is_an_error(client):
    message = assert_error(client.post("/recommend", json={"library": "@misc{a,\n  author = {Doe, J.}\n}\n",
                                                           "library_format": "bibtex"}), 400, "invalid_input")
    assert "library:1: paper 'a': missing title" in message
    message = assert_error(client.post("/recommend", json={"library": "% only a comment\n",
                                                           "library_format": "bibtex"}), 400, "invalid_input")
    assert "no entry to recommend from" in message
    assert "'library'" in assert_error(client.post("/recommend", json={}), 422, "invalid_request")
    assert "not both" in assert_error(client.post("/recommend", json={"positive": ["seed-01"], "library": LIBRARY}),
                                      422, "invalid_request")


def test_cli_recommend_library_prints_counts_and_hits(sample_index_dir, tmp_path, capsys):
    path = tmp_path / "refs.bib"
    path.write_text(LIBRARY)
    assert main(["recommend", "--library", str(path), "--index", str(sample_index_dir), "--json", "-k", "4"]) == 0
    captured = capsys.readouterr()
    ids = [json.loads(line)["paper_id"] for line in captured.out.splitlines()]
    assert len(ids) == 4 and not {"seed-01", "seed-17"} & set(ids)
    assert f"{path}: 3 entries, 2 in the index, 1 recommended from by their own text, 0 rejected" in captured.err
    empty = tmp_path / "empty.bib"
    empty.write_text("@comment{nothing here}\n")
    assert main(["recommend", "--library", str(empty), "--index", str(sample_index_dir)]) == 1
    assert "no entry to recommend from" in capsys.readouterr().err


@pytest.fixture(scope="module")
def client(sample_index_dir, embedder):
    from tests.test_api import client_for

    with client_for(sample_index_dir, embedder) as c:
        yield c
