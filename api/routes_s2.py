"""Semantic Scholar's Graph and Recommendations API over this index (docs/s2-api.md).

Tools written for api.semanticscholar.org (the `semanticscholar` client, agents, notebooks) work
against PaperSearch by changing the base URL. Same paths, parameters and answer shapes; ranked by
PaperSearch's hybrid search, related and recommend; ids in every form S2 takes that the index can
know (plain, DOI:, ARXIV:, CorpusId:, PMID:, URL:), resolved by the store's one id lookup.

Errors answer S2's shape, `{"error": "..."}` (5xx add `"message"`, which the client reads),
with S2's statuses: 400 for a bad parameter (where the main API says 422), 404 for an unknown
paper. The main API's body limit and any middleware apply unchanged; there are no writes here.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from api.errors import ApiError, describe
from api.s2_papers import fields_of_study, parse_fields, publication_date, s2_paper
from api.schemas import ErrorResponse
from models.config import Settings
from models.errors import AmbiguousId, InvalidQuery, PaperNotFound
from models.paper import YEAR_MAX, YEAR_MIN, Paper
from models.query import Filters

log = logging.getLogger("papersearch.api")
# The published API's bounds: a relevance search reaches 1,000 results, a batch names 500 ids,
# recommendations return 500. This server's own limits (max_limit...) apply on top.
SEARCH_DEPTH, BATCH_IDS, RECOMMEND_LIMIT = 1000, 500, 500
# Filters the index has no data for: refused rather than silently ignored.
_UNSERVED_FILTERS = ("publicationTypes", "openAccessPdf", "minCitationCount")


class S2Error(BaseModel):
    """S2's error shape; 5xx answers carry the text in `message` too."""

    error: str
    message: str | None = Field(None, description="on 5xx answers, the same text")


# A path Starlette cannot route at all (a newline in the id) is answered before any route runs,
# in the main API's shape; hence either shape on a 404.
S2_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": S2Error | ErrorResponse if status == 404 else S2Error, "description": text}
    for status, text in (
        (400, "A parameter or body field cannot be used (S2 answers 400 where the main API says 422)"),
        (404, "Unknown paper id, no title close enough for /search/match, or a part not served "
              "(citations, references, authors)"),
        (503, "No index yet, the index is unreadable, or a write is in progress (see Retry-After)"),
    )
}


class S2Route(APIRoute):
    """A route whose failures answer in S2's error shape and statuses."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def answer(request: Request):
            try:
                return await handler(request)
            except Exception as exc:  # every failure, as S2 would answer it
                return s2_error(request, exc)

        return answer


def s2_error(request: Request, exc: Exception) -> JSONResponse:
    status, code, message, headers = describe(exc)
    if status == 422:  # S2 calls every bad parameter a 400
        status = 400
    if isinstance(exc, PaperNotFound):
        message = f"Paper with id {', '.join(exc.paper_ids)} not found"
    if code == "internal_error":
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    body: dict[str, Any] = {"error": message}
    if status >= 500:
        body["message"] = message
    return JSONResponse(body, status_code=status, headers=headers)


# --- parameters -----------------------------------------------------------------------------------


def _years(text: str | None) -> tuple[int | None, int | None]:
    """S2's `year`: 2019, 2016-2020, 2010- or -2015."""
    if not text:
        return None, None
    start, dash, end = text.strip().partition("-")
    try:
        low = int(start) if start else None
        high = (int(end) if end else None) if dash else low
    except ValueError:
        raise InvalidQuery(f"year must look like 2019, 2016-2020, 2010- or -2015, got {text!r}") from None
    if any(y is not None and not YEAR_MIN <= y <= YEAR_MAX for y in (low, high)):
        raise InvalidQuery(f"year must lie between {YEAR_MIN} and {YEAR_MAX}, got {text!r}")
    return low, high


