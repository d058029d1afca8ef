"""The command line through main([...]) and, once, as the installed `papersearch` program."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from api.cli import main
from tests.conftest import ROOT, SAMPLE


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_search_prints_ranked_json_hits(sample_index_dir, capsys):
    assert main(["search", "lightweight OCR", "--index", str(sample_index_dir), "--json", "-k", "3",
                 "--mode", "dense"]) == 0
    hits = _json_lines(capsys.readouterr().out)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert {h["paper_id"] for h in hits} == {"seed-03", "seed-17", "seed-10"}
    for field in ("paper_id", "title", "authors", "year", "categories", "score", "rank", "abstract", "extra"):
        assert field in hits[0]


def test_search_output_for_people(sample_index_dir, capsys):
    assert main(["search", "protein folding", "--index", str(sample_index_dir), "-k", "2", "--mode", "dense"]) == 0
    out = capsys.readouterr().out
    assert "1. [" in out and "HelixFold" in out


def test_related_recommend_and_filters(sample_index_dir, capsys):
    index = ["--index", str(sample_index_dir), "--json"]
    assert main(["related", "seed-03", *index, "-k", "1"]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["paper_id"] == "seed-17"
    assert main(["recommend", "--positive", "seed-03", "seed-17", "--negative", "seed-09", *index]) == 0
    ids = [h["paper_id"] for h in _json_lines(capsys.readouterr().out)]
    assert not {"seed-03", "seed-17", "seed-09"} & set(ids)
    assert main(["search", "detector", *index, "--year-from", "2021", "--year-to", "2021", "--category", "cs.CV",
                 "--mode", "dense"]) == 0
    assert all(h["year"] == 2021 for h in _json_lines(capsys.readouterr().out))


def test_user_errors_exit_1_with_a_message(sample_index_dir, tmp_path, capsys):
    assert main(["related", "no-such-paper", "--index", str(sample_index_dir)]) == 1
    assert "Unknown paper id: 'no-such-paper'" in capsys.readouterr().err
    assert main(["search", "ocr", "--index", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "No index in" in err and "papersearch index" in err
    assert main(["search", "  ", "--index", str(sample_index_dir)]) == 1
    assert "empty" in capsys.readouterr().err


def test_bad_usage_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["search"])
    assert exc.value.code == 2


def test_index_delete_info_round_trip(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PAPERSEARCH_INDEX", str(tmp_path / "env-index"))
    source = tmp_path / "papers.jsonl"
    source.write_text(SAMPLE.read_text() + '{"id": "broken"}\n')
    assert main(["index", str(source), "--json"]) == 3  # some records rejected, the rest indexed
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert (summary["indexed"], summary["rejected"]) == (24, 1)
    assert f"{source}:25: paper 'broken': missing title" in captured.err

    assert main(["delete", "seed-01", "seed-02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": ["seed-01", "seed-02"], "not_found": []}
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["papers"] == 22 and info["dimension"] == 384 and info["model"] == "all-MiniLM-L6-v2"
    assert info["index_type"] == "flat" and info["size_bytes"] > 0
    assert info["index"] == str(tmp_path / "env-index")


def test_installed_command_runs(sample_index_dir):
    exe = shutil.which("papersearch")
    if exe is None:
        pytest.skip("the papersearch command is not installed (pip install -e .)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([exe, "search", "lightweight OCR", "--index", str(sample_index_dir), "--json", "-k", "3"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert {h["paper_id"] for h in _json_lines(done.stdout)} == {"seed-03", "seed-17", "seed-10"}


def test_bench_prints_ann_recall_for_an_index(sample_index_dir, tmp_path, capsys):
    # A tiny BEIR folder whose queries are sample titles: the ANN section encodes them with the
    # index's own ONNX export and compares HNSW with exact search over the stored vectors.
    from indexer.ingest import read_papers

    papers = [item.paper for item in read_papers(SAMPLE) if hasattr(item, "paper")]
    corpus = tmp_path / "beir"
    (corpus / "qrels").mkdir(parents=True)
    (corpus / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": p.paper_id, "title": p.title, "text": p.abstract}) + "\n" for p in papers))
    (corpus / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": p.title}) + "\n" for i, p in enumerate(papers)))
    (corpus / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q{i}\t{p.paper_id}\t1\n" for i, p in enumerate(papers)))
    code = main(["bench", "ann", "--corpus", str(corpus), "--index", str(sample_index_dir),
                 "--workdir", str(tmp_path / "work")])
    out = capsys.readouterr().out
    assert code == 0
    assert "- command: papersearch bench ann" in out
    assert f"HNSW vs exact, {len(papers)} real MiniLM document vectors, {len(papers)} real queries" in out
    flat_row = next(line for line in out.splitlines() if line.startswith("| flat (exact)"))
    assert flat_row.split("|")[3].strip() == "1.00"  # exact search agrees with itself


def test_bench_names_a_missing_corpus_instead_of_a_traceback(tmp_path, capsys):
    missing = tmp_path / "no-such-corpus"
    assert main(["bench", "ann", "--corpus", str(missing), "--workdir", str(tmp_path / "work")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "--corpus" in err and "Traceback" not in err
