"""Keys belong in the Authorization header, never in a URL.

A URL is written to access logs, proxy logs and browser history, so a key sent as `?api_key=` is
refused (400, naming the header to use) before any route sees it, and every log line the server
writes has such query values and bearer tokens replaced by `[redacted]`.
"""

from __future__ import annotations

import copy
import logging
import re
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

# Query parameter names (compared case-insensitively, percent-decoded, '-' as '_') that look like a
# credential. No endpoint may take a parameter of these names (tests/test_server_keys.py checks the schema).
KEY_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token", "auth", "authorization", "password",
                        "secret"})
# Routes where a key-like name means something else, as a published API defines it: Semantic
# Scholar's bulk search pages by `token`, a continuation cursor (its value is still redacted in logs).
NOT_KEYS_ON = {"/graph/v1/paper/search/bulk": frozenset({"token"})}
REDACTED = "[redacted]"

_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[^\s'\",;)]+")
# A header as uvicorn's trace log prints it: (b'authorization', b'...').
_AUTH_PAIR = re.compile(r"(?i)(authorization['\"]?\s*[:,]\s*b?['\"]?)[^'\"\s,)]+")
_QUERY = re.compile(r"\?[^\s\"']*")


def key_params(query_string: str) -> list[str]:
    """The names in a raw query string that look like a credential, as the client spelled them."""
    found = []
    for pair in re.split(r"[&;]", query_string):
        name = pair.split("=", 1)[0]
        if _is_key_name(name):
            found.append(unquote_plus(name))
    return found


def _is_key_name(raw_name: str) -> bool:
    return unquote_plus(raw_name).strip().lower().replace("-", "_") in KEY_PARAMS


def redact_query(query_string: str) -> str:
    """The raw query string with the values of key-like parameters replaced by [redacted]."""
    pairs = re.split(r"([&;])", query_string)
    for i, pair in enumerate(pairs):
        name, sep, _ = pair.partition("=")
        if sep and _is_key_name(name):
            pairs[i] = f"{name}={REDACTED}"
    return "".join(pairs)


def redact(text: str) -> str:
    """`text` with bearer tokens, Authorization header values and key-like query values redacted."""
    text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    text = _AUTH_PAIR.sub(rf"\1{REDACTED}", text)
    return _QUERY.sub(lambda m: "?" + redact_query(m.group(0)[1:]), text)


class RedactSecrets(logging.Filter):
    """A logging filter that redacts secrets from a record before any handler formats it.

    uvicorn's access formatter unpacks the record's arguments (the request target, query string
    included, is one of them), so string arguments are redacted in place; a secret that only shows
    once the message is formatted (a header list at trace level) replaces the message whole.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args and record.name != "uvicorn.access":
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


def redacting_log_config(base: dict) -> dict:
    """A copy of a logging.config dict whose every handler runs RedactSecrets first."""
    config = copy.deepcopy(base)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    for handler in config.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", []), "redact_secrets"]
    return config


class RefuseKeysInQuery:
    """ASGI middleware: a request whose query string holds a key-like parameter is answered 400."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            allowed = NOT_KEYS_ON.get(scope.get("path", ""), frozenset())
            names = [n for n in key_params(scope["query_string"].decode("latin-1")) if n.lower() not in allowed]
            if names:
                message = (f"Send credentials in the 'Authorization: Bearer <key>' header, not in the URL "
                           f"(query parameter {names[0]!r}): URLs end up in logs and browser history.")
                await error_response(400, "key_in_query", message)(scope, receive, send)
                return
        await self.app(scope, receive, send)
