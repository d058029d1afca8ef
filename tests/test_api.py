"""Every endpoint through FastAPI's TestClient over real indexes: results, bounds, errors, writes."""

from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import DEFAULT_MODE, create_app
from indexer.store import IndexStore, WriteLock, layout
from models.config import Settings
from models.query import MODES, Filters

KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@contextmanager
def client_for(index_dir: Path, embedder, **settings):
    app = create_app(Settings(index_dir=index_dir, **settings), embedder=embedder)
    with TestClient(app) as client:  # `with` runs the lifespan: engine opened, model warm
        yield client


@pytest.fixture(scope="module")
def client(sample_index_dir, embedder):
    """Read-only client over the shared sample index."""
    with client_for(sample_index_dir, embedder) as c:
        yield c


@pytest.fixture
def writer(fresh_index_dir, embedder):
    """Client over a private copy of the sample index, with writes enabled."""
    with client_for(fresh_index_dir, embedder, api_key=KEY) as c:
        yield c


def assert_error(response, status: int, code: str) -> str:
    """The one error shape, exactly; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [hit["paper_id"] for hit in response.json()["results"]]


# --- search ---------------------------------------------------------------------------------------


def test_search_finds_the_ocr_papers_with_full_records(client):
    response = client.get("/search", params={"q": "lightweight OCR", "limit": 5})
    body = response.json()
    assert set(body) == {"query", "mode", "sort", "facets", "limit", "offset", "took_ms", "next_offset", "results"}
    assert body["query"] == "lightweight OCR" and body["mode"] == DEFAULT_MODE
    assert body["limit"] == 5 and body["offset"] == 0 and body["took_ms"] >= 0
    titles = [hit["title"] for hit in body["results"][:3]]
    assert sum("OCR" in title for title in titles) >= 2, titles
    first = body["results"][0]
    assert set(first) == {"paper_id", "title", "abstract", "authors", "year", "categories", "venue", "url", "doi",
                          "extra", "score", "rank", "snippet", "versions"}
    assert first["authors"] and isinstance(first["year"], int) and first["categories"]
    assert first["extra"]["has_code"] is True  # unknown input fields come back as extra metadata
    assert [hit["rank"] for hit in body["results"]] == [1, 2, 3, 4, 5]
    scores = [hit["score"] for hit in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_snippets_are_made_only_when_asked_for(client):
    with_them = client.get("/search", params={"q": "lightweight OCR", "limit": 3}).json()["results"]
    without = client.get("/search", params={"q": "lightweight OCR", "limit": 3, "snippets": "false"}).json()["results"]
    assert all("<mark>" in hit["snippet"] for hit in with_them[:2])
    assert [hit["snippet"] for hit in without] == [None, None, None]
    assert [hit["paper_id"] for hit in without] == [hit["paper_id"] for hit in with_them]


def test_search_returns_what_the_engine_returns(client, sample_engine):
    expected = sample_engine.search("protein structure prediction", limit=7)
    body = client.get("/search", params={"q": "protein structure prediction", "limit": 7}).json()
    assert [h["paper_id"] for h in body["results"]] == [h.paper.paper_id for h in expected]
    assert [h["score"] for h in body["results"]] == pytest.approx([h.score for h in expected], abs=1e-5)


def test_pages_are_stable_and_do_not_overlap(client):
    whole = ids(client.get("/search", params={"q": "deep learning model", "limit": 15}))
    pages = [client.get("/search", params={"q": "deep learning model", "limit": 5, "offset": o}) for o in (0, 5, 10)]
    assert sum((ids(p) for p in pages), []) == whole
    assert [p.json()["next_offset"] for p in pages] == [5, 10, 15]
    assert [h["rank"] for h in pages[1].json()["results"]] == [6, 7, 8, 9, 10]
    last = client.get("/search", params={"q": "deep learning model", "limit": 10, "offset": 20}).json()
    assert len(last["results"]) == 4 and last["next_offset"] is None  # 24 papers in the sample


def test_filters_restrict_results(client, sample_engine):
    body = client.get("/search", params={"q": "OCR", "limit": 50, "category": "cs.CV", "year_from": 2022}).json()
    assert body["results"]
    for hit in body["results"]:
        assert hit["year"] >= 2022 and any(c.lower().startswith("cs.cv") for c in hit["categories"])
    expected = sample_engine.search("OCR", limit=50, filters=Filters(year_from=2022, category="cs.CV"))
    assert [h["paper_id"] for h in body["results"]] == [h.paper.paper_id for h in expected]
    authored = client.get("/search", params={"q": "OCR", "author": "chenxia"}).json()["results"]
    assert authored and all(any("chenxia" in a.lower() for a in h["authors"]) for h in authored)


def test_mode_is_checked_against_the_engine_modes(client):
    for mode in MODES:
        assert client.get("/search", params={"q": "OCR", "mode": mode}).json()["mode"] == mode
    message = assert_error(client.get("/search", params={"q": "OCR", "mode": "telepathy"}), 422, "invalid_request")
    assert "'mode'" in message and all(mode in message for mode in MODES)


@pytest.mark.parametrize(("params", "named"), [
    ({"q": "x", "limit": 0}, "'limit'"),
    ({"q": "x", "limit": 101}, "'limit'"),
    ({"q": "x", "limit": "ten"}, "'limit'"),
    ({"q": "x", "offset": -1}, "'offset'"),
    ({"q": "x", "offset": 10_001}, "'offset'"),
    ({"q": "x" * 4097}, "'q'"),
    ({}, "'q'"),
    ({"q": "x", "year_from": 99999}, "'year_from'"),
    ({"q": "x", "year_from": 2023, "year_to": 2020}, "year_from"),
])
def test_search_bounds_are_422_naming_the_parameter(client, params, named):
    assert named in assert_error(client.get("/search", params=params), 422, "invalid_request")


def test_blank_query_is_400_with_a_hint(client):
    assert "empty" in assert_error(client.get("/search", params={"q": "   "}), 400, "invalid_query")


# --- papers and related ---------------------------------------------------------------------------


def test_get_paper_returns_the_stored_record(client, sample_index_dir):
    store = IndexStore.open(sample_index_dir)
    stored = store.get_papers(["seed-03"])["seed-03"]
    store.close()
    assert client.get("/papers/seed-03").json() == stored.to_dict()
    assert "'nope'" in assert_error(client.get("/papers/nope"), 404, "paper_not_found")


def test_related_never_returns_the_paper_itself(client, sample_engine):
    body = client.get("/papers/seed-03/related", params={"limit": 23}).json()
    assert body["paper_id"] == "seed-03"
    related = [h["paper_id"] for h in body["results"]]
    assert "seed-03" not in related and len(related) == 23
    assert related[:5] == [h.paper.paper_id for h in sample_engine.related("seed-03", limit=5)]
    assert "OCR" in body["results"][0]["title"]
    assert_error(client.get("/papers/nope/related"), 404, "paper_not_found")
    assert_error(client.get("/papers/seed-03/related", params={"limit": 1000}), 422, "invalid_request")


def test_related_to_pasted_text(client):
    text = "We predict the three-dimensional structure of proteins from their amino acid sequence."
    body = client.post("/related", json={"text": text, "limit": 3}).json()
    assert body["paper_id"] is None and len(body["results"]) == 3
    assert any("Fold" in h["title"] for h in body["results"]), [h["title"] for h in body["results"]]


@pytest.mark.parametrize(("payload", "status", "code", "named"), [
    ({"text": ""}, 422, "invalid_request", "'text'"),
    ({"limit": 3}, 422, "invalid_request", "'text'"),
    ({"text": "x", "limit": 101}, 422, "invalid_request", "'limit'"),
    ({"text": "x", "offset": 10_001}, 422, "invalid_request", "'offset'"),
    ({"text": "x" * 4097}, 422, "invalid_request", "'text'"),
    ({"text": "x", "limt": 3}, 422, "invalid_request", "'limt'"),
    ({"text": "   "}, 400, "invalid_query", "empty"),
    ([1, 2], 422, "invalid_request", "request body"),
])
def test_related_text_bounds(client, payload, status, code, named):
    assert named in assert_error(client.post("/related", json=payload), status, code)


@pytest.mark.parametrize("content", [b"{not json", b"[" * 100_000])
def test_unparseable_json_bodies_are_400(client, content):
    assert_error(client.post("/related", content=content, headers={"Content-Type": "application/json"}),
                 400, "invalid_json")


def test_recommend_excludes_inputs_and_reports_unknown_ids(client, sample_engine):
    body = client.post("/recommend", json={"positive": ["seed-03"], "negative": ["seed-01"], "limit": 5}).json()
    got = [h["paper_id"] for h in body["results"]]
    assert body["positive"] == ["seed-03"] and body["negative"] == ["seed-01"]
    assert got == [h.paper.paper_id for h in sample_engine.recommend(["seed-03"], ["seed-01"], limit=5)]
    assert not {"seed-03", "seed-01"} & set(got)
    message = assert_error(client.post("/recommend", json={"positive": ["seed-03", "ghost-1"],
                                                           "negative": ["ghost-2"]}), 404, "paper_not_found")
    assert "ghost-1" in message and "ghost-2" in message
    assert "'positive'" in assert_error(client.post("/recommend", json={"positive": []}), 422, "invalid_request")


# --- service endpoints ------------------------------------------------------------------------------


def test_health_and_stats(client):
    assert client.get("/health").json() == {"status": "ready", "papers": 24, "model": "all-MiniLM-L6-v2",
                                            "generation": 1}
    stats = client.get("/stats").json()
    assert stats["papers"] == 24 and stats["dimension"] == 384 and stats["index_type"] == "flat"
    assert stats["modes"] == list(MODES) and stats["default_mode"] == DEFAULT_MODE in MODES
    assert stats["writes_enabled"] is False and stats["max_limit"] == 100 and stats["size_bytes"] > 0


def test_server_without_an_index_starts_and_reports_not_ready(tmp_path, embedder):
    with client_for(tmp_path / "empty", embedder) as c:
        assert "papersearch index" in assert_error(c.get("/health"), 503, "index_not_built")
        assert c.get("/health").headers["retry-after"]
        assert_error(c.get("/search", params={"q": "OCR"}), 503, "index_not_built")
        assert_error(c.get("/stats"), 503, "index_not_built")
        assert c.get("/").status_code == 200  # the page itself still loads


def test_unreadable_index_is_503_not_a_crash(tmp_path, embedder):
    broken = tmp_path / "broken"
    broken.mkdir()
    layout.db_file(broken).write_bytes(b"this is not a database" * 100)
    with client_for(broken, embedder) as c:
        assert_error(c.get("/health"), 503, "index_corrupt")
        assert_error(c.get("/papers/seed-01"), 503, "index_corrupt")


def test_openapi_documents_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert {"/search", "/papers/{paper_id}", "/papers/{paper_id}/related", "/related", "/recommend", "/papers",
            "/health", "/stats"} <= set(spec["paths"])
    limit = next(p for p in spec["paths"]["/search"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    # Swagger UI comes from this server, not a CDN: the page works on a machine without internet.
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(url.startswith("/docs-assets/") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url



def test_openapi_states_the_body_bounds_the_server_enforces(sample_index_dir, embedder):
    """Found by schemathesis: the bodies' limit/offset/text bounds were checked but not in the schema."""
    with client_for(sample_index_dir, embedder, max_limit=7, max_query_chars=50) as c:
        schemas = c.get("/openapi.json").json()["components"]["schemas"]
        for name in ("RelatedRequest", "RecommendRequest"):
            fields = schemas[name]["properties"]
            assert (fields["limit"]["minimum"], fields["limit"]["maximum"]) == (1, 7), name
            assert (fields["offset"]["minimum"], fields["offset"]["maximum"]) == (0, 10_000), name
            for year in ("year_from", "year_to"):
                bounded = [option for option in fields[year]["anyOf"] if option.get("type") == "integer"]
                assert [(o.get("minimum"), o.get("maximum")) for o in bounded] == [(1000, 2999)], fields[year]
        assert schemas["RelatedRequest"]["properties"]["text"]["maxLength"] == 50
        assert not _keys_named(c.get("/openapi.json").json(), {"ge", "le", "gt", "lt"}), "pydantic-only keywords"
        assert_error(c.post("/related", json={"text": "x", "year_to": 0}), 422, "invalid_request")
        assert "'limit'" in assert_error(c.post("/related", json={"text": "x", "limit": 8}), 422, "invalid_request")
        assert c.post("/related", json={"text": "x", "limit": 7}).status_code == 200
        assert "'text'" in assert_error(c.post("/related", json={"text": "x" * 51}), 422, "invalid_request")
        assert "'limit'" in assert_error(c.post("/recommend", json={"positive": ["seed-01"], "limit": 8}),
                                         422, "invalid_request")



