"""Request and response models of the JSON API, built from models.paper.Paper/Hit at the edge.

Request models forbid unknown fields, so a typo ("limt") is a 422 naming the field rather than
a silently ignored option.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from indexer.library_formats import LIBRARY_FORMATS
from models.config import Settings
from models.paper import YEAR_MAX, YEAR_MIN, Hit, Paper
from models.query import MODES, RELATED_DEFAULT_MODE
from search.scores import MIN_SCORE_RANGE

# Most paper ids one recommend request may name.


# --- records ------------------------------------------------------------------------------------


class PaperOut(BaseModel):
    """One paper as stored."""

    paper_id: str
    title: str
    abstract: str
    authors: list[str]
    year: int | None
    categories: list[str]
    venue: str | None
    url: str | None
    doi: str | None
    extra: dict[str, Any] = Field(description="input fields PaperSearch has no name for, kept as given")

    @classmethod
    def from_paper(cls, paper: Paper) -> PaperOut:
        return cls(**paper.to_dict())


class HitOut(PaperOut):
    """One ranked result: the paper, its score (cosine similarity for dense) and 1-based rank."""

    score: float
    rank: int
    snippet: str | None = Field(
        None, description="abstract excerpt with matched terms in <mark>; HTML-escaped except for <mark>")
    versions: list[str] = Field(default_factory=list, description="paper ids of the other versions of this "
                                "work (a preprint and its published version), shown once unless versions=all")

    @classmethod
    def from_hit(cls, hit: Hit) -> HitOut:
        return cls(**hit.to_dict())


# --- responses ----------------------------------------------------------------------------------


class Page(BaseModel):
    """Fields every ranked list has."""

    limit: int
    offset: int
    took_ms: float = Field(description="time spent in the engine, in milliseconds")
    next_offset: int | None = Field(description="offset of the next page, or null on the last page")
    results: list[HitOut]


class FacetValue(BaseModel):
    value: int | str = Field(description="a year, a category or a venue")
    count: int = Field(description="candidates of this query with that value")


class SearchResponse(Page):
    query: str
    mode: str
    sort: str = Field("relevance", description="'relevance', or 'date': newest first among the candidates")
    facets: dict[str, list[FacetValue]] | None = Field(
        None, description="asked-for facets: counts over the candidates the ranking considered, most frequent "
                          "first (years newest first)")


class RelatedResponse(Page):
    paper_id: str | None = Field(description="the paper the results relate to; null for pasted text")


class LibraryOut(BaseModel):
    """How an uploaded library met the index (POST /recommend with `library`)."""

    entries: int = Field(description="entries read from the library")
    matched: int = Field(description="entries found in the index (by id, DOI, arXiv id or title): liked papers")
    unmatched: int = Field(description="entries not in the index, liked through their own title and abstract")
    rejected: int = Field(description="entries that could not be read")
    rejections: list[str] = Field(description="the first reasons, each 'library:LINE: reason'")


class RecommendResponse(Page):
    positive: list[str] = Field(description="liked paper ids (with `library`: the indexed papers it matched)")
    negative: list[str]
    library: LibraryOut | None = None


class RecordError(BaseModel):
    """Why one record of a POST /papers body was not applied."""

    index: int = Field(description="0-based position of the record in the request")
    paper_id: str | None
    message: str


class WriteResponse(BaseModel):
    indexed: int = Field(description="records added or changed")
    unchanged: int = Field(description="records identical to what was stored")
    embedded: int = Field(description="records whose text changed, so the model ran on them")
    rejected: list[RecordError]
    duplicates: list[str] = Field(description="ids sent more than once; the last record won")
    generation: int
    papers: int = Field(description="papers in the index after the write")


class DeleteResponse(BaseModel):
    deleted: str
    generation: int
    papers: int


class HealthResponse(BaseModel):
    status: str = Field(description="'ready'; a server that is not ready answers 503 in the error shape")
    papers: int
    model: str
    generation: int


class StatsResponse(BaseModel):
    papers: int
    model: str
    model_fingerprint: str
    dimension: int
    index_type: str
    generation: int
    size_bytes: int
    modes: list[str]
    default_mode: str
    writes_enabled: bool
    max_limit: int
    max_query_chars: int
    max_body_bytes: int


class CorpusResponse(BaseModel):
    """What the index holds, for a landing page (GET /corpus)."""

    papers: int
    year_min: int | None
    year_max: int | None
    categories: list[FacetValue] = Field(description="the most frequent categories, most papers first")
    papers_with_venue: int
    examples: list[str] = Field(description="example queries: the opening words of recent titles in the top categories")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    """The one error shape."""

    error: ErrorDetail


# --- requests -----------------------------------------------------------------------------------


def _unicode_text(value: str) -> str:
    # JSON may spell a lone UTF-16 surrogate ("\\ud800") and Python decodes it, but SQLite and
    # the JSON answer cannot encode it: refuse it here as a 422 rather than fail later as a 500.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"holds {exc.object[exc.start:exc.end]!a}, a lone surrogate, which is not valid "
                         "Unicode text") from None
    return value


# A string from a JSON body that is real Unicode text.
Text = Annotated[str, AfterValidator(_unicode_text)]


def _json_integer(value: Any) -> Any:
    # pydantic's lax mode would take true, false and "10" as integers; the schema says integer,
    # so they are a 422 like any other wrong type. 10.0 stays fine: JSON Schema counts it as 10.
    if isinstance(value, (bool, str)):
        raise ValueError(f"must be an integer, not {'a boolean' if isinstance(value, bool) else 'a string'}")
    return value


def _integer(**bounds: int) -> Any:
    """An integer type for JSON bodies, without lax coercion, with its bounds in the schema.

    The validator goes after the bounds: placed before them, pydantic writes them into the
    schema as unknown "ge"/"le" keys instead of minimum/maximum (schemathesis then sent
    year_to=0 as a valid value).
    """
    return Annotated[int, Field(**bounds), BeforeValidator(_json_integer)]


Year = _integer(ge=YEAR_MIN, le=YEAR_MAX)
MIN_SCORE_HELP = ("end the list at the first hit scoring below this: a cosine in mode dense, an estimated "
                  "chance of relevance (0-1) in lexical and hybrid")


def _json_number(value: Any) -> Any:
    # As for integers: true and "0.5" are not numbers in JSON, so they are a 422, not coerced.
    if isinstance(value, (bool, str)):
        raise ValueError(f"must be a number, not {'a boolean' if isinstance(value, bool) else 'a string'}")
    return value


MinScore = Annotated[float, Field(ge=MIN_SCORE_RANGE[0], le=MIN_SCORE_RANGE[1]), BeforeValidator(_json_number)]
RelatedMode = Literal[MODES]  # type: ignore[valid-type]
# One hit per work (the best-ranked version) or every version of it.
Versions = Literal["one", "all"]
VERSIONS_HELP = "one: a work's best-ranked version, the others listed in `versions`; all: every version"


class FilterFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year_from: Year | None = None
    year_to: Year | None = None
    category: Text | None = Field(None, description="e.g. cs.CV, or cs for every cs.*")
    author: Text | None = Field(None, description="case-insensitive substring of an author")
    versions: Versions = Field("one", description=VERSIONS_HELP)


class RelatedRequest(FilterFields):
    """POST /related; `bounded_requests` adds the server's bounds."""

    text: Text = Field(min_length=1, description="a pasted abstract or draft")
    limit: _integer(ge=1) = 10
    offset: _integer(ge=0) = 0
    mode: RelatedMode = Field(RELATED_DEFAULT_MODE, description="ranking method")
    min_score: MinScore | None = Field(None, description=MIN_SCORE_HELP)


