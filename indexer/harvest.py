"""OAI-PMH harvesting into an index: `papersearch harvest URL [--set SET] [--from DATE] [--prefix P]`.

One ListRecords list, page by page (indexer/sources/oai.py parses each). Each page is written
(embedded, upserted, its deleted records deleted) and then its resumption token is remembered in
the index, so a harvest that is killed or loses the network resumes at the first page not yet
written; a page written twice changes nothing (its records come back unchanged). When the list is
complete, the largest datestamp seen is remembered instead, and the next harvest of the same
source (URL, prefix, set) asks only for records changed from it on (`from`, which is inclusive).

HTTP: a 503 (or 429) is waited out for its Retry-After (seconds or a date, at most `max_wait`),
other server and network errors are retried with exponential backoff, both a bounded number of
times; a 4xx is final. A resumption token the server refuses (`badResumptionToken`, e.g. expired
while the harvest was stopped) restarts the list once from its `from` date.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from indexer.build import IndexReport, IndexWriter
from indexer.records import Parsed, Rejection, decode
from indexer.sources import oai
from indexer.sources.base import Delete, Note
from models.config import Settings
from models.embedder import Embedder
from models.errors import PaperSearchError

__all__ = ["HarvestError", "HarvestOptions", "HarvestReport", "harvest", "source_key"]

_USER_AGENT = "PaperSearch-harvester (OAI-PMH; +https://github.com/)"
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class HarvestError(PaperSearchError):
    """The harvest stopped: the endpoint failed, answered something not OAI-PMH, or refused a token."""


@dataclass(frozen=True)
class HarvestOptions:
    """How patient a harvest is. Tests shrink the delays; the defaults suit public endpoints."""

    retries: int = 5            # attempts after the first, per request
    backoff_seconds: float = 2.0  # first wait after an error; doubled each time
    max_wait_seconds: float = 300.0  # cap on any wait, Retry-After included
    timeout_seconds: float = 120.0
    sleep: Callable[[float], None] = time.sleep


@dataclass
class HarvestReport:
    """What a harvest did: pages fetched, the index counts, the dates it asked for and remembered."""

    index: IndexReport = field(default_factory=IndexReport)
    pages: int = 0
    waits: int = 0
    from_date: str | None = None
    resumed_token: str | None = None
    datestamp: str | None = None
    complete: bool = False

    def summary(self) -> str:
        asked = f"from {self.from_date}" if self.from_date else "everything"
        resumed = f", resumed at token {self.resumed_token!r}" if self.resumed_token else ""
        return (f"{self.pages} page(s), {asked}{resumed}: {self.index.summary()}; "
                f"next harvest from {self.datestamp or 'the beginning'}")


def source_key(url: str, prefix: str, set_spec: str | None) -> str:
    """Which harvest state a run reads and writes: one per endpoint, metadata format and set."""
    return f"{url}|{prefix}|{set_spec or ''}"


def harvest(settings: Settings, url: str, prefix: str = "oai_dc", set_spec: str | None = None,
            from_date: str | None = None, options: HarvestOptions | None = None,
            on_reject: Callable[[Rejection], None] | None = None, on_note: Callable[[str], None] | None = None,
            embedder: Embedder | None = None) -> HarvestReport:
    """Harvest `url` into `settings.index_dir`, resuming or continuing from what the index remembers.

    An explicit `from_date` starts a new list from that date (a stored token is dropped).
    """
    if prefix not in oai.PREFIXES:
        raise HarvestError(f"--prefix {prefix!r} is not one PaperSearch maps; choose one of {', '.join(oai.PREFIXES)}")
    options = options or HarvestOptions()
    report = HarvestReport()
    started = time.perf_counter()
    key = source_key(url, prefix, set_spec)
    with IndexWriter(settings, embedder=embedder) as writer:
        state = writer.store.harvest_state(key) or {}
        token = None if from_date else state.get("token")
        # Resuming, the list goes on from the date it was started with (its records are in no date
        # order, so a restart after a refused token must not start later); else from the last datestamp.
        report.from_date = from_date or (state.get("from") if token else state.get("datestamp"))
        report.datestamp = state.get("datestamp")
        report.resumed_token = token
        restarted = False
        fetch = _Fetcher(url, options, report, on_note)
        while True:
            request = _list_request(prefix, set_spec, report.from_date, token)
            try:
                page = fetch.page(request)
            except oai.OaiError as exc:
                if exc.code == "noRecordsMatch":
                    page = oai.Page()
                elif exc.code == "badResumptionToken" and token and not restarted:
                    restarted, token = True, None
                    _say(on_note, f"{url}: the resumptionToken {request['resumptionToken']!r} was refused "
                                  f"(badResumptionToken: {exc.message}); starting the list again from "
                                  f"{report.from_date or 'the beginning'}")
                    continue
                else:
                    raise HarvestError(_oai_failure(url, request, exc)) from None
            _write_page(writer, page, report.index, on_reject, on_note)
            report.pages += 1
            if page.max_datestamp and (report.datestamp is None or page.max_datestamp > report.datestamp):
                report.datestamp = page.max_datestamp
            token = page.token
            if token:
                writer.store.set_harvest_state(key, {"from": report.from_date, "token": token,
                                                     "datestamp": report.datestamp})
                continue
            writer.store.set_harvest_state(key, {"datestamp": report.datestamp})
            report.complete = True
            break
    report.index.seconds = time.perf_counter() - started
    return report


def _list_request(prefix: str, set_spec: str | None, from_date: str | None, token: str | None) -> dict[str, str]:
    if token:  # the token stands for the whole request: OAI-PMH allows no other argument with it
        return {"verb": "ListRecords", "resumptionToken": token}
    request = {"verb": "ListRecords", "metadataPrefix": prefix}
    if set_spec:
        request["set"] = set_spec
    if from_date:
        request["from"] = from_date
    return request


def _write_page(writer: IndexWriter, page: oai.Page, report: IndexReport,
                on_reject: Callable[[Rejection], None] | None, on_note: Callable[[str], None] | None) -> None:
    """One page: its records upserted (the last record of an id wins), then its deletes."""
    papers, deletes = [], []
    for item in page.items:
        if isinstance(item, tuple):
            item = decode(item[0], item[1], oai.NAME)
        if isinstance(item, Delete):
            deletes.append(item.paper_id)
        elif isinstance(item, Note):
            report.notes.append(str(item))
            _say(on_note, str(item))
        elif isinstance(item, (Parsed, Rejection)):
            paper = report.account(item, on_reject)
            if paper is not None:
                papers.append(paper)
    # A deleted record of an id also listed on this page came later: drop the paper, keep the delete.
    gone = set(deletes)
    papers = [p for p in papers if p.paper_id not in gone]
    if papers:
        writer.upsert(papers, report)
    if deletes:
        deleted, unknown = writer.delete(deletes)
        report.deleted += len(deleted)
        report.delete_unknown += len(unknown)


def _oai_failure(url: str, request: dict[str, str], exc: oai.OaiError) -> str:
    if exc.code == "badResumptionToken":
        return (f"{url}: the resumptionToken {request.get('resumptionToken')!r} was refused again "
                f"(badResumptionToken: {exc.message}); rerun with --from DATE to start a new list")
    if exc.code == "notOaiPmh":
        return f"{url}: {exc.message}; is this the repository's OAI-PMH base URL (often .../oai/request)?"
    return f"{url}?{urllib.parse.urlencode(request)}: the repository answered OAI-PMH error {exc}"


def _say(on_note: Callable[[str], None] | None, text: str) -> None:
    if on_note:
        on_note(text)


# --- HTTP ---------------------------------------------------------------------------------------------


class _Fetcher:
    """GET with bounded retries: Retry-After honoured on 503/429, exponential backoff otherwise."""

    def __init__(self, url: str, options: HarvestOptions, report: HarvestReport, on_note):
        self._url = url
        self._options = options
        self._report = report
        self._on_note = on_note

    def page(self, request: dict[str, str]) -> oai.Page:
        target = f"{self._url}{'&' if '?' in self._url else '?'}{urllib.parse.urlencode(request)}"
        body, content_type = self._get(target)
        if "html" in content_type.lower() and b"<OAI-PMH" not in body[:4096]:
            raise oai.OaiError("notOaiPmh", f"the answer is an HTML page ({content_type}), not OAI-PMH XML")
        return oai.parse_page(body, self._url)

    def _get(self, target: str) -> tuple[bytes, str]:
        attempt = 0
        for wait in self._waits():
            attempt += 1
            try:
                request = urllib.request.Request(target, headers={"User-Agent": _USER_AGENT,
                                                                  "Accept-Encoding": "gzip"})
                with urllib.request.urlopen(request, timeout=self._options.timeout_seconds) as answer:
                    body = answer.read()
                    if answer.headers.get("Content-Encoding") == "gzip":
                        body = gzip.decompress(body)
                    return body, answer.headers.get("Content-Type", "")
            except urllib.error.HTTPError as exc:
                if exc.code in (429, 503) and exc.headers.get("Retry-After"):
                    delay = _retry_after(exc.headers["Retry-After"], wait)
                    problem = f"HTTP {exc.code}, Retry-After {exc.headers['Retry-After']}"
                elif exc.code >= 500 or exc.code == 429:
                    delay, problem = wait, f"HTTP {exc.code}"
                else:
                    raise HarvestError(f"{target}: HTTP {exc.code} {exc.reason}; check the URL and the "
                                       "arguments") from None
            except (_NETWORK_ERRORS + (OSError, EOFError)) as exc:
                delay, problem = wait, f"{type(exc).__name__}: {exc}"
            if delay is None:
                raise HarvestError(f"{target}: {problem}; gave up after {attempt} attempts. Rerun the same "
                                   "command to resume from the last page written.")
            delay = min(delay, self._options.max_wait_seconds)
            _say(self._on_note, f"{target}: {problem}; trying again in {delay:.0f}s")
            self._report.waits += 1
            self._options.sleep(delay)
        raise AssertionError("unreachable")  # _waits ends with None, which raises above

    def _waits(self) -> Iterator[float | None]:
        """The backoff before each retry; None after the last attempt."""
        for attempt in range(self._options.retries):
            yield self._options.backoff_seconds * 2 ** attempt
        yield None


def _retry_after(value: str, fallback: float | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date. None (give up) when out of attempts."""
    if fallback is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return fallback
    return max(0.0, when.timestamp() - time.time())
