"""The HTTP side of exports: which format a request asks for (a dependency every ranked list takes)
and `POST /export`, named papers (a reading list) in any export format. The writers themselves
are api/result_formats.py."""

# No `from __future__ import annotations`: FastAPI reads the annotations at run time.
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.result_formats import EXPORT_RESPONSES, JSON, export_response, requested_format
from api.schemas import ERROR_RESPONSES, PaperOut, Text
from models.config import Settings
from models.errors import PaperNotFound
from models.paper import Hit


async def export_format(request: Request, format: Annotated[str | None, Query(
        description="json (default), bibtex, ris, csl-json, csv or jsonl; else the Accept header decides")] = None,
) -> str:
    """The answer's format, from `format=` or the Accept header (400 or 406 when unknown)."""
    return requested_format(format, request.headers.get("accept"))


ExportFormat = Annotated[str, Depends(export_format)]


class ExportedPapers(BaseModel):
    results: list[PaperOut]


def routes(settings: Settings, service) -> APIRouter:
    router = APIRouter(responses=ERROR_RESPONSES)

    class ExportRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        paper_ids: list[Text] = Field(min_length=1, max_length=settings.max_recommend_ids,
                                      description="the papers, in the order the file lists them")

    @router.post("/export", response_model=ExportedPapers, tags=["papers"], responses=EXPORT_RESPONSES)
    def export_papers(body: ExportRequest, fmt: ExportFormat):
        """Named papers (a reading list) as one file: `format=` or Accept as for every ranked list.
        Unknown ids are a 404 naming them."""
        wanted = list(dict.fromkeys(body.paper_ids))
        with service.reading() as engine:
            papers = engine.store.get_papers(wanted)
        missing = [pid for pid in wanted if pid not in papers]
        if missing:
            raise PaperNotFound(missing)
        if fmt == JSON:
            return {"results": [PaperOut.from_paper(papers[pid]) for pid in wanted]}
        return export_response(fmt, [Hit(papers[pid], 0.0, rank) for rank, pid in enumerate(wanted, 1)], "papers")

    return router