class RecommendRequest(FilterFields):
    """POST /recommend; `bounded_requests` adds the server's bounds."""

    positive: list[Text] = Field(default_factory=list, description="liked paper ids")
    negative: list[Text] = Field(default_factory=list, description="disliked paper ids")
    library: Text | None = Field(None, min_length=1, description=(
        "instead of `positive`: a reference library's text (BibTeX, RIS or CSL-JSON, as Zotero, Mendeley or "
        "JabRef export it); its entries in the index are liked papers, the others are liked by their own text"))
    library_format: Literal[LIBRARY_FORMATS] | None = Field(  # type: ignore[valid-type]
        None, description="the library's format; told from its text when absent")
    limit: _integer(ge=1) = 10
    offset: _integer(ge=0) = 0
    mode: RelatedMode = Field(RELATED_DEFAULT_MODE, description="ranking method")
    min_score: MinScore | None = Field(None, description=MIN_SCORE_HELP)

    @model_validator(mode="after")
    def _liked_papers(self):
        if not self.positive and self.library is None:
            raise ValueError("give liked paper ids in 'positive', or a reference library's text in 'library'")
        if self.positive and self.library is not None:
            raise ValueError("give 'positive' or 'library', not both")
        return self


def bounded_requests(settings: Settings, modes: tuple[str, ...] = MODES, default_mode: str = RELATED_DEFAULT_MODE,
                     ) -> tuple[type[RelatedRequest], type[RecommendRequest]]:
    """The request models with one server's bounds (from Settings) and modes (a shard router has
    fewer), so /openapi.json states them and pydantic enforces them: a client that follows the
    schema is never refused for size."""
    common: dict[str, Any] = {
        "mode": (Literal[modes], Field(default_mode, description="ranking method")),  # type: ignore[valid-type]
        "limit": (_integer(ge=1, le=settings.max_limit), Field(10, description="results per page")),
        "offset": (_integer(ge=0, le=settings.max_offset), Field(0, description="results to skip (paging)")),
        "category": (Text | None, Field(None, max_length=settings.max_filter_chars,
                                        description="e.g. cs.CV, or cs for every cs.*")),
        "author": (Text | None, Field(None, max_length=settings.max_filter_chars,
                                      description="case-insensitive substring of an author")),
    }
    ids = settings.max_recommend_ids
    related = create_model(
        "RelatedRequest", __base__=RelatedRequest, __module__=__name__, **common,
        text=(Text, Field(min_length=1, max_length=settings.max_query_chars,
                          description="a pasted abstract or draft; send the first part of a longer one")))
    recommend = create_model(
        "RecommendRequest", __base__=RecommendRequest, __module__=__name__, **common,
        positive=(list[Text], Field(default_factory=list, max_length=ids, description="liked paper ids")),
        negative=(list[Text], Field(default_factory=list, max_length=ids, description="disliked paper ids")))
    return related, recommend