def _keys_named(node, names: set[str]) -> list[str]:
    if isinstance(node, dict):
        return [k for k in node if k in names] + [x for v in node.values() for x in _keys_named(v, names)]
    if isinstance(node, list):
        return [x for v in node for x in _keys_named(v, names)]
    return []


@pytest.mark.parametrize("value", [True, False, "3", "1e1", None])
def test_body_integers_are_not_coerced_from_booleans_or_strings(client, value):
    """Found by schemathesis: {"offset": false} was taken as 0 although the schema says integer."""
    for field in ("limit", "offset", "year_from"):
        if value is None and field == "year_from":
            continue  # null means "no filter" for the years
        payload = {"text": "protein folding", field: value}
        assert f"'{field}'" in assert_error(client.post("/related", json=payload), 422, "invalid_request")
        payload = {"positive": ["seed-01"], field: value}
        assert f"'{field}'" in assert_error(client.post("/recommend", json=payload), 422, "invalid_request")
    assert client.post("/related", json={"text": "protein folding", "limit": 3.0}).json()["limit"] == 3

@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/no/such/route", 404, "not_found"),
    ("PUT", "/search", 405, "method_not_allowed"),
    ("DELETE", "/search", 405, "method_not_allowed"),
])
def test_http_errors_use_the_one_shape(client, method, path, status, code):
    assert_error(client.request(method, path), status, code)



