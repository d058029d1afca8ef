"""ONNX Runtime encoder: the torch-free twin of `Embedder`, and the one-time export that makes it.

An export folder (the index keeps one at INDEX_DIR/onnx/<fingerprint>/, see
`indexer.store.onnx_export_dir`) is self-contained:

    model.onnx         transformer + attention-mask mean pooling + L2 normalisation, fp32
    model-int8.onnx    the same with int8 weights (made only when asked for: --backend onnx-int8)
    tokenizer.json     the exact tokenizer sentence-transformers uses, saved by `tokenizers`
    encoder.json       max_seq_length, input names, prefixes, dimension, the source fingerprint

Exporting needs torch: it traces the loaded sentence-transformers model once and checks the
result against it. Encoding needs only onnxruntime, tokenizers and numpy, so a search never
imports torch, and its vectors match sentence-transformers to cosine >= 0.9999 (fp32).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from models.errors import ModelLoadError

log = logging.getLogger("papersearch")

# Backend name -> file in the export folder. "torch" is sentence-transformers itself.
VARIANT_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "encoder.json"
EXPORT_FORMAT = 1
# 17 is the newest opset every onnxruntime >= 1.15 runs with all optimisations.
OPSET = 17
# Below this cosine to sentence-transformers an export is refused (an architecture the tracer
# mishandled); fp32 exports of BERT-style models land at 0.999999+.
MIN_EXPORT_COSINE = 0.9999
_PROBE_TEXTS = (
    "Protein structure prediction with deep learning.",
    "A lightweight OCR model for scanned historical newspapers, evaluated on three benchmarks "
    "with character error rates and throughput on commodity CPUs.",
)

# Exports this process already made, by fingerprint: another index of the same model links
# the files instead of tracing again (test suites build many small indexes).
_EXPORTED: dict[str, Path] = {}
_EXPORT_LOCK = threading.Lock()


def is_exported(folder: Path | None, variant: str = "onnx") -> bool:
    """True when `folder` holds a complete export with the given variant's model file."""
    if folder is None or variant not in VARIANT_FILES:
        return False
    folder = Path(folder)
    return all((folder / name).is_file() for name in (VARIANT_FILES[variant], TOKENIZER_FILE, CONFIG_FILE))


def read_config(folder: Path) -> dict:
    """The export's encoder.json, or ModelLoadError naming the folder."""
    path = Path(folder) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"No usable ONNX export in {folder} ({exc}); re-run 'papersearch index'.") from exc
    if config.get("format", 0) > EXPORT_FORMAT:
        raise ModelLoadError(f"The ONNX export in {folder} is newer than this PaperSearch; upgrade it.")
    return config


# --- export (needs torch) -----------------------------------------------------------------------


def export(embedder, folder: Path, int8: bool = False) -> Path:
    """Export `embedder`'s model (a models.embedder.Embedder) into `folder`; returns the folder.

    Writes into a temporary sibling and renames it into place, so a reader never sees half an
    export. Adds the int8 file when `int8` is set. Raises ModelLoadError when the model has a
    shape this exporter does not cover (the caller falls back to sentence-transformers).
    """
    folder = Path(folder)
    with _EXPORT_LOCK:
        if not is_exported(folder):
            if not _link_previous(embedder.fingerprint, folder):
                _export_fp32(embedder, folder)
            _EXPORTED[embedder.fingerprint] = folder
        if int8 and not is_exported(folder, "onnx-int8"):
            quantize(folder)
    return folder


