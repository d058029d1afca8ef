"""Turn a POST /papers body (a JSON list, one JSON object, or NDJSON) into Papers and rejections.

This module only frames the body; each record goes through the one record decoder
(indexer.records.to_paper) that `papersearch index` uses, so a file that indexes from the command
line also uploads over HTTP, with the same checks and the same messages.
"""

from __future__ import annotations

import json
from typing import Any

from api.schemas import RecordError
from indexer.records import raw_id, to_paper
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
        if problem is None:
            try:
                papers.append((index, to_paper(record)))
                continue
            except InvalidInput as exc:
                problem = str(exc)
        rejected.append(RecordError(index=index, paper_id=raw_id(record), message=f"record {index}: {problem}"))
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