@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("OPTIONS", "/papers/seed-01", {"GET", "DELETE"}),
    ("PUT", "/papers/10.48550/arXiv.2206.03001", {"GET", "DELETE"}),
    ("OPTIONS", "/papers/seed-01/related", {"GET"}),
    ("PUT", "/search", {"GET"}),
    ("PUT", "/openapi.json", {"GET", "HEAD"}),
    ("GET", "/papers", {"POST"}),
    ("GET", "/related", {"POST"}),
])
def test_405_allow_lists_every_method_of_the_resource(client, method, path, allowed):
    """Found by schemathesis: `Allow` named GET only for /papers/{paper_id}, which DELETE also serves."""
    response = client.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed

def test_page_and_widget_are_served(client):
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in page.text and "http" not in page.text.split("<body>")[0]
    widget = client.get("/widget.js")
    assert widget.headers["content-type"].startswith("text/javascript") and "attachShadow" in widget.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_cors_follows_settings(sample_index_dir, embedder):
    with client_for(sample_index_dir, embedder) as c:  # default: any origin
        response = c.get("/search", params={"q": "OCR", "limit": 1}, headers={"Origin": "https://blog.example"})
        assert response.headers["access-control-allow-origin"] == "*"
    with client_for(sample_index_dir, embedder, cors_origins=("https://ok.example",)) as c:
        preflight = {"Origin": "https://ok.example", "Access-Control-Request-Method": "GET"}
        assert c.options("/search", headers=preflight).headers["access-control-allow-origin"] == "https://ok.example"
        other = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# --- writes ---------------------------------------------------------------------------------------

