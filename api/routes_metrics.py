"""GET /metrics: the Prometheus text format, off the OpenAPI schema (api/metrics.py has the rest).

Not behind the API key: that key grants writes, and a scraper should not hold it. What it shows
(request counts, latencies, paper count, generation) is what /stats and /health already tell
anyone. Turn it off with `metrics` (PAPERSEARCH_METRICS=off), or keep it off the public side at
the proxy.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.metrics import Metrics, MetricsMiddleware
from models.config import Settings


def install(app, settings: Settings, service) -> None:
    """Count every request (added last, so it wraps the other middleware and sees their answers)."""
    if settings.metrics:
        app.state.metrics = Metrics(service)
        app.add_middleware(MetricsMiddleware, metrics=app.state.metrics, max_body_bytes=settings.max_body_bytes)


def routes(settings: Settings, service) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    if not settings.metrics:
        return router

    @router.get("/metrics")
    def metrics(request: Request):  # plain def: the scrape reads SQLite (paper count)
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
