"""GET /feeds/...: Atom and JSON Feed documents for a search, a paper's related work and a reading list.

    /feeds/search.atom?q=...&category=cs.CL      /feeds/search.json?q=...
    /feeds/related/{paper_id}.atom               /feeds/recommend.atom?positive=ID&positive=ID&negative=ID

Feed readers poll, so each URL's document is built once per index generation (and per day, as the
default window moves at midnight UTC) and kept; a poll answers from memory, and with 304 when its
If-None-Match or If-Modified-Since still holds. Parameters have the search endpoints' bounds; a bad
one is a 400 in the error shape (a reader shows the error), never an empty feed hiding a typo.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api import feeds
from api.errors import ApiError, describe
from api.schemas import ERROR_RESPONSES
from models.config import Settings
from models.query import Filters

# Documents kept in memory (one per feed URL); the least recently polled goes first.
CACHE_SIZE = 512
# Readers may reuse a document this long without asking again.
CACHE_CONTROL = "public, max-age=300"

Format = Literal[feeds.FORMATS]  # type: ignore[valid-type]
# What /openapi.json says a feed route answers besides the error shapes.
FEED_RESPONSES: dict = {
    200: {"description": "The feed: Atom 1.0 for .atom, JSON Feed 1.1 for .json",
          "content": {"application/atom+xml": {"schema": {"type": "string"}},
                      "application/feed+json": {"schema": {"type": "object"}}}},
    304: {"description": "Unchanged since the If-None-Match / If-Modified-Since the request sent"},
}


class _BadParameterIs400(APIRoute):
    """Feed routes answer a bad parameter with 400, not the JSON API's 422: a feed reader reports any
    4xx, and 400 is what the issue asks of feeds. The message and shape are the API's own."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                _, _, message, _ = describe(exc)
                raise ApiError(400, "invalid_request", message) from exc
            except ApiError as exc:
                if exc.status != 422:
                    raise
                raise ApiError(400, exc.code, exc.message, exc.headers) from exc

        return answer


@dataclass
class _Cached:
    generation: int
    since: datetime
    body: bytes
    etag: str
    last_modified: datetime


class FeedCache:
    """Documents by URL, each valid for one index generation and one window start."""

    def __init__(self, size: int = CACHE_SIZE):
        self._size = size
        self._documents: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str, generation: int, since: datetime) -> _Cached | None:
        with self._lock:
            cached = self._documents.get(url)
            if cached is None or (cached.generation, cached.since) != (generation, since):
                return None
            self._documents.move_to_end(url)
            return cached

    def put(self, url: str, generation: int, since: datetime, body: bytes) -> _Cached:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        now = datetime.now(timezone.utc).replace(microsecond=0)
        with self._lock:
            previous = self._documents.get(url)
            # Last-Modified moves only when the bytes do, so a write elsewhere in the index does not
            # make every reader download an unchanged feed.
            changed = previous is None or previous.etag != etag
            cached = _Cached(generation, since, body, etag, now if changed else previous.last_modified)
            self._documents[url] = cached
            self._documents.move_to_end(url)
            while len(self._documents) > self._size:
                self._documents.popitem(last=False)
            return cached


def not_modified(request: Request, cached: _Cached) -> bool:
    """RFC 9110: If-None-Match decides when present; else If-Modified-Since."""
    tags = request.headers.get("if-none-match")
    if tags is not None:
        offered = {tag.strip().removeprefix("W/") for tag in tags.split(",")}
        return "*" in offered or cached.etag in offered
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return cached.last_modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
    return False


def routes(settings: Settings, service) -> APIRouter:
    # Imported here: api.app imports this module to list it in ROUTE_MODULES.
    from api.app import Service, filter_params

    router = APIRouter(route_class=_BadParameterIs400, responses={**ERROR_RESPONSES, **FEED_RESPONSES},
                       default_response_class=Response, tags=["feeds"])
    cache = FeedCache()
    Mode = Literal[service.modes]  # type: ignore[valid-type]
    filters_from_query = filter_params(settings)
    lowest, highest = feeds.MIN_SCORE_RANGE

    async def common(
        filters: Annotated[Filters, Depends(filters_from_query)],
        mode: Annotated[Mode, Query(description="ranking method; dense scores are cosines")] = feeds.DEFAULT_FEED_MODE,
        min_score: Annotated[float, Query(ge=lowest, le=highest, description="lowest score an entry may have")
                             ] = feeds.DEFAULT_MIN_SCORE,
        since: Annotated[str | None, Query(max_length=40, description="window: days back (30) or a date "
                                                                      "(2026-07-01); default 30")] = None,
        limit: Annotated[int, Query(ge=1, le=settings.max_limit, description="most entries")] = feeds.DEFAULT_ENTRIES,
    ) -> dict:
        start = feeds.parse_since(since, datetime.now(timezone.utc))
        return {"filters": filters, "mode": mode, "min_score": min_score, "since": start, "limit": limit}

    Common = Annotated[dict, Depends(common)]

    def answer(request: Request, service, fmt: str, feed_request: feeds.FeedRequest) -> Response:
        url = str(request.url)
        with service.reading() as engine:
            cached = cache.get(url, engine.generation, feed_request.since)
            if cached is None:
                body = feeds.document(engine, feed_request, fmt, base_url=str(request.base_url).rstrip("/"),
                                      self_url=url)
                cached = cache.put(url, engine.generation, feed_request.since, body)
        headers = {"ETag": cached.etag, "Last-Modified": format_datetime(cached.last_modified, usegmt=True),
                   "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
        if not_modified(request, cached):
            return Response(status_code=304, headers=headers)
        return Response(cached.body, media_type=feeds.MEDIA_TYPES[fmt], headers=headers)

    @router.get("/feeds/search.{fmt}")
    def search_feed(request: Request, service: Service, fmt: Format, common: Common,
                    q: Annotated[str, Query(min_length=1, max_length=settings.max_query_chars,
                                            description="free text")]):
        """The newest papers matching a search, as Atom (`.atom`) or JSON Feed 1.1 (`.json`)."""
        return answer(request, service, fmt, feeds.FeedRequest(kind="search", query=q, **common))

    @router.get("/feeds/related/{paper_id:path}.{fmt}")
    def related_feed(request: Request, service: Service, fmt: Format, paper_id: str, common: Common):
        """The newest papers related to one stored paper; 404 for an unknown id."""
        return answer(request, service, fmt, feeds.FeedRequest(kind="related", paper_id=paper_id, **common))

    @router.get("/feeds/recommend.{fmt}")
    def recommend_feed(request: Request, service: Service, fmt: Format, common: Common,
                       positive: Annotated[list[str], Query(min_length=1, max_length=settings.max_recommend_ids,
                                                            description="a liked paper id (repeat)")],
                       negative: Annotated[list[str], Query(max_length=settings.max_recommend_ids,
                                                            description="a disliked paper id (repeat)")] = ()):
        """The newest papers like the liked ones and unlike the disliked ones (a reading list's feed)."""
        return answer(request, service, fmt, feeds.FeedRequest(kind="recommend", positive=tuple(positive),
                                                               negative=tuple(negative), **common))

    return router
