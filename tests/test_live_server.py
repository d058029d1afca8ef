"""`papersearch serve` as a real process on a free port, spoken to over real HTTP."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.live import live_server

pytestmark = pytest.mark.slow

KEY = "live-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`serve --sample` on an empty directory: builds the sample index, then serves it."""
    index_dir = tmp_path_factory.mktemp("live") / "index"
    with live_server(index_dir, "--sample", env={"PAPERSEARCH_API_KEY": KEY}) as live:
        yield live


def test_serve_sample_builds_the_index_and_prints_the_url(server):
    assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/")
    output = "".join(server.output)
    assert "Built the sample index" in output and "indexed 24" in output


def test_health_over_http(server):
    response = httpx.get(server.endpoint("/health"), timeout=60)
    assert response.status_code == 200
    assert response.json()["status"] == "ready" and response.json()["papers"] >= 24


def test_search_over_http(server):
    response = httpx.get(server.endpoint("/search"), params={"q": "lightweight OCR", "limit": 3},
                         headers={"Origin": "https://some-blog.example"}, timeout=60)
    assert response.status_code == 200
    titles = [hit["title"] for hit in response.json()["results"]]
    assert sum("PP-OCR" in t for t in titles) >= 2, titles
    assert response.headers["access-control-allow-origin"] == "*"  # the widget runs on other sites


def test_write_then_search_over_http(server):
    record = {"id": "live-1", "title": "Bioluminescent plankton light up coastal waters at night",
              "abstract": "Dinoflagellates emit blue light when the water is disturbed."}
    ndjson = json.dumps(record) + "\n"
    response = httpx.post(server.endpoint("/papers"), content=ndjson,
                          headers={**AUTH, "Content-Type": "application/x-ndjson"}, timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["indexed"] == 1
    hits = httpx.get(server.endpoint("/search"), params={"q": "glowing plankton", "limit": 1}, timeout=60).json()
    assert hits["results"][0]["paper_id"] == "live-1"
    denied = httpx.delete(server.endpoint("/papers/live-1"), timeout=60)
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
    assert httpx.delete(server.endpoint("/papers/live-1"), headers=AUTH, timeout=60).status_code == 200
    assert httpx.get(server.endpoint("/papers/live-1"), timeout=60).status_code == 404
    wrong = httpx.delete(server.endpoint("/papers/live-2"), headers={"Authorization": "Bearer guess-123"}, timeout=60)
    assert wrong.status_code == 401  # the key is checked before the id
    assert server.wait_for_output('"DELETE /papers/live-2 HTTP/1.1" 401')  # the access log has caught up
    assert KEY not in "".join(server.output) and "guess-123" not in "".join(server.output)  # keys never logged


def _batch(topic: str) -> list[dict]:
    abstracts = {"Glacier": "Mountain glaciers retreat as the climate warms; we measure the ice loss.",
                 "Volcano": "Volcanic eruptions send ash high into the stratosphere and cool the climate."}
    return [{"id": f"cycle-{i}", "title": f"{topic} study number {i}", "abstract": abstracts[topic]}
            for i in range(6)]


def test_concurrent_searches_during_writes_see_all_or_nothing(server):
    """Readers ask for the whole index while one write at a time re-topics six papers (new text,
    so new vectors): every answer holds every paper, and the six are all old or all new."""
    with httpx.Client(timeout=300) as client:
        assert client.post(server.endpoint("/papers"), json=_batch("Glacier"), headers=AUTH).status_code == 200
        total = client.get(server.endpoint("/health")).json()["papers"]
    stop = threading.Event()
    answers: list[tuple[int, int]] = []
    failures: list[str] = []

    def read() -> None:
        with httpx.Client(timeout=300) as client:
            while not stop.is_set():
                response = client.get(server.endpoint("/search"), params={"q": "glacier retreat", "limit": 100})
                if response.status_code != 200:
                    failures.append(response.text)
                    continue
                hits = [h for h in response.json()["results"] if h["paper_id"].startswith("cycle-")]
                answers.append((len(response.json()["results"]), sum(h["title"].startswith("Glacier") for h in hits)))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        with httpx.Client(timeout=300) as client:
            for topic in ("Volcano", "Glacier", "Volcano", "Glacier"):
                assert client.post(server.endpoint("/papers"), json=_batch(topic), headers=AUTH).status_code == 200
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=300)
    assert not failures, failures[:3]
    assert answers
    assert {count for count, _ in answers} == {total}, "an answer missed papers: a partial state"
    assert {glacier for _, glacier in answers} <= {0, 6}, "an answer mixed old and new records"
    with httpx.Client(timeout=300) as client:
        for i in range(6):
            assert client.delete(server.endpoint(f"/papers/cycle-{i}"), headers=AUTH).status_code == 200


def test_server_without_index_reports_not_ready(tmp_path):
    with live_server(tmp_path / "nothing-here") as live:
        assert live.wait_for_output("Not ready yet: No index in")
        response = httpx.get(live.endpoint("/health"), timeout=60)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "index_not_built"
        page = httpx.get(live.url, timeout=60)
        assert page.status_code == 200 and "PaperSearch" in page.text
