"""The search page's views, the corpus summary it opens with, the widget and its no-JS embed.

Every view of the page (`/`, `/paper/{id}`, `/list`) is the same index.html: app.js reads the path.
`/embed/related` is the widget's content rendered on the server, for an <iframe> where a site
allows no script; it finds the paper the way widget.js does (id, DOI or arXiv id, else the title
and abstract as a related-text query) and never lists the page's own paper.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import html
import re
import threading
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, HTMLResponse

from api.schemas import CorpusResponse
from models.config import Settings
from models.errors import PaperNotFound
from search.facets import corpus_summary

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page may only load its own files and call its own API: a strong guard against XSS.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
# The embed runs no script at all, and any site may frame it (that is what it is for).
EMBED_CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; " \
            "frame-ancestors *"
# Sites embed the widget on every article page: a short public cache keeps those pages cheap
# without pinning old code or old results for long. Nothing here sets a cookie.
WIDGET_CACHE = "public, max-age=300"
EMBED_CACHE = "public, max-age=600"
EMBED_DEFAULT_LIMIT = 5
EMBED_MAX_LIMIT = 50  # as the widget's data-limit
THEMES = ("auto", "light", "dark")


def routes(settings: Settings, service) -> APIRouter:
    router = APIRouter()
    summaries: dict[int, dict] = {}  # generation -> corpus summary (one kept)
    summary_lock = threading.Lock()

    def page():
        return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_CSP,
                                                                 "X-Content-Type-Options": "nosniff"})

    for path in ("/", "/list"):
        router.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    @router.get("/paper/{paper_id:path}", include_in_schema=False)
    def paper_page(paper_id: str):
        return page()  # the id is read by app.js from the path, never by the server

    @router.get("/widget.js", include_in_schema=False)
    def widget():
        return FileResponse(STATIC_DIR / "widget.js", media_type="text/javascript",
                            headers={"Cache-Control": WIDGET_CACHE, "X-Content-Type-Options": "nosniff"})

    @router.get("/corpus", response_model=CorpusResponse, tags=["service"])
    def corpus():
        """What the index holds, for a landing page: papers, year range, top categories, example queries."""
        with service.reading() as engine:
            generation = engine.generation
            with summary_lock:
                if generation not in summaries:
                    summaries.clear()
                    summaries[generation] = corpus_summary(engine.store)
                return summaries[generation]

    Text = Annotated[str | None, Query(max_length=settings.max_query_chars)]
    Id = Annotated[str | None, Query(max_length=512)]

    @router.get("/embed/related", response_class=HTMLResponse, tags=["widget"])
    def embed_related(paper_id: Id = None, doi: Id = None, arxiv_id: Id = None,
                      title: Text = None, text: Annotated[Text, Query(description="the abstract")] = None,
                      limit: Annotated[int, Query(ge=1, le=EMBED_MAX_LIMIT)] = EMBED_DEFAULT_LIMIT,
                      theme: Literal[THEMES] = "auto",  # type: ignore[valid-type]
                      heading: Annotated[str, Query(max_length=200)] = "Related papers"):
        """The widget's list as an HTML document for an <iframe> (no script): related papers of the
        paper named by id, DOI or arXiv id, else of the title and abstract; never that paper itself."""
        with service.reading() as engine:
            hits = related_for_page(engine, [paper_id, doi, arxiv_id], title, text, limit)
        body = render_embed(hits, heading, theme)
        return HTMLResponse(body, headers={"Content-Security-Policy": EMBED_CSP, "Cache-Control": EMBED_CACHE,
                                           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    return router


def related_for_page(engine, identifiers, title: str | None, text: str | None, limit: int) -> list:
    """The related papers of a host page's paper (widget.js follows the same steps)."""
    for identifier in filter(None, identifiers):
        try:
            return engine.related(paper_id=identifier.strip(), limit=limit)
        except PaperNotFound:
            continue
    query = " ".join(part.strip() for part in (title, text) if part and part.strip())
    if not query:
        return []
    own_title = _normal_title(title or "")
    hits = engine.related(text=query[:engine.settings.max_query_chars], limit=limit + 1)
    wanted = {i.strip().lower() for i in identifiers if i}
    return [h for h in hits if not _same_paper(h.paper, own_title, wanted)][:limit]


def _same_paper(paper, own_title: str, identifiers: set[str]) -> bool:
    return bool((own_title and _normal_title(paper.title) == own_title)
                or paper.paper_id.lower() in identifiers or (paper.doi or "").lower() in identifiers)


def _normal_title(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()


def render_embed(hits: list, heading: str, theme: str) -> str:
    """The embed document: the widget's markup, escaped, styled by /static/widget.css."""
    escape = html.escape
    if hits:
        items = []
        for hit in hits:
            paper = hit.paper
            own = "/paper/" + quote(paper.paper_id, safe="/:")
            url = paper.url if (paper.url or "").startswith(("http://", "https://")) else own
            authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
            meta = " · ".join(str(x) for x in (authors, paper.year) if x)
            items.append(f'<li><a href="{escape(url)}" target="_blank" rel="noopener">{escape(paper.title)}</a>'
                         + (f'<span class="meta">{escape(meta)}</span>' if meta else "") + "</li>")
        content = '<ol class="list">' + "".join(items) + "</ol>"
    else:
        content = '<p class="note">No related papers found.</p>'
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(heading)}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="stylesheet" href="/static/widget.css"></head>'
            f'<body class="embed"><section class="box" data-theme="{escape(theme)}" aria-labelledby="ps-heading">'
            f'<h2 id="ps-heading">{escape(heading)}</h2>{content}'
            '<p class="foot">Found by <a href="/" target="_blank" rel="noopener">PaperSearch</a></p>'
            '</section></body></html>')
