"""Server guards through the app (TestClient): keys only in headers, rate limits, one error shape,
/metrics, and the log redaction, each against the real app over a private copy of the sample index.

The same guards over real sockets, with the timeouts the app cannot see, are in
tests/test_server_slow_clients.py.
"""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from uvicorn.logging import AccessFormatter

from api.app import create_app
from api.http_protocol import raw_error
from api.ratelimit import TokenBuckets
from api.url_secrets import KEY_PARAMS, NOT_KEYS_ON, RedactSecrets, key_params, redact
from models.config import Settings

KEY = "inproc-key-5d2c9a7e31"
AUTH = {"Authorization": f"Bearer {KEY}"}


def assert_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body


def _app(index_dir, embedder, **settings):
    return create_app(Settings(index_dir=index_dir, api_key=KEY, **settings), embedder=embedder)


# --- keys only in headers -----------------------------------------------------------------------


NAMES = sorted(KEY_PARAMS) + ["API_KEY", "api%5Fkey", "Api-Key", "ACCESS_TOKEN"]


def test_a_key_in_the_query_string_is_refused_naming_the_header(sample_index_dir, embedder):
    with TestClient(_app(sample_index_dir, embedder)) as client:
        for name in NAMES:
            for target in (f"/search?q=ocr&{name}={KEY}", f"/papers?{name}={KEY}", f"/no/such/route?{name}=x"):
                method = "POST" if target.startswith("/papers") else "GET"
                answer = client.request(method, target, json=[{"id": "q1", "title": "T"}], headers=AUTH)
                body = assert_shape(answer, 400, "key_in_query")
                assert "Authorization: Bearer" in body["error"]["message"]
                assert KEY not in body["error"]["message"]
        assert client.get("/papers/q1").status_code == 404  # the write never ran
        assert client.get("/search", params={"q": "ocr", "keywords": "x"}).status_code == 200  # the control


def test_no_operation_takes_a_parameter_named_like_a_key(sample_index_dir, embedder):
    """Such a parameter would be refused before its route: a new endpoint must pick another name."""
    with TestClient(_app(sample_index_dir, embedder)) as client:
        spec = client.get("/openapi.json").json()
    names = {p["name"].lower() for path, item in spec["paths"].items() for op in item.values()
             for p in op.get("parameters", []) if p["in"] == "query" and p["name"] not in NOT_KEYS_ON.get(path, ())}
    assert names and not names & KEY_PARAMS, names & KEY_PARAMS


def test_key_params_and_redaction():
    assert key_params("q=x&api_key=1&Token=2&keyword=3") == ["api_key", "Token"]
    assert key_params("q=token&mode=key") == []  # values are not names
    line = f'127.0.0.1:5 - "GET /search?q=x&api_key={KEY}&access%5Ftoken={KEY} HTTP/1.1" 400'
    assert redact(line) == '127.0.0.1:5 - "GET /search?q=x&api_key=[redacted]&access%5Ftoken=[redacted] HTTP/1.1" 400'
    assert KEY not in redact(f"headers=[(b'host', b'x'), (b'authorization', b'Bearer {KEY}')]")
    assert KEY not in redact(f"Authorization: Bearer {KEY}") and redact("q=bearer") == "q=bearer"


def test_the_access_log_record_is_redacted_before_uvicorns_formatter_reads_it():
    """uvicorn's AccessFormatter unpacks the record's arguments; the filter must keep them a tuple."""
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/search?q=x&token={KEY}", "1.1", 400), None)
    assert RedactSecrets().filter(record)
    formatted = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert formatted.startswith('127.0.0.1:5 - "GET /search?q=x&token=[redacted] HTTP/1.1" 400'), formatted
    trace = logging.LogRecord("uvicorn.asgi", 5, __file__, 1, "ASGI [1] scope=%s",
                              ({"headers": [(b"authorization", f"Bearer {KEY}".encode())]},), None)
    RedactSecrets().filter(trace)
    assert KEY not in trace.getMessage()


