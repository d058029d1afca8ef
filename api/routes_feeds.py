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
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api import feeds
from api.errors import ApiError, describe
from api.schemas import ERROR_RESPONSES
from models.config import Settings
from models.errors import PaperNotFound
from models.query import Filters

# Documents kept in memory (one per feed URL); the least recently polled goes first.
CACHE_SIZE = 512
# Readers may reuse a document this long without asking again.
CACHE_CONTROL = "public, max-age=300"

Format = Literal[feeds.FORMATS]  # type: ignore[valid-type]


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


def feed_url(base_url: str, path: str, params: list[tuple[str, object]]) -> str:
    """The canonical URL of a feed (what `papersearch feed` writes as the self link)."""
    kept = [(name, value) for name, value in params if value not in (None, "", ())]
    return f"{base_url}{path}" + (f"?{urlencode(kept)}" if kept else "")


def routes(settings: Settings, service) -> APIRouter:
    # Imported here: api.app imports this module to list it in ROUTE_MODULES.
    from api.app import Service, filter_params

    router = APIRouter(route_class=_BadParameterIs400, responses=ERROR_RESPONSES, tags=["feeds"])
    cache = FeedCache()
    Mode = Literal[service.modes]  # type: ignore[valid-type]
    filters_from_query = filter_params(settings)

    async def common(
        filters: Annotated[Filters, Depends(filters_from_query)],
        mode: Annotated[Mode, Query(description="ranking method; dense scores are cosines")] = feeds.DEFAULT_FEED_MODE,
        min_score: Annotated[float, Query(ge=-1.0, le=1000.0, description="lowest score an entry may have")
                             ] = feeds.DEFAULT_MIN_SCORE,
        since: Annotated[str | None, Query(max_length=40, description="window: days back (30) or a date "
                                                                      "(2026-07-01); default 30")] = None,
        limit: Annotated[int, Query(ge=1, le=settings.max_limit, description="most entries")] = feeds.DEFAULT_ENTRIES,
    ) -> dict:
        start = feeds.parse_since(since, datetime.now(timezone.utc))
        return {"filters": filters, "mode": mode, "min_score": min_score, "since": start, "limit": limit}

    Common = Annotated[dict, Depends(common)]

    def answer(request: Request, service, fmt: str, request_for: Callable, title_for: Callable,
               home: str) -> Response:
        url = str(request.url)
        base = str(request.base_url).rstrip("/")
        with service.reading() as engine:
            feed_request = request_for(engine)
            cached = cache.get(url, engine.generation, feed_request.since)
            if cached is None:
                feed = feeds.build_feed(engine, feed_request, base_url=base, self_url=url, home_url=base + home,
                                        title=title_for(engine))
                cached = cache.put(url, engine.generation, feed_request.since, feeds.render(feed, fmt))
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
        def request_for(engine):
            return feeds.FeedRequest(kind="search", query=q, **common)

        return answer(request, service, fmt, request_for, lambda engine: f"PaperSearch: {q}",
                      "/?" + urlencode({"q": q}))

    @router.get("/feeds/related/{paper_id:path}.{fmt}")
    def related_feed(request: Request, service: Service, fmt: Format, paper_id: str, common: Common):
        """The newest papers related to one stored paper."""
        def request_for(engine):
            if not engine.store.get_papers([paper_id]):
                raise PaperNotFound(paper_id)
            return feeds.FeedRequest(kind="related", paper_id=paper_id, **common)

        def title_for(engine):
            return f"PaperSearch: related to {engine.store.get_papers([paper_id])[paper_id].title}"

        return answer(request, service, fmt, request_for, title_for, f"/papers/{quote(paper_id, safe='')}")

    @router.get("/feeds/recommend.{fmt}")
    def recommend_feed(request: Request, service: Service, fmt: Format, common: Common,
                       positive: Annotated[list[str], Query(min_length=1, max_length=settings.max_recommend_ids,
                                                            description="a liked paper id (repeat)")],
                       negative: Annotated[list[str], Query(max_length=settings.max_recommend_ids,
                                                            description="a disliked paper id (repeat)")] = ()):
        """The newest papers like the liked ones and unlike the disliked ones (a reading list's feed)."""
        both = sorted(set(positive) & set(negative))
        if both:
            raise ApiError(400, "invalid_request",
                           f"{', '.join(map(repr, both))} cannot be both positive and negative.")

        def request_for(engine):
            return feeds.FeedRequest(kind="recommend", positive=tuple(positive), negative=tuple(negative), **common)

        liked = f"{len(positive)} liked paper{'s' if len(positive) > 1 else ''}"
        return answer(request, service, fmt, request_for, lambda engine: f"PaperSearch: like {liked}", "/")

    return router
