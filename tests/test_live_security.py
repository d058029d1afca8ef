"""The API under attack over real sockets: a live `papersearch serve` on 127.0.0.1.

Raw sockets, because an HTTP client library would not send what an attacker sends: a body
that never ends, a length that lies, dot segments left in the path.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from indexer.store import layout
from tests.live import live_server

pytestmark = pytest.mark.slow

KEY = "live-sec-key-7a1c0d9e2b"
WRONG_KEYS = ("guess-4f1e9a", f"{KEY}-plus", KEY[:-3])
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMIT = 8 * 1024 * 1024  # Settings.max_body_bytes, the server's default
CHUNK = 64 * 1024
# How much a client tries to upload in the oversized-body tests: many times the limit, so
# "answered before the client finished" cannot be an accident of buffering.
UPLOAD_BYTES = 32 * LIMIT
# A hang guard for every socket operation, not a speed check.
SOCKET_TIMEOUT = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_index_dir):
    index_dir = tmp_path_factory.mktemp("live-security") / "index"
    shutil.copytree(sample_index_dir, index_dir, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    with live_server(index_dir, env={"PAPERSEARCH_API_KEY": KEY}) as live:
        yield live


def _connect(server) -> socket.socket:
    address = urlsplit(server.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=SOCKET_TIMEOUT)
    return sock


def _head(server, method: str, target: str, headers: dict[str, str]) -> bytes:
    host = urlsplit(server.url).netloc
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length (every answer of this server has one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a full response: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body[:length]


def _upload_until_answered(sock: socket.socket, framing) -> tuple[int, bool, tuple[int, dict, bytes] | None]:
    """Send up to UPLOAD_BYTES, framed by `framing(chunk)`, and stop as soon as the server
    answers or hangs up. Returns (body bytes sent, whether the server cut us off, the answer)."""
    sent = 0
    payload = b"x" * CHUNK
    while sent < UPLOAD_BYTES:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return sent, True, _read_response(sock)
        try:
            sock.sendall(framing(payload))
        except (BrokenPipeError, ConnectionResetError):
            return sent, True, _try_read(sock)
        sent += CHUNK
    return sent, False, _try_read(sock)


def _try_read(sock: socket.socket) -> tuple[int, dict, bytes] | None:
    try:
        return _read_response(sock)
    except (ConnectionResetError, AssertionError):
        return None


def _chunked(payload: bytes) -> bytes:
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def _assert_too_large(answer) -> None:
    assert answer is not None, "the server hung up without an answer"
    status, headers, body = answer
    assert status == 413, (status, body[:200])
    assert headers.get("connection") == "close"
    assert json.loads(body)["error"]["code"] == "body_too_large"


def _server_rss_kib(server) -> int:
    with open(f"/proc/{server.process.pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))


# --- bodies over the limit ----------------------------------------------------------------------


def test_chunked_upload_without_a_length_is_refused_before_it_ends(server):
    rss_before = _server_rss_kib(server)
    with _connect(server) as sock:
        sock.sendall(_head(server, "POST", "/papers", {**AUTH, "Content-Type": "application/json",
                                                       "Transfer-Encoding": "chunked"}))
        sent, cut_off, answer = _upload_until_answered(sock, _chunked)
    rss_after = _server_rss_kib(server)
    print(f"chunked: answered after {sent / 2**20:.1f} MiB of {UPLOAD_BYTES / 2**20:.0f} MiB; "
          f"server RSS {rss_before // 1024} -> {rss_after // 1024} MiB")
    assert cut_off and sent < UPLOAD_BYTES, "the server read the whole upload"
    _assert_too_large(answer)
    assert httpx.get(server.endpoint("/health"), timeout=60).status_code == 200


@pytest.mark.parametrize("expect_continue", [False, True])
def test_a_declared_length_over_the_limit_is_refused_before_any_body_byte(server, expect_continue):
    headers = {**AUTH, "Content-Type": "application/json", "Content-Length": str(1 << 30)}
    if expect_continue:
        headers["Expect"] = "100-continue"  # a polite client waits for "100 Continue": none must come
    with _connect(server) as sock:
        sock.sendall(_head(server, "POST", "/papers", headers))
        answer = _read_response(sock)  # not one body byte sent
    _assert_too_large(answer)
    assert str(1 << 30) in json.loads(answer[2])["error"]["message"]


def test_a_length_that_lies_low_is_not_read_past(server):
    """Content-Length says 100 bytes; the client sends megabytes. The server takes 100 bytes as the
    body; the bytes after them are a malformed next request, which uvicorn refuses (400) and
    hangs up, often before the app's own answer to the first request goes out."""
    with _connect(server) as sock:
        sock.sendall(_head(server, "POST", "/papers", {**AUTH, "Content-Type": "application/json",
                                                       "Content-Length": "100"}))
        sent, cut_off, answer = _upload_until_answered(sock, lambda payload: payload)
    assert cut_off and sent < UPLOAD_BYTES
    assert answer is not None and answer[0] in (400, 422), answer
    assert httpx.get(server.endpoint("/health"), timeout=60).json()["papers"] == 24


