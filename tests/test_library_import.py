"""Reference libraries as `papersearch index` input: real Zotero/ADS/JabRef exports and bad entries."""

from __future__ import annotations

import json

from api.cli import main
from indexer.citation_text import latex_escape, latex_to_text
from indexer.ingest import detect_format, read_papers
from tests.conftest import shared_sample

_sample = shared_sample


def _read(path, fmt=None):
    results = list(read_papers(path, fmt))
    papers = {r.paper.paper_id: r.paper for r in results if hasattr(r, "paper")}
    rejected = [str(r) for r in results if not hasattr(r, "paper")]
    return papers, rejected


# --- the real libraries in ../shared/samples -------------------------------------------------------


def test_ads_bibtex_library_keeps_every_entry_with_accents_and_arxiv_ids():
    path = _sample("library.bib")
    assert detect_format(path) == "bibtex"
    papers, rejected = _read(path)
    assert rejected == [] and len(papers) == 18  # 18 entries, three of them with a field given twice
    nyx = papers["nyx"]
    assert "Zarija Lukić" in nyx.authors  # Luki{\'c}
    castro = papers["castro_sdc"]
    assert castro.title == "Improved Coupling of Hydrodynamics and Nuclear Reactions via Spectral Deferred Corrections"
    assert castro.authors[:2] == ("M. Zingale", "M. P. Katz")  # {Zingale}, M. and {Katz}, M.~P.
    assert (castro.year, castro.doi, castro.categories) == (2019, "10.3847/1538-4357/ab4e1d", ("physics.comp-ph",))
    assert castro.extra["arxiv_id"] == "1908.03661" and castro.extra["entry_type"] == "article"
    # A duplicated field keeps its first value, as BibTeX does.
    assert papers["maestroex"].venue == "accepted for publication in The Astrophysical Journal"
    assert papers["simple_sdc"].venue == "Journal of Physics: Conference Series"
    assert papers["starkiller"].authors[0] == "the StarKiller Microphysics Development Team"


def test_zotero_better_bibtex_library_decodes_braces_and_accents():
    papers, rejected = _read(_sample("library-zotero-bbt.bib"))
    assert rejected == [] and len(papers) == 30
    assert papers["bachlerSpectralAnalysisUnevenly2017"].title == (
        "Spectral Analysis of Unevenly Spaced Data: Models and Application in Heart Rate Variability.")
    assert "José María Remartínez" in papers["boleaMethodologicalFrameworkEstimating2014"].authors
    assert "R–R Interval" in papers["toichiNewMethodAssessing1997"].title  # \textendash
    assert all("{" not in p.title and "\\" not in p.title for p in papers.values())
    assert all(p.year for p in papers.values())  # "Nov./2001" too


def test_zotero_ris_library():
    path = _sample("library.ris")
    assert detect_format(path) == "ris"
    papers, rejected = _read(path)
    assert rejected == [] and len(papers) == 14
    thz = papers["10.1364/JOSAB.7.002006"]  # no ID tag: the DOI is the id
    assert thz.authors == ("D. Grischkowsky", "Søren Keiding", "Martin van Exter", "Ch. Fattinger")
    assert (thz.year, thz.venue) == (1990, "Journal of the Optical Society of America B")
    assert sum(bool(p.abstract) for p in papers.values()) == 1
    assert any(p.paper_id.startswith("ris-") and p.year == 2009 for p in papers.values())  # DA 2009///, no DOI


def test_zotero_csl_json_library():
    path = _sample("library-csl.json")
    assert detect_format(path) == "csl-json"
    papers, rejected = _read(path)
    assert rejected == [] and len(papers) == 13
    cell = papers["http://zotero.org/users/6749987/items/JD7V6KY8"]
    assert cell.authors[:2] == ("Suguru Nishijima", "Evelina Stankevic")
    assert (cell.year, cell.venue, cell.doi) == (2024, "Cell", "10.1016/j.cell.2024.10.022")  # year given as "2024"
    assert cell.abstract.startswith("The microbiota in individual habitats")
    text = path.read_text()
    assert all(f'"id": "{pid}"' in text for pid in papers)