def _date_range(text: str | None) -> tuple[str, str] | None:
    """S2's `publicationDateOrYear` (<start>:<end>, each YYYY, YYYY-MM or YYYY-MM-DD) as ISO bounds."""
    if not text:
        return None
    start, colon, end = text.partition(":")
    parts = [start, end if colon else start]
    for part in parts:
        pieces = part.split("-") if part else []
        if len(pieces) > 3 or not all(p.isdigit() for p in pieces):
            raise InvalidQuery(f"publicationDateOrYear must be <start>:<end> with YYYY, YYYY-MM or YYYY-MM-DD, "
                               f"got {text!r}")
    low = parts[0] or "0000"
    high = (parts[1] + "-99-99"[len(parts[1]) - 4:]) if parts[1] else "9999-99-99"
    return low, high


def _keep(venues: str | None, studies: str | None, dates: tuple[str, str] | None) -> Callable[[Paper], bool] | None:
    """The filters SQL cannot apply (venue, fieldsOfStudy, dates), as a test on each paper."""
    wanted_venues = {v.strip().lower() for v in (venues or "").split(",") if v.strip()}
    wanted_fields = {f.strip().lower() for f in (studies or "").split(",") if f.strip()}
    if not (wanted_venues or wanted_fields or dates):
        return None

    def keep(paper: Paper) -> bool:
        if wanted_venues and (paper.venue or "").lower() not in wanted_venues:
            return False
        if wanted_fields and not wanted_fields & {f.lower() for f in fields_of_study(paper) or ()}:
            return False
        if dates:
            when = publication_date(paper) or (str(paper.year) if paper.year else None)
            if when is None or not dates[0] <= when <= dates[1]:
                return False
        return True

    return keep


def _refuse_unserved(request: Request) -> None:
    asked = [name for name in _UNSERVED_FILTERS if name in request.query_params]
    if asked:
        raise InvalidQuery(f"This PaperSearch index cannot filter by {', '.join(asked)}: it holds no such data.")


def _paper_or_404(engine, paper_id: str) -> Paper:
    paper = engine.store.get_papers([paper_id]).get(paper_id)
    if paper is None:
        raise PaperNotFound(paper_id)
    return paper


def _ranked(engine, query: str, mode: str, filters: Filters, keep, offset: int, limit: int, step: int) -> list:
    """Hits [offset, offset + limit) of a search, with `keep` applied over the ranking's prefix."""
    if keep is None:
        return engine.search(query, limit=limit, offset=offset, filters=filters, mode=mode, snippets=False)
    kept, start = [], 0
    while len(kept) < offset + limit and start < SEARCH_DEPTH:
        hits = engine.search(query, limit=step, offset=start, filters=filters, mode=mode, snippets=False)
        kept += [hit for hit in hits if keep(hit.paper)]
        if len(hits) < step:
            break
        start += step
    return kept[offset:offset + limit]


# --- the routes -----------------------------------------------------------------------------------


