"""The HTTP API, the search page and the widget: `create_app(settings)` and thin routes.

Routes that touch the model, FAISS or SQLite are plain `def`, so FastAPI runs them in its
threadpool and the event loop keeps answering. Bounds come from Settings, so routes are built by
functions that take it; they show up in /openapi.json.
"""

# No `from __future__ import annotations` here: FastAPI reads the route annotations at run time,
# and they name bounds local to the router factories.
import hmac
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from api import routes_export, routes_feeds, routes_metrics, routes_pages, routes_s2
from api.errors import RETRY_AFTER_SECONDS, ApiError, describe, install_error_handlers
from api.limits import BodySizeLimit
from api.ratelimit import RateLimit
from api.records import parse_records
from api.result_formats import EXPORT_RESPONSES, JSON, SHOWS_SNIPPETS, export_response
from api.routes_export import ExportFormat
from api.routes_pages import PAGE_CSP, STATIC_DIR  # noqa: F401  (part of this module's surface)
from api.schemas import (
    ERROR_RESPONSES,
    MIN_SCORE_HELP,
    MIN_SCORE_RANGE,
    UPLOAD_BODY,
    VERSIONS_HELP,
    WRITE_ERROR_RESPONSES,
    DeleteResponse,
    HealthResponse,
    HitOut,
    PaperOut,
    RecommendResponse,
    RelatedResponse,
    SearchResponse,
    StatsResponse,
    Versions,
    WriteResponse,
    bounded_requests,
)
from api.service import IndexService
from api.shard_service import ShardService
from api.url_secrets import RefuseKeysInQuery
from indexer import vectors
from indexer.library_formats import library_papers
from models.config import Settings
from models.embedder import Embedder
from models.errors import InvalidInput, PaperNotFound, PaperSearchError
from models.paper import YEAR_MAX, YEAR_MIN
from models.query import DEFAULT_MODE, Filters  # noqa: F401  (DEFAULT_MODE: part of this module's surface)
from search.facets import FACET_FIELDS, SORTS

# Routers that live in their own module (api/routes_*.py): each has `routes(settings, service)`
# returning an APIRouter. A new group of endpoints is a new module plus one entry here.
ROUTE_MODULES: tuple = (routes_metrics, routes_s2, routes_export, routes_feeds, routes_pages)
# The engine's own default mode, so a new default (e.g. hybrid) needs no change here.
# Where the /docs and /redoc pages find Swagger UI's and ReDoc's files (the fastapi-offline package).
DOCS_ASSETS = "/docs-assets"

DESCRIPTION = """Semantic search over scientific paper abstracts.

Every error answers `{"error": {"code": ..., "message": ...}}`. Writes (`POST /papers`,
`DELETE /papers/{paper_id}`) need `Authorization: Bearer <PAPERSEARCH_API_KEY>`.
The search page is at `/`; the embeddable widget at `/widget.js`.
"""


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None,
               service: IndexService | ShardService | None = None) -> FastAPI:
    """The FastAPI app over `settings.index_dir`. `embedder` lets tests share one loaded model;
    `service` serves something else with the same routes, such as shards (api/shard_service.py)."""
    settings = settings or Settings.from_env()
    service = service or IndexService(settings, embedder=embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(service.start)  # open the index, load the model
        yield
        await run_in_threadpool(service.close)

    # FastAPI's own /docs and /redoc pages load Swagger UI and ReDoc from a CDN: blank on an
    # offline machine. FastAPIOffline is the same FastAPI app serving those files itself.
    app = FastAPIOffline(title="PaperSearch", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                         static_url=DOCS_ASSETS)
    app.state.settings = settings
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.rate_limit_reads or settings.rate_limit_writes:  # before the body is read
        app.add_middleware(RateLimit, settings=settings)
    app.add_middleware(RefuseKeysInQuery)
    # Added last, so it wraps the rest: 413s and other errors carry CORS headers too.
    app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                       allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"],
                       max_age=600)
    routes_metrics.install(app, settings, service)
    routers = (_read_routes(settings, service), _write_routes(settings),
               *(module.routes(settings, service) for module in ROUTE_MODULES))
    for router in routers:
        app.include_router(router)
    # Every route, flat, for the Allow header of a 405 (include_router keeps routers nested).
    app.state.method_routes = [route for router in routers for route in router.routes]
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in its
# threadpool, and those hops cost more CPU per search than the dependencies themselves.
async def get_service(request: Request) -> IndexService:
    return request.app.state.service


