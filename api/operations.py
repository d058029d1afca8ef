"""Which operation a request is, read from the app itself: its routes and its /openapi.json.

Middleware that must treat operations differently (rate limits: writes; metrics: the route
template and whether it takes a search mode) asks here, so a new endpoint is classed by what it
declares, never by a list someone must remember to extend.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.routing import Match
from starlette.types import Scope


@dataclass(frozen=True)
class OperationFacts:
    writes: frozenset[tuple[str, str]]      # (METHOD, template) of operations that need the API key
    query_mode: frozenset[tuple[str, str]]  # ... that take a `mode` query parameter
    body_mode: frozenset[tuple[str, str]]   # ... whose JSON body has a `mode` field


def operation_facts(app) -> OperationFacts:
    """What /openapi.json says about each operation (computed once per app, then cached on it)."""
    cached = getattr(app.state, "operation_facts", None)
    if cached is not None:
        return cached
    spec = app.openapi()
    writes, query_mode, body_mode = set(), set(), set()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            key = (method.upper(), path)
            if operation.get("security"):
                writes.add(key)
            if any(p.get("name") == "mode" and p.get("in") == "query" for p in operation.get("parameters", [])):
                query_mode.add(key)
            if "mode" in _body_properties(spec, operation):
                body_mode.add(key)
    facts = OperationFacts(frozenset(writes), frozenset(query_mode), frozenset(body_mode))
    app.state.operation_facts = facts
    return facts


def _body_properties(spec: dict, operation: dict) -> set[str]:
    names: set[str] = set()
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema", {})
        if "$ref" in schema:
            schema = spec["components"]["schemas"].get(schema["$ref"].rsplit("/", 1)[1], {})
        names |= set(schema.get("properties", {}))
    return names


def warm_up(scope: Scope) -> None:
    """Compute the facts at the lifespan's start: building /openapi.json blocks the event loop for
    a moment (over a second on a busy machine), which must not delay the first requests' timers."""
    if scope["type"] == "lifespan" and scope.get("app") is not None:
        operation_facts(scope["app"])


def operation_of(scope: Scope) -> tuple[str, str] | None:
    """(METHOD, path template) of the route that will serve this request, before routing runs."""
    app = scope.get("app")
    routes = getattr(getattr(app, "state", None), "method_routes", None) or ()
    for route in routes:
        if getattr(route, "methods", None) and route.matches(scope)[0] is Match.FULL:
            return scope["method"], route.path_format
    return None


def route_label(scope: Scope) -> str:
    """The template of the route that served this request (after routing), for bounded metric labels.

    A static file is its mount ("/static/{path}"); a path no route knows is "unmatched".
    """
    route = scope.get("route")
    return getattr(route, "path_format", None) or "unmatched"
