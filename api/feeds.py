"""Feeds: the newest relevant papers of a search, of one paper's related work, or of a reading list,
as Atom 1.0 and JSON Feed 1.1 documents. HTTP (api/routes_feeds.py) and `papersearch feed`
(api/cli_feed.py) write the same bytes from the same `FeedRequest`.

What goes in: the engine's ranking is read best first, page by page, while scores stay at or above
`min_score` (so every candidate is above the threshold, and the prefix is exact up to
MAX_CANDIDATES); of those, the papers dated inside the window (`since`) are kept, newest first.

A paper's date is its record's own date when the source gave one (`date`, `published`, ... in its
extra fields; a bare "Jan 29" takes the paper's year), else the time its row was last written.
That date is both the entry's `published` and `updated`: a metadata fix does not re-announce an
old paper. Entry ids are tag: URIs of the paper id, so a changed record keeps its entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

from models.errors import InvalidQuery, PaperNotFound
from models.paper import Hit, Paper
from models.query import Filters

FORMATS = ("atom", "json")
MEDIA_TYPES = {"atom": "application/atom+xml; charset=utf-8", "json": "application/feed+json; charset=utf-8"}
ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# Cosine similarity (dense mode) a paper needs to enter a feed. Chosen on 2,304 arXiv records of
# July 2026: about 4 in 5 entries of six topic queries were on topic at 0.45, and a query with no
# good match got an empty feed instead of neighbouring topics (docs/feeds.md, "Choosing min_score").
DEFAULT_MIN_SCORE = 0.45
# Cosines lie in [-1, 1]; BM25 (lexical mode) scores are unbounded above.
MIN_SCORE_RANGE = (-1.0, 1000.0)
DEFAULT_SINCE_DAYS = 30
MAX_SINCE_DAYS = 36_500
DEFAULT_ENTRIES = 20
# Dense scores are cosines, comparable across queries; hybrid scores are normalised per query,
# so a fixed threshold on them would let a nonsense query fill its feed.
DEFAULT_FEED_MODE = "dense"
# Most ranked candidates read per feed: 10 engine pages of 100.
MAX_CANDIDATES = 1000
# Tag URI authority and date (RFC 4151): fixed, so ids survive a move to another host.
TAG = "tag:papersearch,2025:"
# Extra fields holding a record's own date, most telling first.
DATE_FIELDS = ("date", "published", "published_date", "publication_date", "created", "update_date", "updated")
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_DAYS = re.compile(r"^([0-9]{1,6})d?$")
# Characters XML 1.0 cannot hold at all (control characters a record may carry): dropped from Atom.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class FeedRequest:
    """What one feed shows. `kind` is search (query), related (paper_id) or recommend (positive...)."""

    kind: str
    query: str | None = None
    paper_id: str | None = None
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    filters: Filters = field(default_factory=Filters)
    mode: str = DEFAULT_FEED_MODE
    min_score: float = DEFAULT_MIN_SCORE
    since: datetime = datetime(1970, 1, 1, tzinfo=timezone.utc)
    limit: int = DEFAULT_ENTRIES

    def __post_init__(self) -> None:
        both = sorted(set(self.positive) & set(self.negative))
        if both:
            raise InvalidQuery(f"{', '.join(map(repr, both))} cannot be both liked (positive) and disliked (negative).")
        if not MIN_SCORE_RANGE[0] <= self.min_score <= MIN_SCORE_RANGE[1]:  # NaN fails too
            raise InvalidQuery(f"min_score must be between {MIN_SCORE_RANGE[0]:g} and {MIN_SCORE_RANGE[1]:g}, "
                               f"got {self.min_score}.")


@dataclass(frozen=True)
class Entry:
    paper: Paper
    score: float
    date: datetime
    link: str


@dataclass(frozen=True)
class Feed:
    feed_id: str
    title: str
    subtitle: str
    self_url: str
    home_url: str
    updated: datetime
    entries: list[Entry]


# --- parameters ---------------------------------------------------------------------------------


def parse_since(text: str | None, now: datetime) -> datetime:
    """The window's start: a number of days before `now` ("30", "30d"), or an ISO date or time.

    Day counts start at midnight UTC, so a feed URL names the same window all day (and its cached
    document stays valid until the next write or the next day).
    """
    if text is None or text == "":
        text = str(DEFAULT_SINCE_DAYS)
    days = _DAYS.match(text.strip())
    if days:
        count = int(days.group(1))
        if not 1 <= count <= MAX_SINCE_DAYS:
            raise InvalidQuery(f"since={text!r}: a number of days must be between 1 and {MAX_SINCE_DAYS}.")
        midnight = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=count)
    moment = _iso(text.strip())
    if moment is None:
        raise InvalidQuery(f"since={text[:40]!r} is neither a number of days (e.g. 30) nor a date (e.g. 2026-07-01).")
    return moment


def _iso(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def paper_date(paper: Paper, indexed_at: int | None) -> datetime:
    """The record's own date when it has one, else when its row was last written."""
    for name in DATE_FIELDS:
        value = paper.extra.get(name)
        if isinstance(value, str) and value.strip():
            moment = _record_date(value.strip(), paper.year)
            if moment is not None:
                return moment
    return datetime.fromtimestamp(indexed_at or 0, tz=timezone.utc)