Service = Annotated[IndexService, Depends(get_service)]


# --- shared parameter handling ------------------------------------------------------------------


def filter_params(settings: Settings) -> Callable:
    """The filter query parameters with this server's bounds, as one dependency."""
    longest = settings.max_filter_chars

    Year = Annotated[int | None, Query(ge=YEAR_MIN, le=YEAR_MAX)]

    async def filters(
        year_from: Annotated[Year, Query(description="only papers from this year on")] = None,
        year_to: Annotated[Year, Query(description="only papers up to this year")] = None,
        category: Annotated[str | None, Query(max_length=longest, description="e.g. cs.CV, or cs for all cs.*")] = None,
        author: Annotated[str | None, Query(max_length=longest, description="case-insensitive part of a name")] = None,
        versions: Annotated[Versions, Query(description=VERSIONS_HELP)] = "one",
    ) -> Filters:
        return _filters(year_from, year_to, category, author, versions)

    return filters


def _filters(year_from: int | None, year_to: int | None, category: str | None, author: str | None,
             versions: str = "one") -> Filters:
    if year_from is not None and year_to is not None and year_from > year_to:
        raise ApiError(422, "invalid_request", f"year_from ({year_from}) is after year_to ({year_to}).")
    return Filters(year_from=year_from, year_to=year_to, category=category or None, author=author or None,
                   all_versions=versions == "all")


def _faceted(engine):
    """The engine, when it can count facets (one index can; a shard router cannot yet)."""
    if not hasattr(engine, "search_with_facets"):
        raise ApiError(400, "invalid_query", "This server serves shards: facets and sort=date need a single index.")
    return engine


def _page(hits, limit: int, offset: int, started: float, max_offset: int) -> dict:
    # A min_score cut that ends the list on this page leaves no next page (search.rank.HitPage).
    full = len(hits) == limit and offset + limit <= max_offset and not getattr(hits, "last", False)
    return {"limit": limit, "offset": offset, "took_ms": round((time.perf_counter() - started) * 1000, 2),
            "next_offset": offset + limit if full else None, "results": [HitOut.from_hit(h) for h in hits]}


# --- reading ------------------------------------------------------------------------------------