# --- rate limits --------------------------------------------------------------------------------


def test_token_bucket_bursts_then_refills_at_the_limits_pace():
    now = [0.0]
    buckets = TokenBuckets(6, clock=lambda: now[0])  # 6 a minute: one token every 10 s
    decisions = [buckets.take("a") for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 6 + [False]
    assert [d.remaining for d in decisions[:6]] == [5, 4, 3, 2, 1, 0]
    assert decisions[6].retry_after == 10 and decisions[6].reset_seconds == 60
    assert buckets.take("b").allowed  # another client has its own bucket
    now[0] = 9.0
    assert not buckets.take("a").allowed
    now[0] = 10.5
    assert buckets.take("a").allowed and not buckets.take("a").allowed
    now[0] = 1000.0  # long idle: full again, never more than full
    assert sum(buckets.take("a").allowed for _ in range(10)) == 6


def test_rate_limits_are_off_by_default(sample_index_dir, embedder):
    with TestClient(_app(sample_index_dir, embedder)) as client:
        answers = [client.get("/search", params={"q": "ocr"}) for _ in range(30)]
    assert {a.status_code for a in answers} == {200}
    assert not any(name.startswith("ratelimit") for a in answers for name in a.headers)


def test_reads_and_writes_have_their_own_buckets(fresh_index_dir, embedder):
    app = _app(fresh_index_dir, embedder, rate_limit_reads=3, rate_limit_writes=1)
    with TestClient(app) as client:
        reads = [client.get("/search", params={"q": "ocr"}) for _ in range(3)]
        assert [r.headers["ratelimit-remaining"] for r in reads] == ["2", "1", "0"]
        assert {r.headers["ratelimit-limit"] for r in reads} == {"3"}
        refused = client.get("/papers/seed-01")
        body = assert_shape(refused, 429, "rate_limited")
        assert "read" in body["error"]["message"]
        assert int(refused.headers["retry-after"]) == 20  # 3 a minute: a token every 20 s
        assert refused.headers["ratelimit-remaining"] == "0" and int(refused.headers["ratelimit-reset"]) == 60
        assert_shape(client.post("/related", json={"text": "protein folding"}), 429, "rate_limited")  # a read
        # Writes draw on their own bucket: the first passes although reads are exhausted.
        record = [{"id": "rl-1", "title": "Rate limited writes", "abstract": "A paper."}]
        first = client.post("/papers", json=record, headers=AUTH)
        assert first.status_code == 200 and first.headers["ratelimit-limit"] == "1"
        body = assert_shape(client.delete("/papers/rl-1", headers=AUTH), 429, "rate_limited")
        assert "write" in body["error"]["message"]


def test_rate_limit_by_key_gives_the_key_its_own_bucket(sample_index_dir, embedder):
    app = _app(sample_index_dir, embedder, rate_limit_reads=2, rate_limit_by="key")
    with TestClient(app) as client:
        assert [client.get("/stats", headers=AUTH).status_code for _ in range(3)] == [200, 200, 429]
        assert client.get("/stats").status_code == 200  # the address's bucket is another one
        wrong = {"Authorization": "Bearer not-the-key"}  # made-up keys share the address's bucket
        assert [client.get("/stats", headers=wrong).status_code for _ in range(2)] == [200, 429]


# --- one error shape ----------------------------------------------------------------------------


def test_every_error_the_app_can_meet_has_the_one_shape(sample_index_dir, embedder):
    with TestClient(_app(sample_index_dir, embedder)) as client:
        assert_shape(client.get("/no/such/route"), 404, "not_found")
        assert_shape(client.get("/static/no-such-file.js"), 404, "not_found")
        answer = client.delete("/stats")
        assert_shape(answer, 405, "method_not_allowed")
        assert answer.headers["allow"] == "GET"
        assert_shape(client.put("/papers/seed-01"), 405, "method_not_allowed")
        assert_shape(client.get("/search"), 422, "invalid_request")
        assert_shape(client.post("/related", content=b"{", headers={"Content-Type": "application/json"}),
                     400, "invalid_json")


@pytest.mark.parametrize("status,code", [(400, "invalid_http"), (408, "request_timeout"),
                                         (431, "headers_too_large")])
def test_answers_written_by_the_protocol_have_the_shape_too(status, code):
    raw = raw_error(status, code, "Why.", [(b"server", b"uvicorn")])
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} ")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == {"error": {"code": code, "message": "Why."}}


