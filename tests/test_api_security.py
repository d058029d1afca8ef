"""The API under attack, in process: who may write, body limits, and no file paths from clients.

The same points over real sockets against a live server are in test_live_security.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path
from urllib.parse import quote, unquote

import fastapi_offline
import pytest
from fastapi.testclient import TestClient

from api.app import DOCS_ASSETS, STATIC_DIR, create_app
from api.limits import BodySizeLimit
from models.config import Settings

KEY = "sec-key-0123456789abcdef"
# POSTs that only read (their body is a query); every other non-GET operation must need the key.
READ_ONLY_POSTS = {"/related", "/recommend", "/export", "/graph/v1/paper/batch", "/recommendations/v1/papers"}
WRITES = {("post", "/papers"), ("delete", "/papers/{paper_id}")}


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, item in spec["paths"].items() for method, op in item.items()]


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": {"code": code, "message": response.json()["error"]["message"]}}
    assert response.json()["error"]["message"]


@pytest.fixture
def app_with_key(fresh_index_dir, embedder):
    return create_app(Settings(index_dir=fresh_index_dir, api_key=KEY), embedder=embedder)


# --- who may write ------------------------------------------------------------------------------


def test_exactly_the_writes_declare_the_bearer_key(app_with_key):
    """A new state-changing route that forgets the key dependency fails here."""
    with TestClient(app_with_key) as client:
        spec = client.get("/openapi.json").json()
    secured = {(method, path) for method, path, op in operations(spec) if op.get("security")}
    assert secured == WRITES
    for method, path, _ in operations(spec):
        assert (method, path) in WRITES or method == "get" or path in READ_ONLY_POSTS, (method, path)
    schemes = spec["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]


def _write_requests() -> list[tuple[str, str, dict]]:
    record = [{"id": "intruder-1", "title": "Written without the key"}]
    return [("POST", "/papers", {"json": record}), ("DELETE", "/papers/seed-01", {}),
            ("DELETE", "/papers/10.1000/no-such-id", {})]


BAD_CREDENTIALS = [
    {},
    {"Authorization": "Bearer wrong-key"},
    {"Authorization": f"Bearer {KEY[:-1]}"},  # all but the last character
    {"Authorization": f"Bearer {KEY}0"},  # one character more
    {"Authorization": f"Bearer {KEY.upper()}"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer"},
    {"Authorization": KEY},  # no scheme
    {"Authorization": f"Basic {KEY}"},
    {"Authorization": f"Token {KEY}"},
    {"X-API-Key": KEY},  # a header the server does not read
]


@pytest.mark.parametrize("headers", BAD_CREDENTIALS, ids=lambda h: next(iter(h.values()), "none")[:20])
def test_writes_without_the_right_key_are_401_and_change_nothing(app_with_key, headers):
    with TestClient(app_with_key) as client:
        for method, path, kwargs in _write_requests():
            response = client.request(method, path, headers=headers, **kwargs)
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
        assert client.get("/health").json()["papers"] == 24
        assert client.get("/papers/seed-01").status_code == 200
        assert client.get("/papers/intruder-1").status_code == 404
        # The key in the query string is refused outright (tests/test_server_inprocess.py has the rest).
        assert_error(client.post(f"/papers?api_key={KEY}", json=[{"id": "q", "title": "T"}]), 400, "key_in_query")


@pytest.mark.parametrize("configured", [None, ""])
@pytest.mark.parametrize("headers", [{}, {"Authorization": f"Bearer {KEY}"}, {"Authorization": "Bearer "}])
def test_writes_are_403_when_no_key_is_configured(fresh_index_dir, embedder, configured, headers):
    """No key, or an empty one: every write is refused, even one sending an empty bearer token."""
    app = create_app(Settings(index_dir=fresh_index_dir, api_key=configured), embedder=embedder)
    with TestClient(app) as client:
        for method, path, kwargs in _write_requests():
            assert_error(client.request(method, path, headers=headers, **kwargs), 403, "writes_disabled")
        assert client.get("/health").json()["papers"] == 24
        assert client.get("/stats").json()["writes_enabled"] is False


def test_the_right_key_writes(app_with_key):
    """The control for the refusals above: the same requests with the key succeed."""
    with TestClient(app_with_key) as client:
        auth = {"Authorization": f"Bearer {KEY}"}
        method, path, kwargs = _write_requests()[0]
        assert client.request(method, path, headers=auth, **kwargs).status_code == 200
        assert client.delete("/papers/seed-01", headers=auth).status_code == 200
        assert client.get("/health").json()["papers"] == 24


# --- body size ----------------------------------------------------------------------------------


def _drive_limit(max_bytes: int, headers: list[tuple[bytes, bytes]], chunk: int) -> tuple[int, bool, list[dict]]:
    """Run BodySizeLimit against an endless upload; (chunks it pulled, app called?, messages sent)."""
    pulled = 0
    called = False
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        if pulled > 10_000:  # a bound for this test, far past any sane limit
            raise AssertionError("the middleware kept reading")
        return {"type": "http.request", "body": b"x" * chunk, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    async def app(scope, receive, send) -> None:
        nonlocal called
        called = True

    scope = {"type": "http", "method": "POST", "path": "/papers", "headers": headers}
    asyncio.run(BodySizeLimit(app, max_bytes=max_bytes)(scope, receive, send))
    return pulled, called, sent


def test_an_endless_chunked_body_is_refused_after_the_limit_not_read_whole():
    pulled, called, sent = _drive_limit(1 << 20, [], chunk=64 * 1024)
    assert pulled == 17  # 16 chunks are exactly the limit; the 17th goes over it
    assert not called, "the app must never see a partial body"
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["code"] == "body_too_large"


def test_a_declared_length_over_the_limit_is_refused_before_reading_anything():
    pulled, called, sent = _drive_limit(1 << 20, [(b"content-length", b"1073741824")], chunk=64 * 1024)
    assert pulled == 0 and not called
    assert sent[0]["status"] == 413 and b"1073741824 bytes" in sent[1]["body"]


def test_a_body_at_the_limit_reaches_the_app(fresh_index_dir, embedder):
    app = create_app(Settings(index_dir=fresh_index_dir, api_key=KEY, max_body_bytes=4096), embedder=embedder)
    with TestClient(app) as client:
        record = json.dumps([{"id": "fits", "title": "T", "abstract": ""}]).encode()
        body = record[:-1] + b" " * (4096 - len(record)) + b"]"
        assert len(body) == 4096
        response = client.post("/papers", content=body, headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 200, response.text
        assert_error(client.post("/papers", content=body + b" ", headers={"Authorization": f"Bearer {KEY}"}),
                     413, "body_too_large")


# --- no file paths from clients -----------------------------------------------------------------

PATHLIKE_NAMES = {"path", "file", "filename", "file_name", "filepath", "dir", "directory", "folder", "index_dir",
                  "index_path", "location", "root", "model", "model_path", "settings", "config"}


def _body_fields(spec: dict, op: dict) -> set[str]:
    names: set[str] = set()
    for media in op.get("requestBody", {}).get("content", {}).values():
        stack = [media.get("schema", {})]
        while stack:
            node = stack.pop()
            if "$ref" in node:
                node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
            names |= set(node.get("properties", {}))
            stack += [n for key in ("anyOf", "oneOf", "allOf") for n in node.get(key, [])]
            stack += [node["items"]] if isinstance(node.get("items"), dict) else []
    return names


def test_no_operation_has_a_path_like_input(app_with_key):
    with TestClient(app_with_key) as client:
        spec = client.get("/openapi.json").json()
    for method, path, op in operations(spec):
        names = {p["name"].lower() for p in op.get("parameters", [])} | _body_fields(spec, op)
        assert not names & PATHLIKE_NAMES, (method, path, names & PATHLIKE_NAMES)
    # The routes outside the schema: the page, the widget and the API docs take no input;
    # /static and /docs-assets each serve one fixed directory.
    routes = [*app_with_key.state.method_routes, *app_with_key.routes]  # app.routes nests routers
    hidden = [r for r in routes if not getattr(r, "include_in_schema", True) and r.__class__.__name__ != "Mount"]
    # Semantic Scholar's client also posts to ".../papers/" (a twin of the schema's route), its
    # author endpoints answer one fixed "not served" 404 whatever follows in the path, and
    # /paper/{id} answers the same page whatever the id (app.js reads it from the address).
    takes_any_path = {"/recommendations/v1/papers/", "/graph/v1/author/{rest:path}", "/paper/{paper_id:path}"}
    assert {r.path for r in hidden} == {"/", "/list", "/widget.js", "/openapi.json", "/docs", "/docs/oauth2-redirect",
                                        "/redoc", "/metrics", *takes_any_path}
    assert all(not r.param_convertors for r in hidden if r.path not in takes_any_path)
    mounts = [r for r in app_with_key.routes if r.__class__.__name__ == "Mount"]
    assert {(m.path, Path(m.app.directory)) for m in mounts} == {
        ("/static", STATIC_DIR), (DOCS_ASSETS, Path(fastapi_offline.__file__).parent / "static")}
    assert not any(m.app.follow_symlink for m in mounts)


TRAVERSALS = [
    "/static/../app.py", "/static/..%2fapp.py", "/static/%2e%2e/app.py", "/static/%2e%2e%2fapp.py",
    "/static/..%5capp.py", "/static/....//app.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/static/../../pyproject.toml", "/static/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", "/static/%00",
    "/static/app.js%00.png", "/static/.", "/static/app.js/..", "/widget.js/../api/app.py", "/../../etc/passwd",
    "/static/%c0%ae%c0%ae/app.py",
]


async def _asgi_get(app, raw_path: str) -> tuple[int, bytes]:
    """GET one raw path as uvicorn would pass it (percent-decoded path, raw bytes kept): the
    test client would normalise the dot segments away before the app saw them."""
    messages: list[dict] = []
    requested = False
    answered = asyncio.Event()

    async def receive() -> dict:  # as a server does: the request once, then a disconnect at the end
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": unquote(raw_path), "raw_path": raw_path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80),
             "app": app}
    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def test_traversal_out_of_static_is_404(sample_index_dir, embedder):
    app = create_app(Settings(index_dir=sample_index_dir), embedder=embedder)
    answers = {}
    with TestClient(app) as client:  # runs the lifespan; the app lives on the client's event loop
        assert client.portal.call(_asgi_get, app, "/static/app.js")[0] == 200  # the control
        for raw_path in TRAVERSALS:
            answers[raw_path] = client.portal.call(_asgi_get, app, raw_path)
    wrong = {path: (status, body[:120]) for path, (status, body) in answers.items()
             if status != 404 or json.loads(body)["error"]["code"] != "not_found"}
    assert not wrong, wrong


# Audit hooks cannot be removed, so one is installed once and only records while a test asks.
_RECORDING = threading.Event()
_AUDITED: list[tuple[str, tuple]] = []
_MARKER = "zz-probe-5e1f"


def _audit(event: str, args: tuple) -> None:
    if _RECORDING.is_set() and any(_MARKER in str(arg) for arg in args if isinstance(arg, (str, bytes, Path))):
        _AUDITED.append((event, tuple(str(arg)[:120] for arg in args)))


def test_no_client_string_reaches_a_file_open(app_with_key):
    """Send a path-like marker in every string input of every operation; Python's audit events
    show whether any of it reached open(), a directory listing or an SQLite connect."""
    if _audit not in getattr(sys, "_papersearch_audit", ()):
        sys.addaudithook(_audit)
        sys._papersearch_audit = (_audit,)  # type: ignore[attr-defined]
    probe = f"../../{_MARKER}/../../etc/passwd"
    bodies = {"/related": {"text": probe, "author": probe, "category": probe},
              "/recommend": {"positive": [probe], "negative": [probe]},
              "/papers": [{"id": probe, "title": probe, "abstract": probe, "url": f"file:///{probe}", "doi": probe}],
              "/export": {"paper_ids": [probe]},
              "/graph/v1/paper/batch": {"ids": [probe, f"DOI:{probe}", f"URL:file:///{probe}"]},
              "/recommendations/v1/papers": {"positivePaperIds": [probe], "negativePaperIds": [f"ARXIV:{probe}"]}}
    auth = {"Authorization": f"Bearer {KEY}"}
    sent = 0
    with TestClient(app_with_key) as client:
        spec = client.get("/openapi.json").json()
        _AUDITED.clear()
        _RECORDING.set()
        try:
            for method, path, op in operations(spec):
                url = path.replace("{paper_id}", quote(probe, safe=""))
                params = {p["name"]: probe for p in op.get("parameters", [])
                          if p["in"] == "query" and "string" in json.dumps(p["schema"]) and p["name"] != "mode"}
                if "requestBody" in op:
                    assert path in bodies, f"{method} {path} takes a body this test does not fill yet"
                response = client.request(method, url, params=params, json=bodies.get(path), headers=auth)
                assert response.status_code < 500, (method, url, response.text)
                sent += 1
            for raw in (f"/static/{quote(probe, safe='')}", f"/static/{probe}", f"/{probe}"):
                assert client.get(raw).status_code == 404
            seen_from_requests = list(_AUDITED)
            try:  # the control: opening a path built from the probe is seen
                open(f"/nonexistent-dir/{probe}")  # noqa: SIM115
            except OSError:
                pass
        finally:
            _RECORDING.clear()
    assert sent == len(operations(spec))
    assert not seen_from_requests, seen_from_requests[:10]
    assert [event for event, _ in _AUDITED] == ["open"]
