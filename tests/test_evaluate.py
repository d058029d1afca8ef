"""The eval metrics against hand-computed values, BEIR loading, and `eval` end to end on a tiny set."""

from __future__ import annotations

import json
import math

import pytest

from api.cli import main
from api.evaluate import evaluate, load_beir, read_qrels
from models.config import Settings
from models.errors import InvalidInput
from search.metrics import mrr_at_k, ndcg_at_k, recall_at_k, score_run

from .conftest import ROOT, SAMPLE

# --- metrics --------------------------------------------------------------------------------------

RANKED = ["a", "b", "c", "d"]
GRADES = {"b": 2, "d": 1, "e": 3, "f": 0}  # e is relevant but never retrieved; f is judged irrelevant


def test_ndcg_counts_by_grade():
    dcg = 2 / math.log2(3) + 1 / math.log2(5)  # b at rank 2, d at rank 4
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)  # e, b, d
    assert ndcg_at_k(RANKED, GRADES, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(RANKED, GRADES, 10) == pytest.approx(0.355436, abs=1e-6)
    assert ndcg_at_k(RANKED, GRADES, 1) == 0.0  # a is not relevant
    assert ndcg_at_k(["e", "b", "d"], GRADES, 10) == pytest.approx(1.0)
    assert ndcg_at_k([], GRADES, 10) == 0.0


def test_recall_and_mrr():
    assert recall_at_k(RANKED, GRADES, 100) == pytest.approx(2 / 3)  # b and d of b, d, e
    assert recall_at_k(RANKED, GRADES, 2) == pytest.approx(1 / 3)
    assert mrr_at_k(RANKED, GRADES, 10) == 0.5  # first relevant at rank 2
    assert mrr_at_k(RANKED, GRADES, 1) == 0.0
    assert mrr_at_k(["f", "d"], GRADES, 10) == 0.5  # grade 0 is not relevant


def test_score_run_averages_and_counts_missing_queries_as_zero():
    qrels = {"q1": {"x": 1}, "q2": {"y": 1}}
    scores = score_run({"q1": ["x"]}, qrels)
    assert scores == {"ndcg_at_10": 0.5, "recall_at_100": 0.5, "mrr_at_10": 0.5}


# --- loading --------------------------------------------------------------------------------------


def write_beir(folder, queries, qrels_lines, header=True):
    """A BEIR-layout data set over the 24 sample papers."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as out:
        for line in SAMPLE.read_text().splitlines():
            record = json.loads(line)
            out.write(json.dumps({"_id": record["id"], "title": record["title"],
                                  "text": record["abstract"], "metadata": {}}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for qid, text in queries.items():
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    lines = (["query-id\tcorpus-id\tscore"] if header else []) + qrels_lines
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


QUERIES = {
    "q1": "protein structure prediction with AlphaFold2",
    "q2": "ultra lightweight OCR system for text recognition",
    "q3": "wind power forecasting dataset",
    "q4": "a query whose judgments are all zero",
}
QRELS = ["q1\tseed-01\t1", "q2\tseed-03\t2", "q2\tseed-17\t1", "q3\tseed-06\t1", "q4\tseed-02\t0"]


def test_load_beir_keeps_judged_queries_only(tmp_path):
    dataset = load_beir(write_beir(tmp_path / "tiny", QUERIES, QRELS), "test")
    assert dataset.name == "tiny"
    assert sorted(dataset.queries) == ["q1", "q2", "q3"]  # q4 has no relevant document
    assert dataset.qrels["q2"] == {"seed-03": 2, "seed-17": 1}


def test_qrels_header_is_optional(tmp_path):
    folder = write_beir(tmp_path / "tiny", QUERIES, QRELS, header=False)
    assert read_qrels(folder / "qrels" / "test.tsv")["q1"] == {"seed-01": 1}


def test_load_beir_names_what_is_missing(tmp_path):
    folder = write_beir(tmp_path / "tiny", QUERIES, QRELS)
    with pytest.raises(InvalidInput, match=r"train\.tsv does not exist; splits here: test"):
        load_beir(folder, "train")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(InvalidInput, match="no queries.jsonl"):
        load_beir(folder, "test")
    bad = write_beir(tmp_path / "bad", QUERIES, QRELS + ["q9\tseed-01\t1"])
    with pytest.raises(InvalidInput, match="not in queries, e.g. 'q9'"):
        load_beir(bad, "test")


# --- end to end -----------------------------------------------------------------------------------


def test_evaluate_builds_then_reuses_the_cached_index(tmp_path, embedder):
    folder = write_beir(tmp_path / "tiny", QUERIES, QRELS)
    settings = Settings(eval_cache_dir=tmp_path / "cache")
    first = evaluate(folder, settings, modes=("dense", "lexical", "hybrid"), embedder=embedder)
    assert [r.mode for r in first] == ["dense", "lexical", "hybrid"]
    for report in first:
        assert report.queries == 3
        # Each query names its paper plainly; every mode finds them near the top.
        assert report.recall_at_100 == 1.0
        assert report.ndcg_at_10 > 0.8, report
        assert report.mean_latency_ms > 0
    marker = next((tmp_path / "cache").glob("tiny-*/built.json"))
    built = json.loads(marker.read_text())
    assert built["indexed"] == 24
    stamp = marker.stat().st_mtime_ns
    again = evaluate(folder, settings, modes=("lexical",), embedder=embedder)
    assert again[0].index_dir == first[0].index_dir
    assert marker.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert again[0].ndcg_at_10 == first[1].ndcg_at_10


def test_eval_command_prints_a_table_and_json(tmp_path, capsys, monkeypatch):
    folder = write_beir(tmp_path / "tiny", QUERIES, QRELS)
    monkeypatch.setenv("PAPERSEARCH_CACHE", str(tmp_path / "cache"))
    assert main(["eval", str(folder), "--mode", "lexical", "hybrid"]) == 0
    out = capsys.readouterr().out
    assert "tiny / test: 3 judged queries" in out
    assert "nDCG@10" in out and "lexical" in out and "hybrid" in out
    assert main(["eval", str(folder), "--mode", "lexical", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[0])
    assert len(lines) == 1
    assert report["mode"] == "lexical" and report["queries"] == 3
    assert set(report) >= {"ndcg_at_10", "recall_at_100", "mrr_at_10", "mean_latency_ms"}
    assert str(tmp_path / "cache") in report["index_dir"]


def test_eval_command_reports_a_bad_folder(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nowhere")]) == 1
    assert "no such data set folder" in capsys.readouterr().err


def test_the_cache_key_changes_with_the_indexing_code(tmp_path):
    """A cached index is reused only by the code that built it, so it cannot hide an indexing regression."""
    from api.evaluate import cache_key, indexing_code_digest, indexing_code_files

    names = {str(p.relative_to(ROOT)) for p in indexing_code_files()}
    for part in ("indexer/records.py", "indexer/plan.py", "indexer/build.py", "indexer/store/writes.py",
                 "indexer/ingest.py", "indexer/lexical.py", "models/paper.py"):
        assert part in names
    folder = write_beir(tmp_path / "tiny", QUERIES, QRELS)
    assert cache_key(load_beir(folder), "fp").endswith(f"-fp-{indexing_code_digest()}")


# --- BEIR documents without a title -----------------------------------------------------------------


def _untitled_set(folder, extra_records=()):
    """Five sample papers as BEIR documents, three without a title (empty, blank, absent)."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines()][:5]
    with (folder / "corpus.jsonl").open("w") as out:
        for number, record in enumerate(records):
            doc = {"_id": record["id"], "title": ["", "  ", None, record["title"], record["title"]][number],
                   "text": record["abstract"]}
            if doc["title"] is None:
                del doc["title"]
            out.write(json.dumps(doc) + "\n")
        for doc in extra_records:
            out.write(json.dumps(doc) + "\n")
    queries = {"q1": "protein structure prediction AlphaFold2 PaddlePaddle",
               "q2": "real-time semantic segmentation",
               "q3": "ultra lightweight OCR system text detection"}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "test.tsv").write_text("q1\tseed-01\t1\nq2\tseed-02\t1\nq3\tseed-03\t1\n")
    return folder