def _export_fp32(embedder, folder: Path) -> None:
    model = embedder._load()  # the loaded SentenceTransformer: the reference we must match
    spec = _describe(model, embedder)
    staging = _staging_dir(folder)
    try:
        model.tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
        (staging / CONFIG_FILE).write_text(json.dumps(spec, indent=2) + "\n")
        _trace(model, spec, staging / VARIANT_FILES["onnx"])
        _verify(model, staging, embedder)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _describe(model, embedder) -> dict:
    """encoder.json for a SentenceTransformer made of Transformer + Pooling (+ Normalize)."""
    kinds = [type(module).__name__ for module in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ModelLoadError(f"Model {embedder.name!r} has modules {kinds}; the ONNX export covers "
                             "Transformer + Pooling (+ Normalize) only.")
    pooling = model[1]
    mode = getattr(pooling, "pooling_mode", "mean")
    if mode not in ("mean", "cls") or getattr(pooling, "include_prompt", True) is False:
        raise ModelLoadError(f"Model {embedder.name!r} pools with {mode!r}; the ONNX export covers mean and cls.")
    tokenizer = model.tokenizer
    forward_inputs = ("input_ids", "attention_mask", "token_type_ids")
    inputs = [name for name in forward_inputs if name in tokenizer.model_input_names]
    import sentence_transformers
    import torch

    return {
        "format": EXPORT_FORMAT,
        "model_name": embedder.name,
        "source_fingerprint": embedder.fingerprint,
        "dimension": int(embedder.dimension),
        "max_seq_length": int(model.max_seq_length),
        "pooling": mode,
        "input_names": inputs,
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_token": tokenizer.pad_token or "[PAD]",
        "query_prefix": embedder.query_prefix,
        "document_prefix": embedder.document_prefix,
        "exported_with": {"torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__},
    }


def _trace(model, spec: dict, target: Path) -> None:
    """torch.onnx.export of transformer + pooling + normalise, dynamic batch and sequence axes."""
    import torch

    class _Pipeline(torch.nn.Module):
        def __init__(self, transformer, pooling: str, names: list[str]):
            super().__init__()
            self.transformer, self.pooling, self.names = transformer, pooling, names

        def forward(self, *tensors):
            features = dict(zip(self.names, tensors, strict=True))
            hidden = self.transformer(**features)[0]
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:  # sentence-transformers' mean: mask-weighted sum over a clamped token count
                mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    names = spec["input_names"]
    transformer = model[0].auto_model
    pipeline = _Pipeline(transformer, spec["pooling"], names).eval()
    sample = model.tokenizer(list(_PROBE_TEXTS), padding=True, truncation=True, return_tensors="pt",
                             max_length=spec["max_seq_length"])
    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {"sentence_embedding": {0: "batch"}}
    import warnings

    # Trace the plain ("eager") attention: its MatMul/Softmax graph runs about 15% faster in
    # onnxruntime than the traced scaled_dot_product_attention (measured on MiniLM, 256 tokens).
    previous = getattr(transformer.config, "_attn_implementation", None)
    switch = getattr(transformer, "set_attn_implementation", None)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow are expected
        try:
            if switch and previous not in (None, "eager"):
                switch("eager")
            # The TorchScript exporter (dynamo=False) needs only the `onnx` package; the dynamo
            # one would also need onnxscript and handles these dynamic axes no better.
            torch.onnx.export(pipeline, tuple(sample[name] for name in names), str(target), input_names=names,
                              output_names=["sentence_embedding"], dynamic_axes=axes, opset_version=OPSET,
                              dynamo=False)
        finally:
            if switch and previous not in (None, "eager"):
                switch(previous)


def _verify(model, staging: Path, embedder) -> None:
    """Refuse an export whose vectors drift from sentence-transformers' on the probe texts."""
    reference = embedder.encode(list(_PROBE_TEXTS), "document")
    candidate = OnnxEmbedder(staging, threads=1).encode(list(_PROBE_TEXTS), "document")
    cosine = float(np.min(np.sum(reference * candidate, axis=1)))
    if cosine < MIN_EXPORT_COSINE:
        raise ModelLoadError(f"The ONNX export of {embedder.name!r} drifts from sentence-transformers "
                             f"(cosine {cosine:.6f} < {MIN_EXPORT_COSINE}); not using it.")


def quantize(folder: Path) -> Path:
    """Add model-int8.onnx: dynamic int8 quantisation, per output channel with reduced range.

    Per-channel scales keep each row's precision; reduce_range (7-bit weights) avoids the
    saturation of VPMADDUBSW on CPUs without VNNI, where plain per-tensor int8 drifts badly.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    target = folder / VARIANT_FILES["onnx-int8"]
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".int8.", suffix=".onnx")
    os.close(fd)
    try:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its "consider pre-processing" advice is for vision models
        try:
            quantize_dynamic(str(folder / VARIANT_FILES["onnx"]), tmp, per_channel=True, reduce_range=True,
                             weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it owner-only; the fp32 file is not
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _staging_dir(folder: Path) -> Path:
    """A temporary sibling of `folder` with ordinary permissions (mkdtemp makes it owner-only)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    return staging


def _link_previous(fingerprint: str, folder: Path) -> bool:
    """Copy (hard-link where possible) an export this process made for the same model."""
    source = _EXPORTED.get(fingerprint)
    if source is None or source == folder or not is_exported(source):
        return False
    staging = _staging_dir(folder)
    try:
        for path in source.iterdir():
            if path.is_file() and not path.name.startswith("."):
                try:
                    os.link(path, staging / path.name)
                except OSError:
                    shutil.copy2(path, staging / path.name)
        os.replace(staging, folder)
    except OSError:
        return False
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


# --- encoding (torch-free) ----------------------------------------------------------------------


class OnnxEmbedder:
    """Encodes like `Embedder` (same name, fingerprint, prefixes, vectors) with onnxruntime.

    Args:
        folder: an export folder made by `export`.
        variant: "onnx" (fp32) or "onnx-int8".
        threads: onnxruntime intra-op threads; 0 means the number of cores.
        batch_size: texts per model call.
        spin: let idle worker threads busy-wait between operators. Off by default: spinning
            threads steal the cores that FAISS, other requests and other programs need, and
            on a shared 2-core machine they made everything slower.
    """

    def __init__(self, folder: Path, variant: str = "onnx", threads: int = 0, batch_size: int = 32,
                 spin: bool = False):
        if variant not in VARIANT_FILES:
            raise ModelLoadError(f"Unknown ONNX variant {variant!r}; choose one of {', '.join(VARIANT_FILES)}.")
        if not is_exported(Path(folder), variant):
            raise ModelLoadError(f"No {variant} export in {folder}; run 'papersearch index --backend {variant}'.")
        self.folder = Path(folder)
        self.variant = variant
        self.threads = threads
        self.batch_size = batch_size
        self.spin = spin
        config = read_config(self.folder)
        self.config = config
        self.name = config["model_name"]
        self.fingerprint = config["source_fingerprint"]
        self.query_prefix = config.get("query_prefix", "")
        self.document_prefix = config.get("document_prefix", "")
        self._dimension = int(config["dimension"])
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """Length of the vectors this model makes."""
        return self._dimension

    @property
    def info(self):
        """Name, fingerprint and dimension, as recorded in an index."""
        from models.embedder import ModelInfo

        return ModelInfo(self.name, self.fingerprint, self._dimension)

    def load(self) -> OnnxEmbedder:
        """Create the onnxruntime session and tokenizer now (otherwise on first encode)."""
        with self._lock:
            if self._session is None:
                self._tokenizer = self._make_tokenizer()
                self._session = self._make_session()
        return self

    def _make_session(self):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelLoadError("onnxruntime is not installed; run 'pip install onnxruntime'.") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads if self.threads > 0 else (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        options.log_severity_level = 3  # warnings about unused initialisers are noise to users
        try:
            return ort.InferenceSession(str(self.folder / VARIANT_FILES[self.variant]), options,
                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelLoadError(f"Could not load {self.folder / VARIANT_FILES[self.variant]}: {exc}. "
                                 "Delete that folder and re-run 'papersearch index' to export again.") from exc

    def _make_tokenizer(self):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER_FILE))
        # tokenizer.json often carries the hub's own padding/truncation (fixed 128 for MiniLM);
        # sentence-transformers truncates at max_seq_length and pads to the longest in a batch.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=int(self.config["max_seq_length"]))
        return tokenizer

    def encode(self, texts: list[str], role: str, batch_size: int | None = None) -> np.ndarray:
        """Embed texts as (n, dim) float32 rows of unit length."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if self._session is None:
            self.load()
        prefix = self.query_prefix if role == "query" else self.document_prefix
        encodings = self._tokenizer.encode_batch([prefix + t for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        # Longest first, as sentence-transformers does: batches of similar length waste little padding.
        order = np.argsort(-lengths, kind="stable")
        size = batch_size or self.batch_size
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(texts), size):
            rows = order[start:start + size]
            feeds = self._feeds([encodings[i] for i in rows], int(lengths[rows].max()))
            out[rows] = self._session.run(["sentence_embedding"], feeds)[0]
        return out

    def _feeds(self, encodings: list, width: int) -> dict[str, np.ndarray]:
        ids = np.full((len(encodings), width), int(self.config["pad_id"]), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: arrays[name] for name in self.config["input_names"]}
