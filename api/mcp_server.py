"""PaperSearch as a Model Context Protocol server (the official `mcp` SDK's MCPServer).

Tools: search_papers, get_paper, related_papers, recommend_papers; a resource per paper
(paper://{paper_id}). Every result carries id, title, authors, year, a snippet, the score and the
paper's URL/DOI. Descriptions state the corpus (papers, years, main categories), read once at
start-up. Arguments are checked against the tool schemas (bounds included) by the SDK; the
engine's own failures (unknown id, empty query) become tool errors with its message, so a bad call
never stops the server. The index is served through api/service.py's IndexService, as over HTTP:
the same shared engine, and writes by other processes are picked up.
"""

# No `from __future__ import annotations`: the SDK reads the tool annotations at run time, and
# they name bounds local to build_server.
import html
import re
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer, ResourceSecurity
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from pydantic import Field

from api.feeds import external_link
from api.service import IndexService
from models.config import Settings
from models.errors import PaperSearchError
from models.paper import YEAR_MAX, YEAR_MIN, Hit, Paper
from models.query import DEFAULT_MODE, MODES, RELATED_DEFAULT_MODE, Filters

# Most results one tool call returns: agents page with `cursor` rather than fill their context.
MAX_RESULTS = 25
# Characters of abstract shown when a result has no matched-terms snippet.
SNIPPET_CHARS = 300
_TAG = re.compile(r"</?mark>")

Mode = Literal[MODES]  # type: ignore[valid-type]
Limit = Annotated[int, Field(ge=1, le=MAX_RESULTS, description=f"results to return (at most {MAX_RESULTS})")]
Year = Annotated[int | None, Field(ge=YEAR_MIN, le=YEAR_MAX)]
Cursor = Annotated[str | None, Field(max_length=12, description="next_cursor of the previous call, for the next page")]


def corpus_description(summary: dict) -> str:
    """One sentence on what the index holds, for tool descriptions."""
    years = (f"{summary['year_min']}-{summary['year_max']}" if summary["year_min"] is not None else "no years")
    shown = ", ".join(f"{name} ({count})" for name, count in summary["categories"]) or "none recorded"
    return (f"The corpus: {summary['papers']} scientific papers (title + abstract), years {years}; "
            f"most common categories: {shown}.")


