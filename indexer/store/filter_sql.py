"""The SQL WHERE clause for a set of Filters, over the `papers` table."""

from __future__ import annotations

from models.query import Filters


def filter_where(filters: Filters) -> tuple[str, list]:
    """(WHERE clause, parameters) selecting the papers that pass `filters`; "1" when none apply."""
    clauses, params = [], []
    if filters.year_from is not None:
        clauses.append("year >= ?")
        params.append(int(filters.year_from))
    if filters.year_to is not None:
        clauses.append("year <= ?")
        params.append(int(filters.year_to))
    if filters.category:
        # "cs" or "cs.CV": whole category, or a prefix up to a dot, case-insensitively.
        clauses.append("EXISTS (SELECT 1 FROM json_each(papers.categories) "
                       "WHERE lower(value) = lower(?) OR lower(value) LIKE lower(?) || '.%' ESCAPE '\\')")
        params += [filters.category, _escape_like(filters.category)]
    if filters.author:
        clauses.append("EXISTS (SELECT 1 FROM json_each(papers.authors) "
                       "WHERE lower(value) LIKE '%' || lower(?) || '%' ESCAPE '\\')")
        params.append(_escape_like(filters.author))
    return " AND ".join(clauses) or "1", params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