# --- metrics ------------------------------------------------------------------------------------


def _scrape(client) -> dict[str, list]:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(answer.text)}


def _value(families, sample_name: str, **labels) -> float:
    name = sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_bucket")
    family = families.get(name) or families[sample_name]
    found = [s.value for s in family if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found)


def test_metrics_count_by_route_template_status_and_mode(fresh_index_dir, embedder):
    with TestClient(_app(fresh_index_dir, embedder)) as client:
        for paper_id in ("seed-01", "seed-02", "no-such-paper"):
            client.get(f"/papers/{paper_id}")
        client.get("/search", params={"q": "ocr", "mode": "dense"})
        client.get("/search", params={"q": "ocr"})
        client.post("/related", json={"text": "protein structure", "mode": "lexical"})
        client.get("/no/such/route/7f3")
        client.get("/search", params={"q": "x", "api_key": "k"})
        before = _scrape(client)
        record = [{"id": "m-1", "title": "Metrics", "abstract": "Counted."}]
        assert client.post("/papers", json=record, headers=AUTH).status_code == 200
        after = _scrape(client)
        health = client.get("/health").json()
        spec = client.get("/openapi.json").json()
    requests = "papersearch_http_requests_total"
    assert _value(before, requests, route="/papers/{paper_id}", method="GET", status="200") == 2
    assert _value(before, requests, route="/papers/{paper_id}", method="GET", status="404") == 1
    assert _value(before, requests, route="unmatched", status="404") == 1
    assert _value(before, requests, route="/search", status="400") == 1  # refused before routing
    labels = [str(sample.labels) for sample in before["papersearch_http_requests"]]
    assert not any("no-such-paper" in text or "7f3" in text for text in labels)  # templates, not raw paths
    assert _value(before, "papersearch_http_request_duration_seconds_count", route="/search", status="200") == 2
    assert _value(before, "papersearch_searches_total", route="/search", mode="dense") == 1
    assert _value(before, "papersearch_searches_total", route="/search", mode="default") == 1
    assert _value(before, "papersearch_searches_total", route="/related", mode="lexical") == 1
    assert _value(after, "papersearch_index_papers") == health["papers"] == 25
    assert _value(after, "papersearch_index_generation") == health["generation"]
    assert _value(after, "papersearch_index_generation") == _value(before, "papersearch_index_generation") + 1
    assert _value(after, "papersearch_index_reloads_total", cause="write") == 1
    assert _value(after, "papersearch_write_queue_length") == 0
    assert _value(after, "papersearch_index_ready") == 1
    assert "/metrics" not in spec["paths"]


def test_metrics_can_be_turned_off(sample_index_dir, embedder):
    with TestClient(_app(sample_index_dir, embedder, metrics=False)) as client:
        assert_shape(client.get("/metrics"), 404, "not_found")
        assert client.get("/health").status_code == 200


def test_a_body_cut_short_never_reaches_a_route():
    """The body timeout (or a client leaving) ends a body early: the route must not see half of it,
    and no one is left to answer (a route reading it would raise ClientDisconnect, a logged 500)."""
    import asyncio

    from api.limits import BodySizeLimit

    messages = iter([{"type": "http.request", "body": b"[{", "more_body": True}, {"type": "http.disconnect"}])
    called, sent = [], []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):
        called.append(scope)

    scope = {"type": "http", "method": "POST", "path": "/papers", "headers": []}
    asyncio.run(BodySizeLimit(app, max_bytes=1 << 20)(scope, receive, send))
    assert not called and not sent