def _read_routes(settings: Settings, service: IndexService | ShardService) -> APIRouter:
    router = APIRouter(responses=ERROR_RESPONSES)
    Limit = Annotated[int, Query(ge=1, le=settings.max_limit, description="results per page")]
    Offset = Annotated[int, Query(ge=0, le=settings.max_offset, description="results to skip (paging)")]
    Mode = Literal[service.modes]  # type: ignore[valid-type]  # the engine's modes, whatever they are
    MinScore = Annotated[float | None, Query(ge=MIN_SCORE_RANGE[0], le=MIN_SCORE_RANGE[1], description=MIN_SCORE_HELP)]
    RelatedRequest, RecommendRequest = bounded_requests(settings, service.modes, service.related_default_mode)
    filters_from_query = filter_params(settings)

    @router.get("/search", response_model=SearchResponse, tags=["search"], responses=EXPORT_RESPONSES)
    def search(
        service: Service,
        q: Annotated[str, Query(min_length=1, max_length=settings.max_query_chars, description="free text")],
        filters: Annotated[Filters, Depends(filters_from_query)],
        fmt: ExportFormat,
        limit: Limit = 10,
        offset: Offset = 0,
        mode: Annotated[Mode, Query(description="ranking method")] = service.default_mode,
        snippets: Annotated[bool, Query(description="the best-matching abstract sentences, terms in <mark> "
                                                    "(under 0.1 ms a hit; false when only titles are shown)")] = True,
        facets: Annotated[str | None, Query(max_length=100, description="comma-separated, any of "
                                            + ", ".join(FACET_FIELDS))] = None,
        sort: Annotated[Literal[SORTS], Query(description="relevance, or date (newest first "  # type: ignore[valid-type]
                                                          "among the candidates)")] = "relevance",
        min_score: MinScore = None,
    ):
        """Papers ranked by relevance to a free-text query. Pages are stable and never overlap."""
        started = time.perf_counter()
        snippets = snippets and fmt in SHOWS_SNIPPETS  # BibTeX, RIS, CSL-JSON and CSV have no place for one
        with service.reading() as engine:
            if facets is None and sort == "relevance":
                hits, counts = engine.search(q, limit=limit, offset=offset, filters=filters, mode=mode,
                                             snippets=snippets, min_score=min_score), None
            else:
                hits, counts = _faceted(engine).search_with_facets(
                    q, limit=limit, offset=offset, filters=filters, mode=mode, snippets=snippets,
                    facets=facets or (), sort=sort, min_score=min_score)
        if fmt != JSON:
            return export_response(fmt, hits, "search")
        return {"query": q, "mode": mode, "sort": sort, "facets": counts,
                **_page(hits, limit, offset, started, settings.max_offset)}

    # Ids may hold slashes (DOIs, old arXiv ids), hence ":path"; "/related" is declared first.
    @router.get("/papers/{paper_id:path}/related", response_model=RelatedResponse, tags=["search"],
                responses=EXPORT_RESPONSES)
    def related_to_paper(service: Service, paper_id: str, filters: Annotated[Filters, Depends(filters_from_query)],
                         fmt: ExportFormat, limit: Limit = 10, offset: Offset = 0,
                         mode: Annotated[Mode, Query(description="ranking method")] = service.related_default_mode,
                         min_score: MinScore = None):
        """Papers related to a stored paper; never the paper itself."""
        started = time.perf_counter()
        with service.reading() as engine:
            hits = engine.related(paper_id=paper_id, limit=limit, offset=offset, filters=filters, mode=mode,
                                  min_score=min_score)
        if fmt != JSON:
            return export_response(fmt, hits, "related")
        return {"paper_id": paper_id, **_page(hits, limit, offset, started, settings.max_offset)}

    @router.get("/papers/{paper_id:path}", response_model=PaperOut, tags=["papers"])
    def get_paper(service: Service, paper_id: str):
        """One stored paper."""
        with service.reading() as engine:
            paper = engine.store.get_papers([paper_id]).get(paper_id)
        if paper is None:
            raise PaperNotFound(paper_id)
        return PaperOut.from_paper(paper)

    @router.post("/related", response_model=RelatedResponse, tags=["search"], responses=EXPORT_RESPONSES)
    def related_to_text(service: Service, body: RelatedRequest, fmt: ExportFormat):
        """Papers related to a pasted abstract or draft."""
        filters = _filters(body.year_from, body.year_to, body.category, body.author, body.versions)
        started = time.perf_counter()
        with service.reading() as engine:
            hits = engine.related(text=body.text, limit=body.limit, offset=body.offset, filters=filters,
                                  mode=body.mode, min_score=body.min_score)
        if fmt != JSON:
            return export_response(fmt, hits, "related")
        return {"paper_id": None, **_page(hits, body.limit, body.offset, started, settings.max_offset)}

    @router.post("/recommend", response_model=RecommendResponse, tags=["search"], responses=EXPORT_RESPONSES)
    def recommend(service: Service, body: RecommendRequest, fmt: ExportFormat):
        """Papers like the liked ones and unlike the disliked ones. Unknown ids are a 404 naming them.

        With `library` (a BibTeX, RIS or CSL-JSON text) instead of `positive`: papers most like the
        library that it does not hold, and `library` counts of its matched and unmatched entries.
        """
        filters = _filters(body.year_from, body.year_to, body.category, body.author, body.versions)
        started = time.perf_counter()
        library = None
        if body.library is not None:
            entries, rejected = library_papers(body.library, body.library_format)
            if not entries and rejected:
                raise InvalidInput(f"No entry of the library could be read ({len(rejected)} rejected): "
                                   + "; ".join(rejected[:5]))
            if len(entries) > settings.max_recommend_ids:  # each unmatched entry is embedded
                raise InvalidInput(f"The library holds {len(entries)} entries; this server takes at most "
                                   f"{settings.max_recommend_ids} (PAPERSEARCH_MAX_RECOMMEND_IDS).")
            with service.reading() as engine:
                if not hasattr(engine, "recommend_library"):
                    raise ApiError(400, "invalid_request", "Library recommendations need one index, not shards.")
                hits, match = engine.recommend_library(entries, body.negative, limit=body.limit, offset=body.offset,
                                                       filters=filters, mode=body.mode, min_score=body.min_score)
            positive = list(dict.fromkeys(match.matched.values()))
            library = {**match.counts(), "rejected": len(rejected), "rejections": rejected[:20]}
        else:
            positive = body.positive
            with service.reading() as engine:
                hits = engine.recommend(body.positive, body.negative, limit=body.limit, offset=body.offset,
                                        filters=filters, mode=body.mode, min_score=body.min_score)
        if fmt != JSON:
            return export_response(fmt, hits, "recommend")
        page = _page(hits, body.limit, body.offset, started, settings.max_offset)
        return {"positive": positive, "negative": body.negative, "library": library, **page}

    @router.get("/health", response_model=HealthResponse, tags=["service"])
    def health(service: Service):
        """200 when the index is open and searchable; 503 (error shape) with the reason when not."""
        try:
            return service.health()
        except PaperSearchError as exc:
            _, code, message, _ = describe(exc)
            raise ApiError(503, code, message, {"Retry-After": RETRY_AFTER_SECONDS}) from exc

    @router.get("/stats", response_model=StatsResponse, tags=["service"])
    def stats(service: Service):
        """What the index holds and the limits this server enforces."""
        with service.reading() as engine:
            manifest = engine.store.manifest()
            size = engine.store.size_on_disk()
            kind = vectors.resolve_index_type(manifest["index_type"], manifest["papers"])
        return {"papers": manifest["papers"], "model": manifest["model"]["name"],
                "model_fingerprint": manifest["model"]["fingerprint"], "dimension": manifest["dimension"],
                "index_type": kind, "generation": manifest["generation"], "size_bytes": size,
                "modes": list(service.modes), "default_mode": service.default_mode,
                "writes_enabled": service.writes_enabled, "max_limit": settings.max_limit,
                "max_query_chars": settings.max_query_chars,
                "max_body_bytes": settings.max_body_bytes}

    return router


