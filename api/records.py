"""Turn a POST /papers body (a JSON list, one JSON object, or NDJSON) into Papers and rejections.

Records use the same field names and checks as `papersearch index` (indexer.ingest.to_paper), so a
file that indexes from the command line also uploads over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

from api.schemas import RecordError
from indexer.ingest import to_paper
from models.errors import InvalidInput
from models.paper import Paper


def parse_records(body: bytes) -> tuple[list[tuple[int, Paper]], list[RecordError]]:
    """(position, Paper) for each usable record and a RecordError for each unusable one.

    The body is a JSON array of records when it starts with '[', else one JSON object, else
    NDJSON (one object per line). Raises InvalidInput when it is none of these or holds nothing.
    """
    try:
        text = body.decode("utf-8").lstrip("\ufeff").strip()
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"The request body is not UTF-8 (bad byte at position {exc.start}).") from exc
    if not text:
        raise InvalidInput("The request body is empty: send a JSON list of paper records, or NDJSON.")
    items = _json_items(text) if text.startswith("[") else _single_or_lines(text)
    if not items:
        raise InvalidInput("The request holds no records: send a JSON list of paper records, or NDJSON.")
    papers: list[tuple[int, Paper]] = []
    rejected: list[RecordError] = []
    for index, (record, problem) in enumerate(items):
        if problem is None and not isinstance(record, dict):
            problem = f"expected a JSON object, got {_json_type(record)}"
        if problem is None:
            problem = _lone_surrogate(record)
        if problem is not None:
            paper_id = _raw_id(record) if isinstance(record, dict) else None
            rejected.append(RecordError(index=index, paper_id=paper_id, message=f"record {index}: {problem}"))
            continue
        try:
            papers.append((index, to_paper(record)))
        except InvalidInput as exc:
            rejected.append(RecordError(index=index, paper_id=_raw_id(record), message=f"record {index}: {exc}"))
    return papers, rejected


def _json_items(text: str) -> list[tuple[Any, str | None]]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"The request body is not valid JSON ({exc}).") from exc
    except RecursionError as exc:
        raise InvalidInput("The request body nests JSON too deeply to be paper records.") from exc
    return [(item, None) for item in value]


def _single_or_lines(text: str) -> list[tuple[Any, str | None]]:
    try:
        return [(json.loads(text), None)]  # one object, possibly pretty-printed over several lines
    except (ValueError, RecursionError):
        pass
    items: list[tuple[Any, str | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((json.loads(line), None))
        except ValueError as exc:
            items.append((None, f"line {number} is not valid JSON ({exc})"))
        except RecursionError:
            items.append((None, f"line {number} nests JSON too deeply"))
    return items


def _lone_surrogate(record: dict) -> str | None:
    """Name the field holding a lone UTF-16 surrogate, or None.

    JSON may spell one ("\\ud800") and json.loads accepts it, but it is not Unicode text: UTF-8,
    SQLite and the JSON answer would all fail on it later, as a 500.
    """
    for key, value in record.items():
        try:
            json.dumps({key: value}, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"field {key!r:.60} holds {exc.object[exc.start:exc.end]!a}, a lone surrogate, "
                    "which is not valid Unicode text")
    return None


def _raw_id(record: dict) -> str | None:
    for key in ("id", "paper_id", "_id", "arxiv_id"):
        value = record.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            # Shown back to the client, so it must encode even when the record did not.
            return str(value)[:200].encode("utf-8", "backslashreplace").decode("utf-8")
    return None


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
