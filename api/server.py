"""`papersearch serve`: build the sample index on first start if asked, bind, run uvicorn, print the URL."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

import indexer
from indexer.build import IndexReport, index_file
from indexer.store import IndexStore
from models.config import Settings
from models.errors import IndexNotBuilt, InvalidInput, PaperSearchError

# The 24 abstracts shipped with the package (a few clear topics: OCR, protein folding, ...).
SAMPLE_CORPUS = Path(indexer.__file__).resolve().parent / "sample" / "papers.jsonl"


def ensure_sample_index(settings: Settings) -> IndexReport | None:
    """Index the bundled sample into `settings.index_dir` when it holds no index yet.

    An existing index, even a broken one, is left alone: the server then reports its state.
    """
    try:
        IndexStore.open(settings.index_dir).close()
        return None
    except IndexNotBuilt:
        return index_file(settings, SAMPLE_CORPUS)
    except PaperSearchError:
        return None


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket, so a busy port is a clear error before the model loads."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise InvalidInput(f"Cannot listen on {host}:{port} ({exc.strerror or exc}). Pass another --port, "
                           "or stop the program using it.") from exc


def public_url(host: str, port: int) -> str:
    """The URL to print: a wildcard host is shown as localhost, which a browser can open."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def server_options(settings: Settings) -> dict:
    """uvicorn.Config options for the slow-client limits, the log and the protocol (docs/reliability-api.md)."""
    from uvicorn.config import LOGGING_CONFIG

    from api.http_protocol import protocol_class
    from api.url_secrets import redacting_log_config

    # ws="none": the app has no WebSocket route, so an Upgrade request is served as plain HTTP.
    return {"http": protocol_class(settings), "ws": "none", "timeout_keep_alive": settings.keep_alive_seconds,
            "log_config": redacting_log_config(LOGGING_CONFIG)}


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, sample: bool = False,
          quiet: bool = False, announce: Callable[[str], None] | None = None) -> int:
    """Run the server until interrupted. Returns the process exit code."""
    import uvicorn

    from api.app import create_app

    announce = announce or (lambda line: print(line, flush=True))
    if sample:
        report = ensure_sample_index(settings)
        if report is not None:
            print(f"Built the sample index in {settings.index_dir}: {report.summary()}", file=sys.stderr)
    sock = bind_socket(host, port)
    url = public_url(host, sock.getsockname()[1])
    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, workers=1, **server_options(settings),
                            log_level="warning" if quiet else "info", timeout_graceful_shutdown=5)

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)  # runs the lifespan: index opened, model loaded
            if not self.should_exit:
                announce(f"PaperSearch is running at {url}  (API docs: {url}docs, index: {settings.index_dir})")
                try:
                    app.state.service.health()
                except PaperSearchError as exc:
                    announce(f"Not ready yet: {exc}")

    _Server(config).run(sockets=[sock])
    return 0
