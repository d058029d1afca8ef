"""`papersearch mcp`: serve an index to MCP clients (desktop assistants, IDEs, agents) over stdio,
or over streamable HTTP with --http PORT (bound to 127.0.0.1 unless --host says otherwise)."""

from __future__ import annotations

import argparse
import logging
import sys

from api.cli_args import PORT, settings_from
from models.errors import PaperSearchError

NAME = "mcp"
HELP = "Serve the index to Model Context Protocol clients (stdio, or streamable HTTP with --http PORT)."
EXAMPLE = "papersearch mcp --index ./my-index   (or: papersearch mcp --index ./my-index --http 8765)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--http", type=PORT, default=None, metavar="PORT",
                   help="speak streamable HTTP on this port (at /mcp) instead of stdio")
    p.add_argument("--host", default="127.0.0.1",
                   help="with --http: address to listen on (default 127.0.0.1; 0.0.0.0 exposes the index)")


def run(args: argparse.Namespace) -> int:
    try:
        from api.mcp_server import build_server
    except ImportError as exc:  # the optional 'mcp' extra
        raise PaperSearchError(f"papersearch mcp needs the MCP SDK ({exc}): pip install 'papersearch[mcp]'.") from None
    # stdout carries the protocol on stdio: every note goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING if args.quiet else logging.INFO)
    server = build_server(settings_from(args))
    if args.http is None:
        server.run("stdio")
    else:
        print(f"MCP over streamable HTTP on http://{args.host}:{args.http}/mcp", file=sys.stderr)
        server.run("streamable-http", host=args.host, port=args.http)
    return 0