def _snippet(hit: Hit) -> str:
    if hit.snippet:
        return html.unescape(_TAG.sub("", hit.snippet))
    abstract = hit.paper.abstract
    return abstract if len(abstract) <= SNIPPET_CHARS else abstract[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " ..."


def result(hit: Hit) -> dict[str, Any]:
    paper = hit.paper
    return {"id": paper.paper_id, "title": paper.title, "authors": list(paper.authors), "year": paper.year,
            "categories": list(paper.categories), "snippet": _snippet(hit), "score": round(float(hit.score), 4),
            "url": external_link(paper), "doi": paper.doi}


def paper_record(paper: Paper) -> dict[str, Any]:
    return {"id": paper.paper_id, **{k: v for k, v in paper.to_dict().items() if k != "paper_id"},
            "url": external_link(paper)}


def _page(hits: list[Hit], offset: int, limit: int, max_offset: int) -> dict[str, Any]:
    more = len(hits) == limit and offset + limit <= max_offset
    return {"results": [result(hit) for hit in hits], "next_cursor": str(offset + limit) if more else None}


def _offset(cursor: str | None, max_offset: int) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or int(cursor) > max_offset:
        raise ToolError(f"cursor {cursor!r:.20} is not one this server returned; pass next_cursor unchanged, "
                        "or leave it out for the first page.")
    return int(cursor)


def _filters(year_from: int | None, year_to: int | None, category: str | None, author: str | None) -> Filters:
    if year_from is not None and year_to is not None and year_from > year_to:
        raise ToolError(f"year_from ({year_from}) is after year_to ({year_to}); no paper could match.")
    return Filters(year_from=year_from, year_to=year_to, category=category or None, author=author or None)


def build_server(settings: Settings, service: IndexService | None = None) -> MCPServer:
    """The MCP server over `settings.index_dir`; opens the index now, so a missing one fails here."""
    service = service or IndexService(settings)
    with service.reading() as engine:
        corpus = corpus_description(engine.store.corpus_summary())
        engine.encoder.encode(["warm up"], "query")  # the first call is not the slow one
    max_offset = settings.max_offset
    Text = Annotated[str, Field(min_length=1, max_length=settings.max_query_chars)]
    Filter = Annotated[str | None, Field(max_length=settings.max_filter_chars)]
    Ids = Annotated[list[Annotated[str, Field(min_length=1, max_length=512)]],
                    Field(max_length=settings.max_recommend_ids)]
    server = MCPServer("papersearch", instructions="Semantic search over scientific paper abstracts. " + corpus)

    def calling(work):
        """Run `work(engine)`; the engine's own refusals become tool errors with its message."""
        try:
            with service.reading() as engine:
                return work(engine)
        except PaperSearchError as exc:
            raise ToolError(str(exc)) from exc

    @server.tool(description="Search the papers by free text; best first, with snippets. " + corpus +
                 " mode: hybrid (default, embeddings + BM25), dense or lexical. Page with cursor.")
    def search_papers(query: Text, mode: Mode = DEFAULT_MODE, limit: Limit = 10, cursor: Cursor = None,
                      year_from: Year = None, year_to: Year = None,
                      category: Annotated[Filter, Field(description="e.g. cs.CL, or cs for every cs.*")] = None,
                      author: Annotated[Filter, Field(description="part of an author's name")] = None,
                      ) -> dict[str, Any]:
        offset, filters = _offset(cursor, max_offset), _filters(year_from, year_to, category, author)
        return calling(lambda engine: _page(engine.search(query, limit=limit, offset=offset, filters=filters,
                                                          mode=mode), offset, limit, max_offset))

    @server.tool(description="One paper's full record (abstract, authors, categories, venue, URL, DOI) by its id, "
                 "DOI or arXiv id. " + corpus)
    def get_paper(paper_id: Annotated[str, Field(min_length=1, max_length=512)]) -> dict[str, Any]:
        paper = calling(lambda engine: engine.store.get_papers([paper_id]).get(paper_id))
        if paper is None:
            raise ToolError(f"No paper {paper_id!r} in this index; find ids with search_papers.")
        return paper_record(paper)

    @server.tool(description="Papers related to one stored paper (paper_id) or to a pasted abstract or draft "
                 "(text); give exactly one. Never returns the paper itself. " + corpus)
    def related_papers(paper_id: Annotated[str | None, Field(max_length=512)] = None, text: Text | None = None,
                       mode: Mode = RELATED_DEFAULT_MODE, limit: Limit = 10, cursor: Cursor = None,
                       year_from: Year = None, year_to: Year = None, category: Filter = None,
                       author: Filter = None) -> dict[str, Any]:
        if (paper_id is None) == (text is None):
            raise ToolError("Give either paper_id (a stored paper) or text (a pasted abstract), not both or neither.")
        offset, filters = _offset(cursor, max_offset), _filters(year_from, year_to, category, author)
        return calling(lambda engine: _page(engine.related(paper_id=paper_id, text=text, limit=limit, offset=offset,
                                                           filters=filters, mode=mode), offset, limit, max_offset))

    @server.tool(description="Papers like the liked ones (positive ids) and unlike the disliked ones (negative "
                 "ids), never any of them; for a reading list. " + corpus)
    def recommend_papers(positive: Annotated[Ids, Field(min_length=1)], negative: Ids | None = None,
                         mode: Mode = RELATED_DEFAULT_MODE, limit: Limit = 10, cursor: Cursor = None,
                         year_from: Year = None, year_to: Year = None, category: Filter = None,
                         author: Filter = None) -> dict[str, Any]:
        negative = negative or []
        both = sorted(set(positive) & set(negative))
        if both:
            raise ToolError(f"{', '.join(map(repr, both))} cannot be both positive and negative.")
        offset, filters = _offset(cursor, max_offset), _filters(year_from, year_to, category, author)
        return calling(lambda engine: _page(engine.recommend(positive, negative, limit=limit, offset=offset,
                                                             filters=filters, mode=mode), offset, limit, max_offset))

    # Ids are not file paths (DOIs hold slashes), and nothing here touches the filesystem.
    @server.resource("paper://{+paper_id}", name="paper", mime_type="application/json",
                     description="One paper's record, by id. " + corpus,
                     security=ResourceSecurity(exempt_params={"paper_id"}))
    def paper_resource(paper_id: str) -> dict[str, Any]:
        try:
            with service.reading() as engine:
                paper = engine.store.get_papers([paper_id]).get(paper_id)
        except PaperSearchError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        if paper is None:
            raise ResourceNotFoundError(f"No paper {paper_id!r} in this index.")
        return paper_record(paper)

    return server