def _record_date(text: str, year: int | None) -> datetime | None:
    """ISO 8601, RFC 2822, "Jul 12, 2022", "12 Jul 2022", or "Jan 29" in the paper's year."""
    moment = _iso(text)
    if moment is not None:
        return moment
    try:
        return parsedate_to_datetime(text).astimezone(timezone.utc)
    except (TypeError, ValueError, IndexError):
        pass
    for pattern in ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%b %d %Y"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    if year is not None:
        for pattern in ("%b %d %Y", "%B %d %Y"):
            try:
                return datetime.strptime(f"{text} {year}", pattern).replace(tzinfo=timezone.utc)
            except ValueError:
                continue
    return None


# --- choosing the entries -------------------------------------------------------------------------


def ranked_candidates(engine, request: FeedRequest) -> list[Hit]:
    """The engine's ranking for `request`, best first, cut by the engine at the threshold."""
    page_size = min(100, engine.settings.max_limit)
    rank: Callable[[int], list[Hit]]
    if request.kind == "search":
        def rank(offset):
            return engine.search(request.query, limit=page_size, offset=offset, filters=request.filters,
                                 mode=request.mode, snippets=False, min_score=request.min_score)
    elif request.kind == "related":
        def rank(offset):
            return engine.related(paper_id=request.paper_id, limit=page_size, offset=offset,
                                  filters=request.filters, mode=request.mode, min_score=request.min_score)
    else:
        def rank(offset):
            return engine.recommend(list(request.positive), list(request.negative), limit=page_size,
                                    offset=offset, filters=request.filters, mode=request.mode,
                                    min_score=request.min_score)
    found: list[Hit] = []
    while len(found) < MAX_CANDIDATES and len(found) <= engine.settings.max_offset:
        page = rank(len(found))
        found.extend(page)
        if len(page) < page_size or getattr(page, "last", False):  # the threshold or the ranking ended it
            break
    return found


def entries_for(engine, request: FeedRequest, base_url: str) -> list[Entry]:
    """The newest `request.limit` papers above the threshold and inside the window."""
    hits = ranked_candidates(engine, request)
    stamps = engine.store.indexed_times([hit.paper.paper_id for hit in hits])
    dated = [Entry(hit.paper, hit.score, paper_date(hit.paper, stamps.get(hit.paper.paper_id)),
                   paper_link(hit.paper, base_url)) for hit in hits]
    recent = [entry for entry in dated if entry.date >= request.since]
    recent.sort(key=lambda entry: (entry.date, entry.score), reverse=True)
    return recent[:request.limit]


def external_link(paper: Paper) -> str | None:
    """The paper's own page: the record's URL, else its DOI, else its arXiv page (None: none known)."""
    if paper.url:
        return paper.url
    if paper.doi:
        return doi_link(paper.doi)
    if _ARXIV_ID.match(paper.paper_id):
        return "https://arxiv.org/abs/" + paper.paper_id
    return None


def doi_link(doi: str) -> str:
    return "https://doi.org/" + quote(doi, safe="/:;()._-")


def paper_link(paper: Paper, base_url: str) -> str:
    """Where a reader goes: the paper's own page, else this server's record of it."""
    return external_link(paper) or f"{base_url}/papers/{quote(paper.paper_id, safe='')}"


def entry_id(paper_id: str) -> str:
    return f"{TAG}paper/{quote(paper_id, safe='')}"


def feed_title(engine, request: FeedRequest) -> str:
    """The feed's title; PaperNotFound for a related feed of an unknown paper."""
    if request.kind == "search":
        return f"PaperSearch: {request.query}"
    if request.kind == "related":
        paper = engine.store.get_papers([request.paper_id]).get(request.paper_id)
        if paper is None:
            raise PaperNotFound(request.paper_id)
        return f"PaperSearch: related to {paper.title}"
    count = len(request.positive)
    return f"PaperSearch: like {count} liked paper{'s' if count > 1 else ''}"


def feed_path(request: FeedRequest, fmt: str) -> str:
    """/feeds/search.atom, /feeds/related/{paper_id}.json, /feeds/recommend.atom."""
    if request.kind == "related":
        return f"/feeds/related/{quote(request.paper_id, safe='')}.{fmt}"
    return f"/feeds/{request.kind}.{fmt}"


