"""What a search request may ask for: one home for the checks the engine and the shard router share.

Each check raises InvalidQuery with a message that says what to change, or returns the cleaned value.
"""

from __future__ import annotations

import dataclasses
import re

from models.config import Settings
from models.errors import InvalidQuery
from models.paper import YEAR_MAX, YEAR_MIN
from models.query import MODES, Filters
from search.scores import MIN_SCORE_RANGE

# Lone UTF-16 surrogates (from JSON "\ud800" escapes) are not text; the tokenizer refuses them.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def checked_query(query: str | None, settings: Settings) -> str:
    """The query text, stripped and without lone surrogates; never empty or over the length limit."""
    text = _LONE_SURROGATE.sub("\ufffd", query or "").strip()
    if not text:
        raise InvalidQuery("The query is empty: type a few words, such as 'lightweight OCR'.")
    if len(text) > settings.max_query_chars:
        raise InvalidQuery(f"The query is {len(text)} characters long; the limit is "
                           f"{settings.max_query_chars}. Shorten it.")
    return text


def check_page(limit: int, offset: int, settings: Settings) -> None:
    """A page of 1..max_limit results, starting at most max_offset results in."""
    if not 1 <= limit <= settings.max_limit:
        raise InvalidQuery(f"limit must be between 1 and {settings.max_limit}, got {limit}.")
    if not 0 <= offset <= settings.max_offset:
        raise InvalidQuery(f"offset must be between 0 and {settings.max_offset}, got {offset}.")


def checked_filters(filters: Filters, settings: Settings) -> Filters:
    """Filters SQLite can take: text without surrogates and of sane length, years in range."""
    for name in ("year_from", "year_to"):
        year = getattr(filters, name)
        if year is not None and (isinstance(year, bool) or not isinstance(year, int)
                                 or not YEAR_MIN <= year <= YEAR_MAX):
            raise InvalidQuery(f"{name} must be a year between {YEAR_MIN} and {YEAR_MAX}, got {year!r:.40}.")
    texts = {}
    for name in ("category", "author"):
        value = getattr(filters, name)
        if value is not None:
            if not isinstance(value, str) or len(value) > settings.max_filter_chars:
                raise InvalidQuery(f"The {name} filter must be text of at most {settings.max_filter_chars} characters.")
            texts[name] = _LONE_SURROGATE.sub("\ufffd", value)
    return dataclasses.replace(filters, **texts)


def check_mode(mode: str) -> None:
    """A ranking the engine offers (search, related and recommend share them)."""
    if mode not in MODES:
        raise InvalidQuery(f"Unknown mode {mode!r}; choose one of: {', '.join(MODES)}.")


def checked_min_score(min_score: float | None) -> float | None:
    """None, or a number in the range every mode's scores share (search/scores.py)."""
    if min_score is None:
        return None
    low, high = MIN_SCORE_RANGE
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not low <= min_score <= high:
        raise InvalidQuery(f"min_score must be a number between {low:g} and {high:g}, got {min_score!r:.40}.")
    return float(min_score)