# What POST /papers takes, for /openapi.json only: records are parsed by indexer.records.to_paper
# (api/records.py), which is lenient on purpose, so a file that `papersearch index` accepts
# uploads too. Each record is checked on its own: bad ones are listed in `rejected`.
_TEXT_OR_NULL = {"anyOf": [{"type": "string"}, {"type": "null"}]}
_TEXT_OR_LIST = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]}
_ID = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 512}, {"type": "integer"}]}
PAPER_RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One paper. Fields PaperSearch has no name for are kept in `extra`.",
    "properties": {
        "id": {**_ID, "description": "the paper's id (also accepted as paper_id, _id or arxiv_id)"},
        # An alias is read only when the names before it are absent (else it is kept in `extra`),
        # so its type is not fixed here.
        **{alias: {"description": "the id, when the names before it are absent"}
           for alias in ("paper_id", "_id", "arxiv_id")},
        "title": {"type": "string", "description": "may be empty or absent when the record has an abstract"},
        "abstract": {**_TEXT_OR_NULL, "description": "also accepted as text or summary"},
        "authors": {**_TEXT_OR_LIST, "description": "a list, or one string split at commas, 'and', ';'"},
        "year": {"anyOf": [{"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX}, {"type": "string"},
                           {"type": "null"}], "description": "an integer, or text holding a year"},
        "categories": {**_TEXT_OR_LIST, "description": "a list, or one string split at spaces and commas"},
        "venue": _TEXT_OR_NULL, "url": _TEXT_OR_NULL, "doi": _TEXT_OR_NULL,
    },
    "allOf": [
        {"anyOf": [{"required": [name]} for name in ("id", "paper_id", "_id", "arxiv_id")]},
        # Something to search: a title, or an abstract (under any of its names) when the title is empty.
        {"anyOf": [{"required": [name], "properties": {name: {"type": "string", "minLength": 1}}}
                   for name in ("title", "abstract", "text", "summary")]},
    ],
}
UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {
        "schema": {"anyOf": [{"type": "array", "minItems": 1, "items": PAPER_RECORD_SCHEMA}, PAPER_RECORD_SCHEMA]},
        "example": [{"id": "2101.00001", "title": "A title", "abstract": "The abstract.",
                     "authors": ["Ada Lovelace"], "year": 2021, "categories": ["cs.CL"]}]},
    "application/x-ndjson": {"schema": {"type": "string", "minLength": 1,
                                        "description": "one JSON record per line"}},
}}}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "The query or input cannot be used (empty query, malformed JSON)"),
        (404, "Unknown paper id"),
        (422, "A parameter or body field is missing, of the wrong type or out of bounds"),
        (503, "No index yet, the index is unreadable, or a write is in progress (see Retry-After)"),
    )
}
WRITE_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    401: {"model": ErrorResponse, "description": "Missing or wrong 'Authorization: Bearer <key>'"},
    403: {"model": ErrorResponse, "description": "Writes are disabled: the server has no API key "
                                                 "(writes_disabled), or serves shards or a read-only index "
                                                 "(read_only)"},
    413: {"model": ErrorResponse, "description": "The request body is larger than the server accepts"},
}