NEW_PAPERS = [
    {"id": "new-1", "title": "Coral reef bleaching under marine heatwaves",
     "abstract": "We survey coral bleaching on reefs during marine heatwaves and ocean warming.",
     "authors": ["Reef Person"], "year": 2024, "categories": ["q-bio.PE"], "source": "test"},
    {"id": "new-2", "title": "Symbiotic algae loss in warming coral reefs",
     "abstract": "Coral reefs lose their symbiotic algae when sea temperatures rise.", "year": 2024},
]


def test_writes_are_refused_without_a_configured_key(fresh_index_dir, embedder):
    with client_for(fresh_index_dir, embedder) as c:
        message = assert_error(c.post("/papers", json=NEW_PAPERS, headers=AUTH), 403, "writes_disabled")
        assert "PAPERSEARCH_API_KEY" in message
        assert_error(c.delete("/papers/seed-01", headers=AUTH), 403, "writes_disabled")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"},
                                     {"Authorization": f"Bearer {KEY}x"}, {"Authorization": KEY}])
def test_writes_need_the_right_bearer_key(writer, headers):
    response = writer.post("/papers", json=NEW_PAPERS, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_error(writer.delete("/papers/seed-01", headers=headers), 401, "unauthorized")
    assert writer.get("/health").json()["papers"] == 24


def test_upsert_then_search_sees_new_papers_at_once(writer):
    before = writer.get("/health").json()
    response = writer.post("/papers", json=NEW_PAPERS, headers=AUTH)
    body = response.json()
    assert response.status_code == 200, body
    assert body == {"indexed": 2, "unchanged": 0, "embedded": 2, "rejected": [], "duplicates": [],
                    "generation": before["generation"] + 1, "papers": 26}
    assert ids(writer.get("/search", params={"q": "coral reef bleaching", "limit": 2})) == ["new-1", "new-2"]
    record = writer.get("/papers/new-1").json()
    assert record["extra"] == {"source": "test"} and record["categories"] == ["q-bio.PE"]
    again = writer.post("/papers", json=NEW_PAPERS, headers=AUTH).json()
    assert (again["indexed"], again["unchanged"], again["embedded"]) == (0, 2, 0)


def test_changed_text_is_re_embedded_and_searchable(writer):
    writer.post("/papers", json=NEW_PAPERS, headers=AUTH)
    changed = {**NEW_PAPERS[0], "title": "Volcanic ash in glacier ice cores",
               "abstract": "Ice cores drilled from glaciers record volcanic ash layers."}
    body = writer.post("/papers", json=[changed], headers=AUTH).json()
    assert (body["indexed"], body["embedded"], body["papers"]) == (1, 1, 26)
    assert ids(writer.get("/search", params={"q": "volcanic ash glacier ice", "limit": 1})) == ["new-1"]


def test_bad_records_are_reported_and_good_ones_applied(writer):
    records = [NEW_PAPERS[0], {"id": "no-title"}, "not an object", {"title": "no id"},
               {"id": "bad-year", "title": "T", "year": "soon"}, NEW_PAPERS[1], {**NEW_PAPERS[1], "year": 2025}]
    body = writer.post("/papers", json=records, headers=AUTH).json()
    assert body["indexed"] == 2 and body["papers"] == 26 and body["duplicates"] == ["new-2"]
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4]
    assert rejected[1]["paper_id"] == "no-title" and "title" in rejected[1]["message"]
    assert rejected[2]["paper_id"] is None and "JSON object" in rejected[2]["message"]
    assert "id" in rejected[3]["message"] and "year" in rejected[4]["message"]
    assert writer.get("/papers/new-2").json()["year"] == 2025  # the last record of an id wins