def test_records_without_a_title_are_indexed_from_their_text():
    from indexer.records import to_paper

    paper = to_paper({"_id": "d1", "title": "", "text": "An abstract that says enough."}, fmt="beir")
    assert (paper.title, paper.abstract) == ("", "An abstract that says enough.")
    assert to_paper({"id": "d2", "abstract": "Only an abstract."}).title == ""
    with pytest.raises(InvalidInput, match="empty title"):
        to_paper({"id": "d3", "title": " ", "abstract": ""})


def test_eval_scores_documents_without_a_title(tmp_path, embedder):
    folder = _untitled_set(tmp_path / "untitled")
    reports = evaluate(folder, Settings(eval_cache_dir=tmp_path / "cache"), modes=("dense", "lexical", "hybrid"),
                       embedder=embedder)
    # Each query is about one of the untitled papers, which only their text describes.
    for report in reports:
        assert report.queries == 3 and report.ndcg_at_10 == pytest.approx(1.0), report


def test_eval_fails_loudly_when_part_of_the_corpus_is_rejected(tmp_path, capsys, monkeypatch):
    folder = _untitled_set(tmp_path / "partial", [{"_id": "listed", "title": ["a list"], "text": "Some text."},
                                                  {"_id": "numbered", "title": 7, "text": "More text."}])
    monkeypatch.setenv("PAPERSEARCH_CACHE", str(tmp_path / "cache"))
    assert main(["eval", str(folder), "--mode", "lexical"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "2 corpus record(s) could not be indexed" in err[0] and "field 'title' must be a string" in err[0]
    assert main(["eval", str(folder), "--mode", "lexical"]) == 1  # no marker: every run fails, none scores


def test_eval_leaves_out_documents_without_any_text_with_a_note(tmp_path, capsys, caplog, monkeypatch):
    folder = _untitled_set(tmp_path / "blank", [{"_id": "blank", "title": "", "text": ""}, {"_id": "nothing"}])
    monkeypatch.setenv("PAPERSEARCH_CACHE", str(tmp_path / "cache"))
    for _ in range(2):  # built, then reused from the cache: the note both times
        assert main(["eval", str(folder), "--mode", "lexical", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["ndcg_at_10"] == pytest.approx(1.0)
        assert "2 corpus document(s) hold no text at all and are left out" in caplog.text
        caplog.clear()


def test_the_upload_schema_takes_an_untitled_record_with_an_abstract():
    jsonschema_rs = pytest.importorskip("jsonschema_rs")  # comes with schemathesis (the test extra)
    from api.schemas import PAPER_RECORD_SCHEMA

    valid = jsonschema_rs.validator_for(PAPER_RECORD_SCHEMA).is_valid
    assert valid({"id": "d1", "abstract": "Only an abstract."})
    assert valid({"_id": "d2", "title": "", "text": "BEIR text."})
    assert not valid({"id": "d3", "title": ""}) and not valid({"id": "d4"})
