"""A live `papersearch serve` on 127.0.0.1 against slow, idle and malformed clients (raw sockets).

One server with short limits (2 s for headers, 3 s for a body, 2 s of keep-alive idle, 8
connections, 2 writes a minute) so a bounded slowloris finishes in seconds: the slow sockets are
closed on time while a normal client keeps being served. Also over the wire: the JSON shape of
what the protocol itself answers, a key in the URL refused and redacted from the access log,
a live rate limit and a live /metrics scrape.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from indexer.store import layout
from tests.live import live_server

pytestmark = pytest.mark.slow

KEY = "slow-clients-key-8e4f1b2a"
HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE, MAX_CONNECTIONS = 2.0, 3.0, 2.0, 8
# How late a socket may be closed after its limit: the event loop shares 2 busy cores.
SLACK = 6.0
# A hang guard for socket reads, longer than any limit here.
SOCKET_TIMEOUT = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_index_dir):
    index_dir = tmp_path_factory.mktemp("slow-clients") / "index"
    shutil.copytree(sample_index_dir, index_dir, ignore=shutil.ignore_patterns(layout.LOCK_FILE))
    flags = ["--header-timeout-seconds", str(HEADER_TIMEOUT), "--body-timeout-seconds", str(BODY_TIMEOUT),
             "--keep-alive-seconds", str(KEEP_ALIVE), "--max-connections", str(MAX_CONNECTIONS),
             "--rate-limit-writes", "2"]
    with live_server(index_dir, *flags, env={"PAPERSEARCH_API_KEY": KEY}) as live:
        yield live


def _connect(server) -> socket.socket:
    address = urlsplit(server.url)
    return socket.create_connection((address.hostname, address.port), timeout=SOCKET_TIMEOUT)


def _until_closed(sock: socket.socket) -> tuple[float, bytes]:
    """Read until the server closes the connection: (seconds it took, everything it sent)."""
    started, data = time.monotonic(), b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return time.monotonic() - started, data
        data += chunk


def _error(data: bytes) -> tuple[int, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)["error"]


def _drip(sock: socket.socket, payload: bytes, every: float, stop: threading.Event) -> None:
    """Send `payload` a byte at a time until the server hangs up (or the test stops us)."""
    for byte in payload:
        if stop.wait(every):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return


def test_a_slowloris_is_cut_off_while_others_are_served(server):
    host = urlsplit(server.url).netloc
    stop = threading.Event()
    silent = _connect(server)  # connects, sends nothing
    head_drip = _connect(server)  # a header line that never ends, a byte every 0.3 s
    body_drip = _connect(server)  # a whole head, then a body a byte every 0.3 s
    body_drip.sendall((f"POST /papers HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
                       "Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n").encode())
    stalled = _connect(server)  # a whole head announcing a body that never comes
    stalled.sendall(f"POST /related HTTP/1.1\r\nHost: {host}\r\nContent-Length: 50\r\n\r\n".encode())
    drips = [threading.Thread(target=_drip, args=(head_drip, f"GET /health HTTP/1.1\r\nHost: {host}\r\nX-Slow: "
                                                  .encode() + b"a" * 1000, 0.3, stop), daemon=True),
             threading.Thread(target=_drip, args=(body_drip, b"[" + b" " * 9998 + b"]", 0.3, stop), daemon=True)]
    closed: dict[str, tuple[float, bytes]] = {}
    readers = [threading.Thread(target=lambda n=name, s=sock: closed.__setitem__(n, _until_closed(s)), daemon=True)
               for name, sock in (("silent", silent), ("head_drip", head_drip), ("body_drip", body_drip),
                                  ("stalled", stalled))]
    for thread in drips + readers:
        thread.start()
    served, deadline = [], time.monotonic() + BODY_TIMEOUT + SLACK + 2
    try:
        with httpx.Client(timeout=SOCKET_TIMEOUT) as client:  # the normal client, throughout
            while time.monotonic() < deadline:
                started = time.monotonic()
                served.append((client.get(server.endpoint("/search"), params={"q": "protein"}).status_code,
                               time.monotonic() - started))
                time.sleep(0.2)
        for thread in readers:
            thread.join(timeout=SLACK)
    finally:
        stop.set()
        for sock in (silent, head_drip, body_drip, stalled):
            sock.close()
    assert served and all(status == 200 for status, _ in served), served
    print(f"normal client: {len(served)} searches, slowest {max(s for _, s in served):.2f} s; "
          f"slow sockets closed after {({k: round(v[0], 1) for k, v in closed.items()})} s")
    assert set(closed) == {"silent", "head_drip", "body_drip", "stalled"}, closed.keys()
    assert closed["silent"][1] == b""  # never sent a byte: closed without an answer
    for name, limit, what in (("silent", HEADER_TIMEOUT, None), ("head_drip", HEADER_TIMEOUT, "headers"),
                              ("body_drip", BODY_TIMEOUT, "body"), ("stalled", BODY_TIMEOUT, "body")):
        took, data = closed[name]
        assert limit - 1.0 <= took <= limit + SLACK, (name, took)
        if what:
            status, error = _error(data)
            assert status == 408 and error["code"] == "request_timeout" and what in error["message"], (name, error)
    assert httpx.get(server.endpoint("/health"), timeout=SOCKET_TIMEOUT).json()["papers"] == 24  # no write landed


def test_an_idle_kept_alive_connection_is_closed(server):
    host = urlsplit(server.url).netloc
    with _connect(server) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        took, data = _until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200") and KEEP_ALIVE - 0.5 <= took <= KEEP_ALIVE + SLACK, (took, data[:80])


def test_the_connection_cap_answers_503_in_the_shape_until_idle_sockets_time_out(server):
    host = urlsplit(server.url).netloc
    idle = [_connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)  # let the server accept them all
        with _connect(server) as sock:
            sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            _, data = _until_closed(sock)
        status, error = _error(data)
        assert status == 503 and error["code"] == "server_busy" and b"retry-after: 1" in data.lower()
        time.sleep(HEADER_TIMEOUT + SLACK)  # the idle sockets are closed by the head timer
        assert httpx.get(server.endpoint("/health"), timeout=SOCKET_TIMEOUT).status_code == 200
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("request_bytes,status,code", [
    (b"GARBAGE\r\n\r\n", 400, "invalid_http"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n", 400, "invalid_http"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"GET /no/such/route HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found"),
    (b"DELETE /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "method_not_allowed"),
], ids=["garbage", "bad-header-line", "huge-header", "unknown-route", "wrong-method"])
def test_what_the_server_itself_answers_has_the_one_shape(server, request_bytes, status, code):
    with _connect(server) as sock:
        sock.sendall(request_bytes)
        _, data = _until_closed(sock)
    assert _error(data) == (status, {"code": code, "message": _error(data)[1]["message"]})


def test_a_key_in_the_url_is_refused_and_redacted_from_the_log(server):
    with httpx.Client(timeout=SOCKET_TIMEOUT) as client:
        answer = client.get(server.endpoint("/search"), params={"q": "ocr", "api_key": KEY, "marker": "url-key"})
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "key_in_query"
        assert "Authorization: Bearer" in answer.json()["error"]["message"]
        assert client.get(server.endpoint("/search"), params={"q": "ocr", "marker": "hdr-key"},
                          headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert server.wait_for_output("marker=hdr-key"), "the access log is not captured"
    log = "".join(server.output)
    assert "api_key=[redacted]" in log and "marker=url-key" in log
    assert KEY not in log


def test_writes_over_the_live_rate_limit_get_429_with_the_headers(server):
    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(timeout=120) as client:
        answers = [client.delete(server.endpoint("/papers/no-such-paper-rl"), headers=auth) for _ in range(3)]
        search = client.get(server.endpoint("/search"), params={"q": "ocr"})
    # 2 a minute; the slowloris test's timed-out POST /papers may have taken one token already.
    statuses = [a.status_code for a in answers]
    assert 429 in statuses and set(statuses[:statuses.index(429)]) <= {404}, [a.text for a in answers]
    refused = answers[statuses.index(429)]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1 and refused.headers["ratelimit-limit"] == "2"
    assert refused.headers["ratelimit-remaining"] == "0" and int(refused.headers["ratelimit-reset"]) > 0
    assert search.status_code == 200 and "ratelimit-limit" not in search.headers  # reads are not limited here


def test_metrics_scrape_parses(server):
    text = httpx.get(server.endpoint("/metrics"), timeout=SOCKET_TIMEOUT).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    requests = families["papersearch_http_requests"].samples
    assert any(s.labels["route"] == "/search" and s.labels["status"] == "200" for s in requests)
    papers = families["papersearch_index_papers"].samples[0].value
    assert papers == httpx.get(server.endpoint("/health"), timeout=SOCKET_TIMEOUT).json()["papers"]
    assert "papersearch_http_request_duration_seconds" in families and "papersearch_write_queue_length" in families
