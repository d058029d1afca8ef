"""`papersearch mcp` end to end: the MCP SDK's own client starts the server over stdio (and over
streamable HTTP) against a real index of the 24-paper sample, lists the tools, calls each one, reads
a paper resource, and gets tool errors, not a dead server, for bad arguments and unknown ids."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import anyio
import pytest

mcp = pytest.importorskip("mcp")
from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

from tests.conftest import ROOT  # noqa: E402

TOOLS = {"search_papers", "get_paper", "related_papers", "recommend_papers"}
RESULT_FIELDS = {"id", "title", "authors", "year", "categories", "snippet", "score", "url", "doi"}
ENV = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def _server(index_dir) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "api.cli", "mcp", "--index", str(index_dir), "-q"],
                                 env=ENV, cwd=str(ROOT))


def _payload(outcome) -> dict:
    assert not outcome.is_error, outcome.content[0].text
    return json.loads(outcome.content[0].text)


def _error(outcome) -> str:
    assert outcome.is_error
    return outcome.content[0].text


def test_stdio_server_lists_and_answers_every_tool(sample_index_dir):
    async def session():
        async with Client(_server(sample_index_dir), read_timeout_seconds=120) as client:
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(listed) == TOOLS
            for tool in listed.values():  # the corpus is stated in every description
                assert "24 scientific papers" in tool.description and "cs.CV" in tool.description
            limit = listed["search_papers"].input_schema["properties"]["limit"]
            assert limit["maximum"] == 25

            first = _payload(await client.call_tool("search_papers", {"query": "lightweight OCR", "limit": 3}))
            assert len(first["results"]) == 3 and RESULT_FIELDS <= set(first["results"][0])
            assert "OCR" in first["results"][0]["title"] and first["results"][0]["snippet"]
            assert "<mark>" not in first["results"][0]["snippet"]
            second = _payload(await client.call_tool("search_papers", {"query": "lightweight OCR", "limit": 3,
                                                                        "cursor": first["next_cursor"]}))
            assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}

            paper = _payload(await client.call_tool("get_paper", {"paper_id": "seed-03"}))
            assert paper["id"] == "seed-03" and paper["title"].startswith("PP-OCRv3") and paper["abstract"]

            by_id = _payload(await client.call_tool("related_papers", {"paper_id": "seed-03", "limit": 5}))
            assert "seed-03" not in {r["id"] for r in by_id["results"]} and len(by_id["results"]) == 5
            by_text = _payload(await client.call_tool("related_papers", {
                "text": "A compact optical character recognition system for scanned documents", "limit": 3}))
            assert RESULT_FIELDS <= set(by_text["results"][0])

            liked = _payload(await client.call_tool("recommend_papers", {"positive": ["seed-03", "seed-17"],
                                                                          "negative": ["seed-01"], "limit": 4}))
            assert not {"seed-03", "seed-17", "seed-01"} & {r["id"] for r in liked["results"]}

            resource = await client.read_resource("paper://seed-03")
            assert json.loads(resource.contents[0].text)["id"] == "seed-03"

            # Errors are tool errors with a clear message; the server keeps answering.
            assert "no-such-paper" in _error(await client.call_tool("get_paper", {"paper_id": "no-such-paper"}))
            assert "no-such-paper" in _error(await client.call_tool("recommend_papers",
                                                                     {"positive": ["no-such-paper"]}))
            assert "less than or equal to 25" in _error(await client.call_tool("search_papers",
                                                                                {"query": "ocr", "limit": 500}))
            assert "mode" in _error(await client.call_tool("search_papers", {"query": "ocr", "mode": "fuzzy"}))
            assert "query" in _error(await client.call_tool("search_papers", {"query": ""}))
            assert "not both" in _error(await client.call_tool("related_papers", {}))
            assert "cursor" in _error(await client.call_tool("search_papers", {"query": "ocr", "cursor": "x1"}))
            assert "year_from" in _error(await client.call_tool("search_papers", {"query": "ocr", "year_from": 2025,
                                                                                   "year_to": 2020}))
            assert _payload(await client.call_tool("search_papers", {"query": "ocr", "limit": 1}))["results"]

    anyio.run(session)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_streamable_http_on_localhost(sample_index_dir):
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "api.cli", "mcp", "--index", str(sample_index_dir), "-q",
                                "--http", str(port)], env={**os.environ, **ENV}, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.2)

        async def session():
            async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=60) as client:
                assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
                assert _payload(await client.call_tool("get_paper", {"paper_id": "seed-01"}))["id"] == "seed-01"

        anyio.run(session)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_missing_index_is_one_line_and_exit_1(tmp_path, capsys):
    from api.cli import main

    assert main(["mcp", "--index", str(tmp_path / "none")]) == 1
    error = capsys.readouterr().err
    assert "No index in" in error and "Traceback" not in error