# --- writing ------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="the server's PAPERSEARCH_API_KEY")


def _require_api_key(settings: Settings) -> Callable:
    expected = (settings.api_key or "").encode()

    async def require(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if not expected:
            raise ApiError(403, "writes_disabled", "Writes are disabled on this server: start it with "
                           "PAPERSEARCH_API_KEY set, then send 'Authorization: Bearer <key>'.")
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise ApiError(401, "unauthorized", "This endpoint needs 'Authorization: Bearer <API key>'.", challenge)
        # Constant time: the comparison must not reveal how much of a guess was right.
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise ApiError(401, "unauthorized", "The API key is not valid.", challenge)

    return require


async def _refuse_read_only(service: Service) -> None:
    if service.read_only:
        service.refuse_write()


def _write_routes(settings: Settings) -> APIRouter:
    # A read-only service (shards) refuses before the key is asked for: no key would help.
    router = APIRouter(responses=WRITE_ERROR_RESPONSES, tags=["papers"],
                       dependencies=[Depends(_refuse_read_only), Depends(_require_api_key(settings))])
    @router.post("/papers", response_model=WriteResponse, openapi_extra=UPLOAD_BODY)
    async def upsert_papers(service: Service, request: Request):
        """Add or replace papers (a JSON list of records, or NDJSON; fields as in `papersearch index`).

        Bad records are listed in `rejected` and the good ones are still applied, all at once.
        When no record is usable the answer is 422.
        """
        papers, rejected = await run_in_threadpool(parse_records, await request.body())
        if not papers:
            shown = "; ".join(r.message for r in rejected[:5])
            raise ApiError(422, "invalid_records", f"No record could be used: {shown}")
        outcome = await run_in_threadpool(service.upsert, [paper for _, paper in papers])
        report = outcome.report
        return {"indexed": report.indexed, "unchanged": report.unchanged, "embedded": report.embedded,
                "rejected": rejected, "duplicates": outcome.duplicates, "generation": outcome.generation,
                "papers": outcome.papers}

    @router.delete("/papers/{paper_id:path}", response_model=DeleteResponse)
    def delete_paper(service: Service, paper_id: str):
        """Remove a paper from the index."""
        generation, count = service.delete(paper_id)
        return {"deleted": paper_id, "generation": generation, "papers": count}

    return router
