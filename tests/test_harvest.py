"""`papersearch harvest` against a local OAI-PMH endpoint (http.server on 127.0.0.1) serving the
recorded responses in ../shared/samples: resumption tokens, a 503 with Retry-After, a deleted
record, badResumptionToken, an endpoint answering HTML, an interrupted harvest, and a second
harvest that asks only for what is new."""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from api.cli import main
from indexer.harvest import HarvestError, HarvestOptions, harvest, source_key
from indexer.store import IndexStore
from models.config import Settings
from tests.conftest import shared_sample

FAST = HarvestOptions(retries=2, backoff_seconds=0.05, max_wait_seconds=5)


def sample(name: str) -> bytes:
    return shared_sample(name).read_bytes()


def _last_page() -> bytes:
    """Page 2 of the arXivRaw list: the recorded GetRecord's record, and a deleted record for
    0704.0471 of page 1 (no recorded response has one), then the empty token that ends a list."""
    getrecord = sample("oai-arxiv-getrecord-arXivRaw.xml").decode()
    record = re.search(r"<record>.*</record>", getrecord, re.S).group()
    deleted = ("<record><header status=\"deleted\"><identifier>oai:arXiv.org:0704.0471</identifier>"
               "<datestamp>2019-02-01</datestamp></header></record>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
            '<responseDate>2019-03-05T00:00:00Z</responseDate><request verb="ListRecords">http://x/oai2</request>'
            f"<ListRecords>{record}{deleted}<resumptionToken cursor=\"6\" completeListSize=\"8\"/></ListRecords>"
            "</OAI-PMH>").encode()