# --- traversal, spoken raw ----------------------------------------------------------------------

TRAVERSALS = ["/static/../app.py", "/static/..%2fapp.py", "/static/%2e%2e/%2e%2e/pyproject.toml",
              "/static/..%5c..%5cpyproject.toml", "/static/../../../../../../etc/passwd",
              "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/widget.js/../../pyproject.toml",
              "/../../../etc/passwd", "/static/%00"]


def test_traversal_attempts_are_404_over_the_wire(server):
    answers = {}
    for target in ["/static/app.js", *TRAVERSALS]:
        with _connect(server) as sock:  # written by hand: a client library would remove the dot segments
            sock.sendall(_head(server, "GET", target, {"Connection": "close"}))
            answers[target] = _read_response(sock)
    assert answers.pop("/static/app.js")[0] == 200  # the control: the raw requests reach the files
    wrong = {t: (status, body[:100]) for t, (status, _, body) in answers.items()
             if status != 404 or json.loads(body)["error"]["code"] != "not_found"}
    assert not wrong, wrong
    for target in ("/papers/..%2f..%2fpyproject.toml", "/papers/../../pyproject.toml"):
        with _connect(server) as sock:
            sock.sendall(_head(server, "GET", target, {"Connection": "close"}))
            status, _, body = _read_response(sock)
        assert status == 404 and json.loads(body)["error"]["code"] == "paper_not_found", body


# --- keys and logs ------------------------------------------------------------------------------


def test_keys_never_reach_the_log(server):
    """Send the right key and wrong ones, in good and bad requests, then read everything the
    server printed (stdout and stderr, access log included)."""
    record = [{"id": "log-check-1", "title": "Keys stay out of logs", "abstract": "A paper."}]
    with httpx.Client(timeout=120) as client:
        assert client.post(server.endpoint("/papers"), json=record, headers=AUTH).status_code == 200
        assert client.get(server.endpoint("/search"), params={"q": "logs"}, headers=AUTH).status_code == 200
        assert client.post(server.endpoint("/papers"), content=b"{", headers=AUTH).status_code == 422
        assert client.get(server.endpoint("/no/such/route"), headers=AUTH).status_code == 404
        for wrong in WRONG_KEYS:
            headers = {"Authorization": f"Bearer {wrong}"}
            assert client.post(server.endpoint("/papers"), json=record, headers=headers).status_code == 401
            assert client.delete(server.endpoint("/papers/log-check-1"), headers=headers).status_code == 401
        assert client.delete(server.endpoint("/papers/log-check-1"), headers=AUTH).status_code == 200
    with _connect(server) as sock:  # a malformed request holding the key: uvicorn logs a warning
        sock.sendall(f"POST /papers HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\nBad header\r\n\r\n".encode())
        assert _read_response(sock)[0] == 400
    with _connect(server) as sock:  # an oversized body holding the key
        sock.sendall(_head(server, "POST", "/papers", {**AUTH, "Content-Length": str(LIMIT + 1)}))
        assert _read_response(sock)[0] == 413
    with httpx.Client(timeout=60) as client:  # the last request, so the log has caught up once it shows
        client.get(server.endpoint("/health"), params={"marker": "log-check-done"})
    assert server.wait_for_output("/health?marker=log-check-done"), "the access log is not captured"
    log = "".join(server.output)
    assert '"POST /papers HTTP/1.1" 401' in log and '"DELETE /papers/log-check-1 HTTP/1.1" 200' in log
    assert "Invalid HTTP request received" in log
    for secret in (KEY, *WRONG_KEYS):
        assert secret not in log, f"a key reached the log: {secret[:4]}..."