def _post_ascii_json(client, path: str, payload, headers=None):
    # json.dumps escapes a lone surrogate as "\\ud800"; the test client's own encoder would refuse it.
    return client.post(path, content=json.dumps(payload).encode(),
                        headers={"Content-Type": "application/json", **(headers or {})})


def test_lone_surrogates_in_records_are_rejected_not_a_500(writer):
    """JSON can spell "\\ud800" and Python decodes it, but it is not Unicode text (was a 500)."""
    records = [{"id": "sur-\ud800", "title": "T"}, {"id": "sur-2", "title": "lone \udc00 surrogate"},
               {"id": "sur-3", "title": "T", "note": {"deep": ["\ud83d"]}}, {"\ud800": 1, "id": "sur-4", "title": "T"},
               NEW_PAPERS[0]]
    response = _post_ascii_json(writer, "/papers", records, AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["indexed"] == 1 and [r["index"] for r in body["rejected"]] == [0, 1, 2, 3]
    assert all("lone surrogate" in r["message"] for r in body["rejected"])
    assert body["rejected"][0]["paper_id"] == "sur-\\ud800" and "'note'" in body["rejected"][2]["message"]
    assert_error(_post_ascii_json(writer, "/papers", records[:1], AUTH), 422, "invalid_records")
    for payload in ({"positive": ["\ud800"]}, {"positive": ["seed-01"], "negative": ["x\udfff"]},
                    {"positive": ["seed-01"], "author": "\ud800"}):
        assert "lone surrogate" in assert_error(_post_ascii_json(writer, "/recommend", payload), 422, "invalid_request")
    assert_error(_post_ascii_json(writer, "/related", {"text": "a \ud800 b"}), 422, "invalid_request")
    assert writer.get("/health").json()["papers"] == 25


def test_non_finite_numbers_in_records_are_stored_as_null(writer, tmp_path):
    """NaN/Infinity in extra fields were kept from POST /papers (files nulled them) and then broke
    the JSON answer: the one decoder now nulls them on every way in."""
    record = {"id": "nan-1", "title": "Coral reef bleaching", "year": float("nan"),
              "score": float("nan"), "bounds": [float("inf"), -float("inf"), 2.5], "deep": {"x": float("inf")}}
    body = json.dumps([record]).encode()  # json.dumps writes NaN and Infinity, as some clients do
    assert b"NaN" in body and b"Infinity" in body
    response = writer.post("/papers", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["indexed"] == 1, response.text
    answer = writer.get("/papers/nan-1")
    assert answer.status_code == 200
    stored = answer.json()
    assert stored["year"] is None
    assert stored["extra"] == {"score": None, "bounds": [None, None, 2.5], "deep": {"x": None}}
    hits = writer.get("/search", params={"q": "coral reef bleaching", "limit": 1})
    assert hits.status_code == 200 and ids(hits) == ["nan-1"]

    from indexer.ingest import read_papers  # the same record from a file decodes the same

    path = tmp_path / "nan.jsonl"
    path.write_bytes(body[1:-1] + b"\n")
    (item,) = read_papers(path)
    assert item.paper.extra == stored["extra"] and item.paper.year is None


def test_ndjson_and_single_object_bodies(writer):
    ndjson = "\n".join(json.dumps(r) for r in NEW_PAPERS) + "\n{broken\n"
    body = writer.post("/papers", content=ndjson.encode(),
                       headers={**AUTH, "Content-Type": "application/x-ndjson"}).json()
    assert body["indexed"] == 2 and [r["index"] for r in body["rejected"]] == [2]
    assert "line 3" in body["rejected"][0]["message"]
    single = writer.post("/papers", json={"id": "solo", "title": "A single record", "abstract": "Alone."},
                         headers=AUTH).json()
    assert single["indexed"] == 1 and single["papers"] == 27



def test_upload_schema_describes_the_records_the_server_takes(writer):
    """The POST /papers schema was "a list of any objects": schemathesis never sent a usable record,
    so its write fuzzing stopped at 422s. Now schema-valid records are written, and bodies the
    schema refuses are refused."""
    import jsonschema_rs  # comes with schemathesis (the test extra)

    content = writer.get("/openapi.json").json()["paths"]["/papers"]["post"]["requestBody"]["content"]
    valid = jsonschema_rs.validator_for(content["application/json"]["schema"]).is_valid
    records = [NEW_PAPERS, NEW_PAPERS[0], [{"paper_id": 7, "title": "Seven", "authors": "A. One and B. Two",
                                            "year": "June 2020", "categories": "cs.CL cs.IR"}]]
    for body in records:
        assert valid(body), body
        response = writer.post("/papers", json=body, headers=AUTH)
        assert response.status_code == 200 and not response.json()["rejected"], response.text
    assert writer.get("/papers/7").json()["authors"] == ["A. One", "B. Two"]
    for body in ([], [{}], [{"id": "x"}], [{"title": "no id"}], [{"id": 1.5, "title": "T"}], "text", 3):
        assert not valid(body), body
        assert writer.post("/papers", json=body, headers=AUTH).status_code in (400, 422), body
    assert content["application/x-ndjson"]["schema"]["type"] == "string"

@pytest.mark.parametrize(("content", "status", "code"), [
    (b"", 400, "invalid_input"),
    (b"[]", 400, "invalid_input"),
    (b"[{broken", 400, "invalid_input"),
    (b"\xff\xfe[]", 400, "invalid_input"),
    (b'[{"title": "no id"}]', 422, "invalid_records"),
    (b"[" * 100_000, 400, "invalid_input"),
    (b"{" * 100_000, 422, "invalid_records"),
])
def test_unusable_upload_bodies(writer, content, status, code):
    assert_error(writer.post("/papers", content=content, headers={**AUTH, "Content-Type": "application/json"}),
                 status, code)
    assert writer.get("/health").json()["papers"] == 24


def test_delete_removes_the_paper_everywhere(writer):
    response = writer.delete("/papers/seed-03", headers=AUTH)
    assert response.json() == {"deleted": "seed-03", "generation": 2, "papers": 23}
    assert_error(writer.get("/papers/seed-03"), 404, "paper_not_found")
    assert "seed-03" not in ids(writer.get("/search", params={"q": "PP-OCRv3 lightweight OCR", "limit": 23}))
    assert_error(writer.delete("/papers/seed-03", headers=AUTH), 404, "paper_not_found")


def test_ids_with_slashes_work_on_every_route(writer):
    doi = "10.48550/arXiv.2206.03001"
    writer.post("/papers", json=[{"id": doi, "title": "Ultra lightweight OCR with slashes in the id"}], headers=AUTH)
    assert writer.get(f"/papers/{doi}").json()["paper_id"] == doi
    assert writer.get(f"/papers/{doi}/related", params={"limit": 3}).json()["paper_id"] == doi
    assert writer.delete(f"/papers/{doi}", headers=AUTH).json()["deleted"] == doi


def test_first_upload_creates_the_index(tmp_path, embedder):
    with client_for(tmp_path / "new-index", embedder, api_key=KEY) as c:
        assert_error(c.get("/health"), 503, "index_not_built")
        assert c.post("/papers", json=NEW_PAPERS, headers=AUTH).json()["papers"] == 2
        assert c.get("/health").json()["papers"] == 2
        assert ids(c.get("/search", params={"q": "coral", "limit": 1})) == ["new-1"]


def test_write_while_another_process_writes_is_503(writer, fresh_index_dir):
    with WriteLock(fresh_index_dir):  # what `papersearch index` holds while it runs
        response = writer.post("/papers", json=NEW_PAPERS, headers=AUTH)
        assert "writing" in assert_error(response, 503, "index_busy")
        assert response.headers["retry-after"]
        assert writer.get("/search", params={"q": "OCR"}).status_code == 200
    assert writer.post("/papers", json=NEW_PAPERS, headers=AUTH).status_code == 200


def test_writes_by_another_process_are_picked_up(writer, fresh_index_dir, embedder, tmp_path, monkeypatch):
    import api.service
    from indexer.build import index_file

    monkeypatch.setattr(api.service, "EXTERNAL_WRITE_CHECK_SECONDS", 0.0)
    source = tmp_path / "more.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in NEW_PAPERS))
    index_file(Settings(index_dir=fresh_index_dir), source, embedder=embedder)  # as `papersearch index` would
    assert ids(writer.get("/search", params={"q": "coral reef bleaching", "limit": 2})) == ["new-1", "new-2"]
    assert writer.get("/health").json()["papers"] == 26


class _GatedEmbedder:
    """The real model, but document encoding waits until the test says go: it holds a write
    open in its slow part so the test can look at searches meanwhile."""

    def __init__(self, embedder):
        self._embedder = embedder
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode(self, texts, role, batch_size=None):
        if role == "document":
            self.entered.set()
            assert self.release.wait(timeout=120), "test never released the write"
        return self._embedder.encode(texts, role, batch_size)


def test_searches_are_answered_during_a_write_and_see_all_or_nothing(fresh_index_dir, embedder):
    gated = _GatedEmbedder(embedder)
    with client_for(fresh_index_dir, gated, api_key=KEY) as c:
        results = {}
        thread = threading.Thread(target=lambda: results.update(post=c.post("/papers", json=NEW_PAPERS,
                                                                             headers=AUTH)))
        thread.start()
        try:
            assert gated.entered.wait(timeout=120)
            # The write is embedding: searches, records and health keep answering, from the old state.
            during = c.get("/search", params={"q": "coral reef bleaching", "limit": 5})
            assert not {"new-1", "new-2"} & set(ids(during))
            assert c.get("/health").json()["papers"] == 24
        finally:
            gated.release.set()
            thread.join(timeout=120)
        assert results["post"].status_code == 200
        assert ids(c.get("/search", params={"q": "coral reef bleaching", "limit": 2})) == ["new-1", "new-2"]


def test_body_size_limit_is_413_with_or_without_a_length(fresh_index_dir, embedder):
    with client_for(fresh_index_dir, embedder, api_key=KEY, max_body_bytes=2000) as c:
        big = json.dumps([{**NEW_PAPERS[0], "abstract": "x" * 3000}]).encode()
        message = assert_error(c.post("/papers", content=big, headers=AUTH), 413, "body_too_large")
        assert "2000" in message
        streamed = c.post("/papers", content=iter([big[:1500], big[1500:]]), headers=AUTH)  # chunked, no length
        assert "content-length" not in streamed.request.headers
        assert_error(streamed, 413, "body_too_large")
        assert_error(c.post("/related", content=big, headers={"Content-Type": "application/json"}),
                     413, "body_too_large")
        small = c.post("/papers", json=NEW_PAPERS[:1], headers=AUTH)
        assert small.status_code == 200 and small.json()["papers"] == 25


def test_unexpected_failures_are_500_in_the_one_shape_without_details(sample_index_dir, embedder):
    app = create_app(Settings(index_dir=sample_index_dir), embedder=embedder)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as c:
        message = assert_error(c.get("/boom"), 500, "internal_error")
        assert "secret" not in message


def test_serve_refuses_a_busy_port_with_a_clear_message(tmp_path, capsys):
    import socket

    from api.cli import main
    from api.server import public_url

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", "--index", str(tmp_path / "index"), "--port", str(port)]) == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert public_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert public_url("::1", 8000) == "http://[::1]:8000/"


def test_a_write_waits_behind_another_write_of_this_server(fresh_index_dir, embedder, monkeypatch):

    gated = _GatedEmbedder(embedder)
    second = [dict(r, id=f"queued-{r['id']}") for r in NEW_PAPERS]
    with client_for(fresh_index_dir, gated, api_key=KEY) as c:
        results = {}
        first = threading.Thread(target=lambda: results.update(first=c.post("/papers", json=NEW_PAPERS,
                                                                             headers=AUTH)))
        first.start()
        assert gated.entered.wait(timeout=120)
        # While the first write holds the index, a second one queues instead of failing...
        queued = threading.Thread(target=lambda: results.update(second=c.post("/papers", json=second,
                                                                               headers=AUTH)))
        queued.start()
        queued.join(timeout=1.0)
        assert "second" not in results  # still waiting: a 503 would have come back at once
        # ...but only a few wait (each holds a thread searches need)...
        service = c.app.state.service
        service.settings = replace(service.settings, write_queue_length=1)
        full = c.post("/papers", json=second, headers=AUTH)
        assert "already waiting" in assert_error(full, 503, "index_busy")
        service.settings = replace(service.settings, write_queue_length=4)
        # ...and only for a bounded time.
        service.settings = replace(service.settings, write_queue_seconds=0.05)
        busy = c.post("/papers", json=second, headers=AUTH)
        assert "retry" in assert_error(busy, 503, "index_busy") and busy.headers["retry-after"]
        gated.release.set()
        first.join(timeout=120)
        queued.join(timeout=120)
        assert results["first"].status_code == 200 and results["second"].status_code == 200
        assert results["second"].json()["generation"] > results["first"].json()["generation"]
        assert c.get("/health").json()["papers"] == 28
