"""Errors at the HTTP edge: one JSON shape and one handler for every failure.

Every error response, whatever raised it, looks like

    {"error": {"code": "paper_not_found", "message": "Unknown paper id: 'x'. ..."}}

`describe` is the single table from exception to (status, code, message); `handle_error` is the
single handler registered for every exception class the app can meet.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from models.errors import (
    IndexBusy,
    IndexCorrupt,
    IndexModelMismatch,
    IndexNotBuilt,
    InvalidInput,
    InvalidQuery,
    ModelLoadError,
    PaperNotFound,
    PaperSearchError,
)

log = logging.getLogger("papersearch.api")


class ApiError(Exception):
    """An HTTP-only failure (authentication, body size, bad parameter) with its status and code."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


# Most specific class first: the first match wins.
_DOMAIN_ERRORS: tuple[tuple[type[PaperSearchError], int, str], ...] = (
    (PaperNotFound, 404, "paper_not_found"),
    (InvalidQuery, 400, "invalid_query"),
    (InvalidInput, 400, "invalid_input"),
    (IndexNotBuilt, 503, "index_not_built"),
    (IndexCorrupt, 503, "index_corrupt"),
    (IndexBusy, 503, "index_busy"),
    (IndexModelMismatch, 503, "index_model_mismatch"),
    (ModelLoadError, 503, "model_unavailable"),
    (PaperSearchError, 400, "error"),
)

# FastAPI raises a plain 400 when it cannot parse a JSON body at all (e.g. nested too deeply).
_HTTP_CODES = {400: "invalid_json", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}

# Seconds a client should wait before retrying a 503; a write or an index build is usually short.
RETRY_AFTER_SECONDS = "2"


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape."""
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSONResponse in the one error shape."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def describe(exc: Exception) -> tuple[int, str, str, dict[str, str] | None]:
    """(status, code, message, headers) for any exception that reaches the edge."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.message, exc.headers
    if isinstance(exc, PaperSearchError):
        for cls, status, code in _DOMAIN_ERRORS:
            if isinstance(exc, cls):
                headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
                return status, code, str(exc), headers
    if isinstance(exc, RequestValidationError):
        return _describe_validation(exc)
    if isinstance(exc, StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = "No such endpoint. See /docs for the API."
        return exc.status_code, code, message, getattr(exc, "headers", None)
    return 500, "internal_error", "Something went wrong on the server; the error was logged.", None


def _describe_validation(exc: RequestValidationError) -> tuple[int, str, str, None]:
    problems = exc.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        detail = next(p for p in problems if p.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "not valid JSON")
        position = detail["loc"][1] if len(detail.get("loc", ())) > 1 else "?"
        return 400, "invalid_json", f"The request body is not valid JSON ({reason} at character {position}).", None
    parts = [f"{_where(p.get('loc', ()))}: {p.get('msg', 'invalid')}" for p in problems[:10]]
    more = f" (and {len(problems) - 10} more problems)" if len(problems) > 10 else ""
    return 422, "invalid_request", "; ".join(parts) + more, None


def _where(loc: tuple) -> str:
    """'query parameter 'limit'' or 'body field 'positive.0'' from a pydantic error location."""
    if not loc:
        return "request"
    source, rest = loc[0], [str(x) for x in loc[1:]]
    if source == "body":
        return f"body field {'.'.join(rest)!r}" if rest else "request body"
    if source in ("query", "path", "header", "cookie"):
        return f"{source} parameter {'.'.join(rest)!r}"
    return ".".join(str(x) for x in loc)


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler: map, log what needs logging, answer in the one shape."""
    status, code, message, headers = describe(exc)
    if status == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request) or (headers or {}).get("Allow", "")}
    if status >= 500 and code == "internal_error":
        # Log the exception, never the request headers (they may hold the API key).
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(status, code, message, headers)


def _allowed_methods(request: Request) -> str | None:
    """The methods of the first route whose path matches, with those of routes of the same template.

    Starlette's own 405 names only the first route's methods, but GET and DELETE /papers/{paper_id}
    are two routes (reads and writes are separate routers), so `Allow` missed DELETE. Routes of
    another template stay out: /papers/x/related is the related-papers resource (GET), even though
    DELETE of that URL would reach the paper whose id is "x/related".
    """
    routes = getattr(request.app.state, "method_routes", None) or request.app.router.routes
    matching = [route for route in routes
                if getattr(route, "methods", None) and route.matches(request.scope)[0] is not Match.NONE]
    if not matching:
        return None
    template = matching[0].path
    methods = set().union(*(route.methods for route in matching if route.path == template))
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure through `handle_error`."""
    for cls in (ApiError, PaperSearchError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(cls, handle_error)
