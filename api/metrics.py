"""Prometheus metrics for one app: request counts and latencies, search modes, the index's state.

Labels are bounded: a request is labelled by its route template ("/papers/{paper_id}", never the
raw path), its method and status; a search by the mode it named, one of the service's modes.
Index facts (papers, generation, write queue, reloads) are read when /metrics is scraped, so
nothing is kept up to date between scrapes. Each app has its own registry (tests build many apps).
Served by api/routes_metrics.py; setting `metrics` turns both off.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.operations import operation_facts, operation_of, route_label, warm_up
from models.errors import PaperSearchError

# Seconds; searches on a busy CPU take 10 ms to a second, writes up to tens of seconds.
# The status label of a request that got no answer: the client left, or its body timed out (nginx's code).
CLIENT_GONE = 499
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The registry behind /metrics and the instruments the middleware updates."""

    def __init__(self, service):
        self.service = service
        self.registry = CollectorRegistry()
        labels = ["route", "method", "status"]
        self.requests = Counter("papersearch_http_requests", "HTTP requests answered, by route template, "
                                "method and status.", labels, registry=self.registry)
        self.latency = Histogram("papersearch_http_request_duration_seconds", "Time from a request's arrival "
                                 "at the app to the end of its answer.", labels, buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.searches = Counter("papersearch_searches", "Successful ranked requests by route and the mode "
                                "they named ('default' when none).", ["route", "mode"], registry=self.registry)
        self.registry.register(_IndexCollector(service))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def mode_label(self, mode: object) -> str:
        if mode is None:
            return "default"
        return mode if mode in self.service.modes else "other"


class _IndexCollector:
    """Index facts, read at scrape time from the service."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        ready = GaugeMetricFamily("papersearch_index_ready", "1 when the index is open and searchable.")
        try:
            facts = self.service.health()
        except PaperSearchError:
            facts = None
        ready.add_metric([], 1 if facts else 0)
        yield ready
        if facts:
            yield GaugeMetricFamily("papersearch_index_papers", "Papers in the index.", value=facts["papers"])
            yield GaugeMetricFamily("papersearch_index_generation", "The index's write generation (one per "
                                    "committed write).", value=facts["generation"])
            rebuilt = GaugeMetricFamily("papersearch_index_rebuilt_in_memory", "1 when a derived part is "
                                        "served from a copy rebuilt in memory (its file missing or stale: "
                                        "run 'papersearch check --repair').", labels=["part"])
            rebuilt.add_metric(["vectors"], 1 if self._vector_file_problem() else 0)
            yield rebuilt
        yield GaugeMetricFamily("papersearch_write_queue_length", "HTTP writes waiting for their turn.",
                                value=getattr(self.service, "writes_waiting", 0))
        reloads = CounterMetricFamily("papersearch_index_reloads", "Times the served index was reloaded for a "
                                      "new generation, by cause: this server's write or another process's.",
                                      labels=["cause"])
        for cause, count in getattr(self.service, "reloads", {}).items():
            reloads.add_metric([cause], count)
        yield reloads

    def _vector_file_problem(self) -> str | None:
        try:
            with self.service.reading() as engine:
                return getattr(engine.store, "vector_file_problem", None)
        except PaperSearchError:
            return None


class MetricsMiddleware:
    """ASGI middleware: counts and times every HTTP request, and the mode of every ranked one."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            warm_up(scope)
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = CLIENT_GONE  # unless an answer starts
        operation = operation_of(scope)
        facts = operation_facts(scope["app"]) if operation else None
        body_mode = facts is not None and operation in facts.body_mode
        body = bytearray()

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= self.max_body_bytes:
                body.extend(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receiving if body_mode else receive, sending)
        except Exception:
            status = 500 if status == CLIENT_GONE else status  # the outermost handler answers 500
            raise
        finally:
            # A request answered before routing (400 key_in_query, 429) is labelled by its route too.
            route = route_label(scope)
            labels = (operation[1] if route == "unmatched" and operation else route, scope["method"], str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
            if facts is not None and 200 <= status < 300 and (body_mode or operation in facts.query_mode):
                mode = _body_mode(bytes(body)) if body_mode else _query_mode(scope)
                self.metrics.searches.labels(labels[0], self.metrics.mode_label(mode)).inc()


def _query_mode(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("mode")
    return values[-1] if values else None


def _body_mode(body: bytes) -> str | None:
    if b'"mode"' not in body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed.get("mode") if isinstance(parsed, dict) else None