# --- bad entries: one FILE:LINE: reason each, the rest indexed ---------------------------------------------

BAD_BIB = """% a library with one of each problem
@string{jcp = "Journal of Computational Physics"}
@string{ann = "Ann"}

@article{good,
  title = {Caf{\\'e} {\\"U}ber {GPU} $\\alpha$-decay --- done},
  author = ann # " Smith and M{\\"u}ller, J{\\"o}rg",
  journal = jcp,
  year = 2020,
}

@article{broken,
  title = {Unbalanced {brace here},
  year = {2021}
}

@inproceedings{after,
  title = "After the broken one",
  booktitle = {Proc. } # jcp,
  year = 2019,
}

@foo{weird,
  title = {An unknown type},
}
"""


def test_bibtex_rejections_name_their_line_and_the_rest_is_read(tmp_path):
    path = tmp_path / "refs.bib"
    path.write_text(BAD_BIB)
    papers, rejected = _read(path)
    assert sorted(papers) == ["after", "good"]
    assert rejected[0].startswith(f"{path}:12: the entry never closes: unbalanced braces")
    assert rejected[1].startswith(f"{path}:23: unknown entry type @foo")
    assert len(rejected) == 2
    good = papers["good"]
    assert good.title == "Café Über GPU α-decay — done"
    assert good.authors == ("Ann Smith", "Jörg Müller")  # @string macro joined with # and a literal
    assert good.venue == "Journal of Computational Physics"
    assert papers["after"].venue == "Proc. Journal of Computational Physics"


def test_ris_record_without_er_is_rejected_at_its_line(tmp_path):
    path = tmp_path / "refs.txt"  # told by its content, not its name
    path.write_text("TY  - JOUR\nTI  - First\nAU  - Doe, Jane\nPY  - 2001\n\n"
                    "TY  - JOUR\nID  - second\nTI  - Second\nER  - \n\n"
                    "TY  - BOOK\nTI  - Third, never closed\nPY  - 2003\n")
    assert detect_format(path) == "ris"
    papers, rejected = _read(path)
    assert list(papers) == ["second"]
    assert rejected == [f"{path}:1: RIS record has no 'ER  -' end tag (the next record starts at line 6)",
                        f"{path}:11: RIS record has no 'ER  -' end tag (the file ends inside it)"]


def test_csl_item_without_title_is_rejected_at_its_line(tmp_path):
    path = tmp_path / "refs.json"
    path.write_text("""[
  {"id": "a", "type": "article-journal", "title": "Has a title",
   "issued": {"date-parts": [["2021"]]}},
  {"id": "b", "type": "article-journal",
   "author": [{"family": "Doe", "given": "Jane"}]},
  "not an item"
]
""")
    assert detect_format(path) == "csl-json"
    papers, rejected = _read(path)
    assert list(papers) == ["a"] and papers["a"].year == 2021
    assert rejected == [f"{path}:4: paper 'b': missing title and no abstract",
                        f"{path}:6: expected a CSL item (a JSON object), got str"]


def test_index_command_indexes_a_library_and_lists_its_rejections(tmp_path, capsys):
    path = tmp_path / "refs.bib"
    path.write_text(BAD_BIB)
    assert main(["index", str(path), "--index", str(tmp_path / "index"), "--json"]) == 3
    captured = capsys.readouterr()
    assert json.loads(captured.out)["indexed"] == 2
    assert f"{path}:12: the entry never closes" in captured.err and f"{path}:23: unknown entry type" in captured.err
    assert "Traceback" not in captured.err


def test_latex_escape_is_the_inverse_of_decoding():
    for text in ("50% of $x_1^2$ & {braces} \\cite -- `quotes'' ~ #1", "Café — naïve", "a--b---c", "plain"):
        assert latex_to_text(latex_escape(text)) == text