class Endpoint:
    """A scripted OAI-PMH server: `answer(query)` returns (status, headers, body); requests are logged."""

    def __init__(self, answer):
        self.requests: list[dict[str, str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                endpoint.requests.append(query)
                status, headers, body = answer(query, len(endpoint.requests))
                self.send_response(status)
                for name, value in {"Content-Type": "text/xml; charset=utf-8", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/oai2"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def arxiv_raw_list(query, count, busy_first=True):
    """The arXivRaw list: page 1 (token 726959|1001) after one 503, then page 2."""
    if busy_first and count == 1:
        return 503, {"Retry-After": "1"}, b"busy"
    if query.get("resumptionToken") == "726959|1001":
        return 200, {}, _last_page()
    if query.get("resumptionToken"):
        return 200, {}, sample("oai-arxiv-error-badResumptionToken.xml")
    if query.get("from", "") >= "2019":  # nothing changed since: the recorded error, with its code
        answer = sample("oai-arxiv-error-badResumptionToken.xml").decode()
        return 200, {}, answer.replace("badResumptionToken", "noRecordsMatch").encode()
    return 200, {}, sample("oai-arxiv-listrecords-arXivRaw-resumption.xml")


def test_harvest_follows_tokens_waits_out_503_and_deletes(fresh_index_dir, embedder):
    settings = Settings(index_dir=fresh_index_dir)
    with Endpoint(arxiv_raw_list) as endpoint:
        started = time.monotonic()
        report = harvest(settings, endpoint.url, prefix="arXivRaw", options=FAST, embedder=embedder)
        waited = time.monotonic() - started
        # The 503 said "Retry-After: 1": that second is waited, not the 0.05 s backoff.
        assert waited >= 1.0 and report.waits == 1
        assert [q.get("resumptionToken") for q in endpoint.requests] == [None, None, "726959|1001"]
        assert endpoint.requests[0] == {"verb": "ListRecords", "metadataPrefix": "arXivRaw"}
        assert report.pages == 2 and report.complete
        # 6 records on page 1, 1 on page 2; 0704.0471 was then deleted.
        assert report.index.indexed == 7 and report.index.deleted == 1
        assert report.datestamp == "2019-02-01"

        store = IndexStore.open(settings.index_dir)
        try:
            papers = store.get_papers(["0704.0471", "1810.09584"])
            assert set(papers) == {"1810.09584"}
            assert papers["1810.09584"].title == "Martingale theory for housekeeping heat"
            assert store.harvest_state(source_key(endpoint.url, "arXivRaw", None)) == {"datestamp": "2019-02-01"}
        finally:
            store.close()

        # A second harvest asks only for what changed since the remembered datestamp.
        again = harvest(settings, endpoint.url, prefix="arXivRaw", options=FAST, embedder=embedder)
        assert endpoint.requests[-1] == {"verb": "ListRecords", "metadataPrefix": "arXivRaw", "from": "2019-02-01"}
        assert again.pages == 1 and again.complete and again.index.indexed == 0
        assert again.datestamp == "2019-02-01"  # kept for the harvest after


def test_an_interrupted_harvest_resumes_from_its_last_written_page(fresh_index_dir, embedder):
    settings = Settings(index_dir=fresh_index_dir)
    down = {"page 2": True}

    def flaky(query, count):
        if query.get("resumptionToken") and down["page 2"]:
            return 500, {}, b"internal error"
        return arxiv_raw_list(query, count, busy_first=False)

    with Endpoint(flaky) as endpoint:
        with pytest.raises(HarvestError, match="gave up after 3 attempts.*resume"):
            harvest(settings, endpoint.url, prefix="arXivRaw", options=FAST, embedder=embedder)
        store = IndexStore.open(settings.index_dir)
        try:
            assert store.count() == 24 + 6  # page 1 was written (beside the sample's 24) before page 2 failed
            state = store.harvest_state(source_key(endpoint.url, "arXivRaw", None))
        finally:
            store.close()
        assert state["token"] == "726959|1001" and state["from"] is None  # a full harvest, interrupted
        down["page 2"] = False
        before = len(endpoint.requests)
        report = harvest(settings, endpoint.url, prefix="arXivRaw", options=FAST, embedder=embedder)
        assert endpoint.requests[before] == {"verb": "ListRecords", "resumptionToken": "726959|1001"}
        assert report.resumed_token == "726959|1001" and report.index.indexed == 1 and report.index.deleted == 1
        assert report.from_date is None and report.datestamp == "2019-02-01"


def test_a_refused_token_restarts_the_list_once_with_a_message(fresh_index_dir, embedder):
    settings = Settings(index_dir=fresh_index_dir)
    key_holder = {}
    with Endpoint(lambda q, c: arxiv_raw_list(q, c, busy_first=False)) as endpoint:
        key_holder["key"] = source_key(endpoint.url, "arXivRaw", None)
        # A stale token left by an earlier, interrupted harvest.
        harvest(settings, endpoint.url, prefix="arXivRaw", options=FAST, embedder=embedder)
        store = IndexStore.open(settings.index_dir, writable=True)  # as a writer holding the lock would
        try:
            store.set_harvest_state(key_holder["key"], {"from": "2014-10-01", "token": "3", "datestamp": None})
        finally:
            store.close()
        notes: list[str] = []
        report = harvest(settings, endpoint.url, prefix="arXivRaw", options=FAST, embedder=embedder,
                         on_note=notes.append)
        refused = [n for n in notes if "badResumptionToken" in n]
        assert len(refused) == 1 and endpoint.url in refused[0] and "'3'" in refused[0]
        assert endpoint.requests[-3:] == [{"verb": "ListRecords", "resumptionToken": "3"},
                                          {"verb": "ListRecords", "metadataPrefix": "arXivRaw", "from": "2014-10-01"},
                                          {"verb": "ListRecords", "resumptionToken": "726959|1001"}]
        # Stored already, so unchanged; only 0704.0471, deleted on page 2 last time, is embedded again.
        assert report.complete and report.index.unchanged == 6 and report.index.embedded == 1


def test_an_endpoint_answering_html_is_one_clear_line(tmp_path, capsys):
    page = sample("article-page.html")
    with Endpoint(lambda q, c: (200, {"Content-Type": "text/html; charset=utf-8"}, page)) as endpoint:
        status = main(["harvest", endpoint.url, "--index", str(tmp_path / "index"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(err) == 1 and endpoint.url in err[0] and "HTML" in err[0] and "OAI-PMH" in err[0]


def test_oai_dc_and_arxiv_formats(fresh_index_dir, embedder, capsys):
    pages = {"oai_dc": sample("oai-dspace-listrecords-oai_dc.xml"), "arXiv": sample("oai-arxiv-listrecords-arXiv.xml")}
    with Endpoint(lambda q, c: (200, {}, pages[q["metadataPrefix"]])) as endpoint:
        report = harvest(Settings(index_dir=fresh_index_dir), endpoint.url, set_spec="com_1", options=FAST,
                         embedder=embedder)
        assert endpoint.requests[-1] == {"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "com_1"}
        assert report.index.indexed == 16 and report.datestamp == "2003-04-29T15:57:01Z"
        # The command line, with its flags (it loads the model itself).
        assert main(["harvest", endpoint.url, "--prefix", "arXiv", "--set", "cs", "--from", "2015-01-01",
                     "--index", str(fresh_index_dir), "--json"]) == 0
        assert endpoint.requests[-1] == {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs",
                                         "from": "2015-01-01"}
        assert '"indexed": 2' in capsys.readouterr().out
    store = IndexStore.open(fresh_index_dir)
    try:
        paper = store.get_papers(["hep-th/9504118"])["hep-th/9504118"]
        dspace = store.get_papers(["hdl:1765/308"])["hdl:1765/308"]
    finally:
        store.close()
    assert dspace.title == "Kijken in het brein: Over de mogelijkheden van neuromarketing"
    assert dspace.authors and all("," not in name for name in dspace.authors)  # "Smidts, A." -> "A. Smidts"
    assert paper.authors == ("M. Requardt",) and paper.year == 1995 and paper.categories == ("hep-th",)
    assert '"strength"' in paper.abstract  # &quot; decoded
