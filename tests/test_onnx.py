"""The ONNX query path: same vectors as sentence-transformers, no torch in a search, clear fallback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from indexer.store import IndexStore, onnx_export_dir
from models import onnx_encoder
from models.config import Settings
from models.embedder import create_embedder
from models.errors import InvalidInput, ModelLoadError
from models.paper import embed_text
from tests.conftest import ROOT, SAMPLE


def _sample_texts() -> list[str]:
    from indexer.ingest import read_papers

    return [embed_text(item.paper) for item in read_papers(SAMPLE) if hasattr(item, "paper")]


@pytest.fixture(scope="module")
def export_dir(sample_index_dir, embedder):
    """The export that indexing the sample corpus left in its index directory."""
    folder = onnx_export_dir(sample_index_dir, embedder.fingerprint)
    assert onnx_encoder.is_exported(folder), "index_file should export the model for torch-free searches"
    return folder


@pytest.fixture(scope="module")
def onnx_fp32(export_dir):
    return onnx_encoder.OnnxEmbedder(export_dir, "onnx", threads=1)


def test_onnx_vectors_match_sentence_transformers_on_real_abstracts(embedder, onnx_fp32):
    texts = _sample_texts()
    # Two abstracts glued together run past 256 tokens, so truncation is exercised too.
    texts += [texts[0] + " " + texts[1], "  protein folding  ", "x"]
    for role in ("document", "query"):
        reference = embedder.encode(texts, role)
        candidate = onnx_fp32.encode(texts, role, batch_size=5)  # several batches, mixed lengths
        assert candidate.shape == reference.shape == (len(texts), 384)
        assert candidate.dtype == np.float32
        cosines = np.sum(reference * candidate, axis=1)
        assert cosines.min() >= 0.9999, f"{role}: worst cosine {cosines.min():.6f} at {int(cosines.argmin())}"
        assert np.allclose(np.linalg.norm(candidate, axis=1), 1.0, atol=1e-5)


def test_onnx_encoder_reports_the_source_model(embedder, onnx_fp32):
    assert onnx_fp32.info == embedder.info  # so an index's fingerprint check accepts it
    assert onnx_fp32.encode([], "query").shape == (0, 384)


def test_onnx_session_uses_the_configured_threads(onnx_fp32):
    onnx_fp32.load()
    options = onnx_fp32._session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_engine_search_uses_onnx_and_ranks_like_torch(sample_index_dir, sample_engine):
    from search.engine import SearchEngine

    engine = SearchEngine.open(Settings(index_dir=sample_index_dir, threads=1))
    try:
        assert isinstance(engine.encoder, onnx_encoder.OnnxEmbedder)
        for query in ("protein structure prediction", "lightweight OCR", "large language model training"):
            torch_hits = sample_engine.search(query, limit=5)
            onnx_hits = engine.search(query, limit=5)
            assert [h.paper.paper_id for h in onnx_hits] == [h.paper.paper_id for h in torch_hits]
            assert np.allclose([h.score for h in onnx_hits], [h.score for h in torch_hits], atol=1e-4)
    finally:
        engine.close()


def test_engine_gives_query_encoding_at_most_two_threads_that_never_spin(sample_index_dir):
    from search.engine import QUERY_ENCODER_THREADS, SearchEngine

    engine = SearchEngine.open(Settings(index_dir=sample_index_dir))  # threads=0: the default
    try:
        options = engine.encoder._session.get_session_options()
        assert options.intra_op_num_threads == QUERY_ENCODER_THREADS == min(2, os.cpu_count() or 1)
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    finally:
        engine.close()


def test_library_packages_make_openmp_threads_sleep_when_idle():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import search.engine, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"


def test_engine_searches_on_one_faiss_thread_and_writers_restore_it(sample_index_dir, fresh_index_dir, embedder):
    import faiss

    from indexer.build import IndexWriter
    from search.engine import SearchEngine

    engine = SearchEngine.open(Settings(index_dir=sample_index_dir))  # threads=0: the default
    try:
        assert faiss.omp_get_max_threads() == 1
        with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder):
            assert faiss.omp_get_max_threads() == (os.cpu_count() or 1)  # builds get every core
        assert faiss.omp_get_max_threads() == 1  # and a server's searches get their bound back
    finally:
        engine.close()
        faiss.omp_set_num_threads(os.cpu_count() or 1)


def test_cli_search_in_a_fresh_process_never_imports_torch(sample_index_dir):
    script = (
        "import sys, json\n"
        "from api.cli import main\n"
        f"code = main(['search', 'protein folding', '--index', {str(sample_index_dir)!r}, '--json', '-k', '3'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'sentence_transformers', 'transformers'))\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary == {"code": 0, "heavy": []}
    hits = [json.loads(line) for line in lines[:-1]]
    assert len(hits) == 3 and hits[0]["rank"] == 1
    assert "note:" not in result.stderr  # no fallback message on the ONNX path


def test_search_without_export_falls_back_with_a_message(fresh_index_dir, caplog):
    from api.cli import main

    shutil.rmtree(fresh_index_dir / "onnx")
    with caplog.at_level("WARNING", logger="papersearch"):
        code = main(["search", "protein folding", "--index", str(fresh_index_dir), "-k", "2", "--json"])
    assert code == 0
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "no onnx export" in messages and "sentence-transformers" in messages
    assert "papersearch index" in messages  # tells the user how to get the fast path back


def test_export_made_from_other_weights_is_refused(tmp_path, export_dir, embedder):
    stale = tmp_path / "onnx" / embedder.fingerprint
    shutil.copytree(export_dir, stale)
    config = json.loads((stale / onnx_encoder.CONFIG_FILE).read_text())
    config["source_fingerprint"] = "0" * 16
    (stale / onnx_encoder.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="other weights"):
        create_embedder(embedder.name, "onnx", stale)


def test_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(InvalidInput, match="torch, onnx, onnx-int8"):
        create_embedder(backend="tensorflow")


def test_damaged_export_names_the_folder(tmp_path, export_dir):
    broken = tmp_path / "broken"
    shutil.copytree(export_dir, broken)
    (broken / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="broken"):
        onnx_encoder.OnnxEmbedder(broken).load()


def test_index_with_onnx_backend_stores_the_same_vectors(tmp_path, sample_index_dir):
    from api.cli import main

    target = tmp_path / "onnx-index"
    assert main(["index", str(SAMPLE), "--index", str(target), "--backend", "onnx", "--quiet"]) == 0
    torch_store, onnx_store = IndexStore.open(sample_index_dir), IndexStore.open(target)
    try:
        ids = [paper.paper_id for _, paper in torch_store.iter_papers()]
        reference, candidate = torch_store.embeddings_for(ids), onnx_store.embeddings_for(ids)
        assert set(candidate) == set(ids)
        cosines = [float(reference[pid] @ candidate[pid]) for pid in ids]
        assert min(cosines) >= 0.9999
        assert onnx_store.model == torch_store.model
    finally:
        torch_store.close()
        onnx_store.close()


@pytest.mark.slow
def test_int8_export_stays_close_to_fp32(tmp_path, export_dir, onnx_fp32):
    folder = tmp_path / "export"
    shutil.copytree(export_dir, folder)
    onnx_encoder.quantize(folder)
    assert onnx_encoder.is_exported(folder, "onnx-int8")
    int8 = onnx_encoder.OnnxEmbedder(folder, "onnx-int8", threads=1)
    texts = _sample_texts()
    reference, candidate = onnx_fp32.encode(texts, "document"), int8.encode(texts, "document")
    cosines = np.sum(reference * candidate, axis=1)
    # Per-channel, reduced-range int8 measured 0.99+ on MiniLM; a broken quantisation lands far lower.
    assert cosines.mean() >= 0.98 and cosines.min() >= 0.95
    assert not np.allclose(reference, candidate, atol=1e-4)  # really the quantised model