def routes(settings: Settings, service) -> APIRouter:
    router = APIRouter(route_class=S2Route, tags=["semantic scholar"], responses=S2_RESPONSES)
    Fields = Annotated[str | None, Query(description="comma-separated S2 paper fields, e.g. title,year,authors")]
    page_limit = min(100, settings.max_limit)

    def search_page(engine, request: Request, query: str, offset: int, limit: int, year, venue, studies,
                    dates, mode: str) -> tuple[list, int]:
        _refuse_unserved(request)
        year_from, year_to = _years(year)
        filters = Filters(year_from=year_from, year_to=year_to)
        keep = _keep(venue, studies, _date_range(dates))
        hits = _ranked(engine, query, mode, filters, keep, offset, limit, page_limit)
        return hits, _total(engine.store, filters)

    @router.get("/graph/v1/paper/search")
    def paper_search(
        request: Request, query: Annotated[str, Query(min_length=1, max_length=settings.max_query_chars)],
        fields: Fields = None, offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=page_limit)] = page_limit, year: str | None = None,
        venue: str | None = None, fieldsOfStudy: str | None = None, publicationDateOrYear: str | None = None,
    ):
        """S2 relevance search, ranked by PaperSearch's hybrid search: `total`, `offset`, `next`, `data`."""
        wanted = parse_fields(fields)
        if offset + limit > min(SEARCH_DEPTH, settings.max_offset + limit):
            raise InvalidQuery(f"offset + limit must be at most {SEARCH_DEPTH}.")
        with service.reading() as engine:
            hits, total = search_page(engine, request, query, offset, limit, year, venue, fieldsOfStudy,
                                      publicationDateOrYear, service.default_mode)
        answer: dict[str, Any] = {"total": total, "offset": offset}
        if len(hits) == limit and offset + limit < min(total, SEARCH_DEPTH):
            answer["next"] = offset + limit
        return {**answer, "data": [s2_paper(hit.paper, wanted) for hit in hits]}

    @router.get("/graph/v1/paper/search/match")
    def title_match(request: Request, query: Annotated[str, Query(min_length=1, max_length=settings.max_query_chars)],
                    fields: Fields = None, year: str | None = None, venue: str | None = None,
                    fieldsOfStudy: str | None = None, publicationDateOrYear: str | None = None):
        """The paper whose title best matches `query`, with `matchScore`; 404 when none is close."""
        from difflib import SequenceMatcher

        from models.identifiers import normalize_title

        wanted = parse_fields(fields)
        with service.reading() as engine:
            hits, _ = search_page(engine, request, query, 0, 10, year, venue, fieldsOfStudy,
                                  publicationDateOrYear, service.default_mode)
        target = normalize_title(query)
        scored = [(SequenceMatcher(None, target, normalize_title(h.paper.title)).ratio(), h) for h in hits]
        best = max(scored, key=lambda pair: pair[0], default=None)
        if best is None or best[0] < 0.8:
            raise ApiError(404, "not_found", "Title match not found")
        return {"data": [s2_paper(best[1].paper, wanted, {"matchScore": round(best[0] * 100, 2)})]}

    @router.get("/graph/v1/paper/search/bulk")
    def bulk_search(request: Request, query: Annotated[str, Query(min_length=1, max_length=settings.max_query_chars)],
                    fields: Fields = None, token: str | None = None, sort: str | None = None,
                    year: str | None = None, venue: str | None = None, fieldsOfStudy: str | None = None,
                    publicationDateOrYear: str | None = None):
        """Every paper matching the query's terms (BM25), a page at a time; `token` continues."""
        if sort:
            raise InvalidQuery("This PaperSearch index returns bulk results in match order; sort is not served.")
        wanted = parse_fields(fields)
        if token is not None and not (token.isascii() and token.isdigit()):
            raise InvalidQuery(f"token {token!r} is not one this server handed out.")
        offset = int(token or 0)
        if offset > settings.max_offset:
            raise InvalidQuery(f"token {token!r} is past the deepest page this server returns.")
        with service.reading() as engine:
            hits, total = search_page(engine, request, query, offset, page_limit, year, venue, fieldsOfStudy,
                                      publicationDateOrYear, "lexical")
        more = len(hits) == page_limit and offset + page_limit <= settings.max_offset
        return {"total": total, "token": str(offset + page_limit) if more else None,
                "data": [s2_paper(hit.paper, wanted) for hit in hits]}

    @router.post("/graph/v1/paper/batch")
    def paper_batch(body: Annotated[dict, Body(examples=[{"ids": ["DOI:10.1109/CVPR.2016.90", "ARXIV:1706.03762"]}])],
                    fields: Fields = None):
        """Papers by id, in order; null for an id the index does not hold (or that names several)."""
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(_is_text(i) for i in ids) or not ids:
            raise InvalidQuery('The body must be {"ids": [...]} with one or more paper ids.')
        if len(ids) > BATCH_IDS:
            raise InvalidQuery(f"At most {BATCH_IDS} ids per batch, got {len(ids)}.")
        wanted = parse_fields(fields)
        with service.reading() as engine:
            found = _lookup_each(engine, ids)
        return [s2_paper(found[i], wanted) if i in found else None for i in ids]

    def not_served(path: str) -> ApiError:
        return ApiError(404, "not_served", f"{path} is not served by PaperSearch: the index holds no "
                                           "citation graph and no author records (see docs/s2-api.md).")

    @router.get("/graph/v1/paper/{paper_id:path}/citations")
    @router.get("/graph/v1/paper/{paper_id:path}/references")
    @router.get("/graph/v1/paper/{paper_id:path}/authors")
    def unserved_paper_parts(request: Request, paper_id: str):
        """Citations, references and authors of a paper: the index holds no citation graph."""
        raise not_served(request.url.path)

    @router.get("/graph/v1/author/{rest:path}", include_in_schema=False)
    def unserved_authors(request: Request):
        """Author records: the index holds none."""
        raise not_served(request.url.path)

    @router.get("/graph/v1/paper/{paper_id:path}")
    def paper(paper_id: str, fields: Fields = None):
        """One paper by any id form S2 takes that the index can know."""
        wanted = parse_fields(fields)
        with service.reading() as engine:
            return s2_paper(_paper_or_404(engine, paper_id), wanted)

    RecommendLimit = Annotated[int, Query(ge=1, le=min(RECOMMEND_LIMIT, settings.max_limit))]

    @router.get("/recommendations/v1/papers/forpaper/{paper_id:path}")
    def for_paper(paper_id: str, fields: Fields = None, limit: RecommendLimit = page_limit,
                  pool: Annotated[str, Query(alias="from", pattern="^(recent|all-cs)$")] = "recent"):
        """Papers like one paper (PaperSearch's related); `from` is accepted, the pool is the whole index."""
        wanted = parse_fields(fields)
        with service.reading() as engine:
            hits = engine.related(paper_id=paper_id, limit=limit, mode=service.related_default_mode)
        return {"recommendedPapers": [s2_paper(hit.paper, wanted) for hit in hits]}

    @router.post("/recommendations/v1/papers")
    @router.post("/recommendations/v1/papers/", include_in_schema=False)  # the client's spelling
    def from_lists(body: Annotated[dict, Body(examples=[{"positivePaperIds": ["ARXIV:1706.03762"],
                                                         "negativePaperIds": []}])],
                   fields: Fields = None, limit: RecommendLimit = page_limit):
        """Papers like the positive ones and unlike the negative ones (PaperSearch's recommend)."""
        positive, negative = body.get("positivePaperIds"), body.get("negativePaperIds") or []
        for name, ids in (("positivePaperIds", positive), ("negativePaperIds", negative)):
            if not isinstance(ids, list) or not all(_is_text(i) for i in ids):
                raise InvalidQuery(f"{name} must be a list of paper ids.")
        if not positive:
            raise InvalidQuery("positivePaperIds must name at least one paper.")
        if len(positive) + len(negative) > settings.max_recommend_ids:
            raise InvalidQuery(f"At most {settings.max_recommend_ids} paper ids per request.")
        wanted = parse_fields(fields)
        with service.reading() as engine:
            hits = engine.recommend(positive, negative, limit=limit, mode=service.related_default_mode)
        return {"recommendedPapers": [s2_paper(hit.paper, wanted) for hit in hits]}

    return router


def _total(store, filters: Filters) -> int:
    """Papers passing the SQL filters: every one is a candidate of a semantic search."""
    if filters.active() and hasattr(store, "filter_rowids"):  # a shard router's store has no SQL
        return len(store.filter_rowids(filters))
    return store.manifest()["papers"]


def _is_text(value: Any) -> bool:
    """A string SQLite and the JSON answer can take (JSON may spell lone surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lookup_each(engine, ids: list[str]) -> dict[str, Paper]:
    """id -> Paper for the ids that name exactly one stored paper (an ambiguous one is left out)."""
    try:
        return engine.store.get_papers(ids)
    except AmbiguousId:
        found: dict[str, Paper] = {}
        for one in dict.fromkeys(ids):
            try:
                found.update(engine.store.get_papers([one]))
            except AmbiguousId:
                pass
        return found
