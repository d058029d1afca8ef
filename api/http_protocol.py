"""uvicorn's httptools protocol with the limits it lacks, and the one error shape for its own errors.

uvicorn closes an idle kept-alive connection (`timeout_keep_alive`), but nothing else is timed: a
socket that connects and sends nothing, drips its headers a byte at a time, or stalls its body
holds a connection (and, for a body, a request task) for ever. This subclass adds, per connection:

- a head timer, from the connection's start (or a kept-alive connection's first byte of the next
  request) to the end of its headers: `header_timeout_seconds`; and a cap on the head's size
  (`max_header_bytes`; httptools itself has none, so one endless header line grows memory);
- a body timer, from the end of the headers to the end of the body: `body_timeout_seconds`;
- the connection cap (`max_connections`) answered in the one JSON error shape.

Answers written here bypass the app, so they are built from `api.errors.error_body` by hand:
408 request_timeout, 431 headers_too_large, 400 invalid_http (uvicorn's own "Invalid HTTP request
received." is text/plain) and 503 server_busy. A socket that never sent a byte is closed silently.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.errors import error_body, error_response
from models.config import Settings

log = logging.getLogger("uvicorn.error")
# Seconds a client told "server_busy" should wait before trying again.
BUSY_RETRY_AFTER_SECONDS = "1"


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    max_header_bytes: int
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.header_timeout_seconds, settings.body_timeout_seconds, settings.max_header_bytes,
                   settings.max_connections)


def protocol_class(settings: Settings) -> type[GuardedHttpProtocol]:
    """The protocol class to hand to uvicorn.Config(http=...), bound to these settings' limits."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": ConnectionLimits.from_settings(settings)})


def raw_error(status: int, code: str, message: str, default_headers=(), extra: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 error answer in the one shape, for writing straight to a transport."""
    body = json.dumps(error_body(code, message)).encode()
    lines = [STATUS_LINE[status]]
    headers = [*default_headers, (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
               *((k.lower().encode(), v.encode()) for k, v in (extra or {}).items())]
    lines += [name + b": " + value + b"\r\n" for name, value in headers]
    return b"".join(lines) + b"\r\n" + body


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: ConnectionLimits  # set by protocol_class()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit_concurrency = None  # applied here instead, to answer in the JSON shape
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True
        self._head_bytes = 0
        self._refusal: tuple[int, str, str] | None = None  # why a parser callback stopped the parser

    # --- connection lifetime --------------------------------------------------------------------

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a socket that sends nothing is closed too

    def connection_lost(self, exc) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head:
            if self._head_timer is None:
                self._arm_head_timer()
            self._head_bytes += len(data)
        super().data_received(data)
        if self._awaiting_head and self._head_bytes > self.limits.max_header_bytes and not self.transport.is_closing():
            self._refuse(*self._too_large())  # a head still arriving, already over the limit

    def _too_large(self) -> tuple[int, str, str]:
        return 431, "headers_too_large", f"The request line and headers are over {self.limits.max_header_bytes} bytes."

    # --- parser callbacks -----------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:  # a head that arrived whole in one read
            self._refusal = self._too_large()
            raise ValueError("request head over the limit")  # stops the parser: send_400_response answers
        self._awaiting_head = False
        self._head_bytes = 0
        self._cancel(self._head_timer)
        self._head_timer = None
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)
        limit = self.limits.max_connections
        if len(self.connections) > limit or len(self.tasks) >= limit:
            log.warning("Over the connection limit (%d): answered 503.", limit)
            app, self.app = self.app, _busy_answer(limit)
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel(self._body_timer)
        self._body_timer = None
        self._awaiting_head = True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        self._refuse(*(self._refusal or (400, "invalid_http", "The request is not valid HTTP/1.1, so the server "
                                         "cannot read it; the connection is closed.")))

    # --- timers ---------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._head_bytes:  # nothing was sent: no one to tell
            self.transport.close()
            return
        log.warning("%s - request headers not received within %g s: answered 408.", _peer(self),
                    self.limits.header_timeout)
        self._refuse(408, "request_timeout", f"The request line and headers did not arrive within "
                     f"{self.limits.header_timeout:g} s.")

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        log.warning("%s - request body not received within %g s: answered 408.", _peer(self),
                    self.limits.body_timeout)
        cycle = self.cycle
        if cycle is not None and cycle.response_started:
            self.transport.close()  # the app answered without reading the body; nothing more to say
            return
        if cycle is not None:  # the app waits in receive(): it gets a disconnect, its answer goes nowhere
            cycle.disconnected = True
            cycle.message_event.set()
        self._refuse(408, "request_timeout", f"The request body did not arrive within "
                     f"{self.limits.body_timeout:g} s.")

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._cancel_timers()
        self.transport.write(raw_error(status, code, message, self.server_state.default_headers))
        self.transport.close()

    def _cancel_timers(self) -> None:
        self._cancel(self._head_timer)
        self._cancel(self._body_timer)
        self._head_timer = self._body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


def _busy_answer(limit: int):
    return error_response(503, "server_busy", f"The server has its most connections open ({limit}); retry "
                          "in a moment.", {"Retry-After": BUSY_RETRY_AFTER_SECONDS, "Connection": "close"})


def _peer(protocol: HttpToolsProtocol) -> str:
    return f"{protocol.client[0]}:{protocol.client[1]}" if protocol.client else "client"