def feed_url(base_url: str, request: FeedRequest, fmt: str, since: str | None = None) -> str:
    """The canonical URL of a feed: what `papersearch feed` writes as its self link, and what a
    page links to. Only values that differ from the defaults are spelled."""
    filters = request.filters
    params: list[tuple[str, object]] = [("q", request.query)]
    params += [("positive", paper_id) for paper_id in request.positive]
    params += [("negative", paper_id) for paper_id in request.negative]
    params += [("year_from", filters.year_from), ("year_to", filters.year_to), ("category", filters.category),
               ("author", filters.author)]
    params += [("mode", request.mode if request.mode != DEFAULT_FEED_MODE else None),
               ("min_score", request.min_score if request.min_score != DEFAULT_MIN_SCORE else None),
               ("since", since), ("limit", request.limit if request.limit != DEFAULT_ENTRIES else None)]
    kept = [(name, value) for name, value in params if value is not None and value != ""]
    return f"{base_url}{feed_path(request, fmt)}" + (f"?{urlencode(kept)}" if kept else "")


def home_url(base_url: str, request: FeedRequest) -> str:
    """The page a feed stands for: the search page for a search, the paper's record for related."""
    if request.kind == "search":
        return f"{base_url}/?{urlencode({'q': request.query})}"
    if request.kind == "related":
        return f"{base_url}/papers/{quote(request.paper_id, safe='')}"
    return f"{base_url}/"


def document(engine, request: FeedRequest, fmt: str, *, base_url: str, self_url: str) -> bytes:
    """The feed for `request` as `fmt` ("atom" or "json") bytes."""
    title = feed_title(engine, request)
    entries = entries_for(engine, request, base_url)
    # The newest entry's date; an empty feed is as new as the index's last write.
    updated = max((entry.date for entry in entries),
                  default=datetime.fromtimestamp(engine.store.last_indexed(), tz=timezone.utc))
    subtitle = (f"Newest papers scoring at least {request.min_score:g} ({request.mode}), "
                f"dated from {request.since.date().isoformat()} on.")
    # The id names the feed, not the host: a server that moves keeps its readers' entries.
    feed_id = f"{TAG}feed/{quote(self_url.split('/feeds/', 1)[-1], safe='')}"
    feed = Feed(feed_id=feed_id, title=title, subtitle=subtitle, self_url=self_url,
                home_url=home_url(base_url, request), updated=updated, entries=entries)
    return atom(feed) if fmt == "atom" else json_feed(feed)


# --- writing the documents ----------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def atom(feed: Feed) -> bytes:
    """The feed as an Atom 1.0 document (RFC 4287)."""
    ElementTree.register_namespace("", ATOM_NS)

    def sub(parent, tag, text=None, **attributes):
        element = ElementTree.SubElement(parent, f"{{{ATOM_NS}}}{tag}",
                                         {name: _NOT_XML.sub("", value) for name, value in attributes.items()})
        if text is not None:
            element.text = _NOT_XML.sub("", text)
        return element

    root = ElementTree.Element(f"{{{ATOM_NS}}}feed")
    sub(root, "id", feed.feed_id)
    sub(root, "title", feed.title)
    sub(root, "subtitle", feed.subtitle)
    sub(root, "updated", _stamp(feed.updated))
    sub(root, "link", rel="self", href=feed.self_url, type="application/atom+xml")
    sub(root, "link", rel="alternate", href=feed.home_url, type="text/html")
    sub(root, "generator", "PaperSearch")
    # RFC 4287 wants an author on the feed when an entry has none (astro-ph records without authors).
    sub(sub(root, "author"), "name", "PaperSearch")
    for entry in feed.entries:
        paper = entry.paper
        node = sub(root, "entry")
        sub(node, "id", entry_id(paper.paper_id))
        sub(node, "title", paper.title)
        sub(node, "updated", _stamp(entry.date))
        sub(node, "published", _stamp(entry.date))
        for name in paper.authors:
            sub(sub(node, "author"), "name", name)
        for category in paper.categories:
            sub(node, "category", term=category)
        sub(node, "link", rel="alternate", href=entry.link)
        if paper.doi and entry.link != doi_link(paper.doi):
            sub(node, "link", rel="related", href=doi_link(paper.doi))
        sub(node, "summary", paper.abstract or paper.title, type="text")
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def json_feed(feed: Feed) -> bytes:
    """The feed as a JSON Feed 1.1 document; `_papersearch` carries the score and DOI."""
    items = []
    for entry in feed.entries:
        paper = entry.paper
        item = {"id": entry_id(paper.paper_id), "url": entry.link, "title": paper.title,
                "content_text": paper.abstract or paper.title, "date_published": _stamp(entry.date),
                "date_modified": _stamp(entry.date), "authors": [{"name": name} for name in paper.authors],
                "tags": list(paper.categories),
                "_papersearch": {"paper_id": paper.paper_id, "score": round(float(entry.score), 6),
                                 "year": paper.year, "doi": paper.doi}}
        items.append(item)
    document = {"version": JSON_FEED_VERSION, "title": feed.title, "description": feed.subtitle,
                "home_page_url": feed.home_url, "feed_url": feed.self_url, "items": items}
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
