"""Optional rate limits for a public server: a token bucket per client, one for reads, one for writes.

Off by default (settings `rate_limit_reads`, `rate_limit_writes`: requests per minute, 0 = none).
A bucket holds as many tokens as the per-minute limit and refills evenly over the minute, so a
client may burst up to the limit, then keeps the limit's pace. A write is an operation that needs
the API key (the same definition the security tests use: it declares the bearer scheme in
/openapi.json), so a new endpoint is classed without a list to update.

Answers carry the IETF draft's headers (draft-ietf-httpapi-ratelimit-headers, -06 names):
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the bucket is full
again); a refusal is 429 in the one error shape with `Retry-After` (seconds until one token).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.operations import operation_facts, operation_of, warm_up
from models.config import Settings

# Clients remembered per bucket kind; past this the least recently seen is forgotten (it would
# have refilled anyway unless it is still active, and then it costs at most one fresh burst).
MAX_CLIENTS = 100_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int   # until the bucket is full again
    retry_after: int     # until the next request may pass (0 when allowed)

    def headers(self) -> dict[str, str]:
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset_seconds)}


class TokenBuckets:
    """One token bucket per client name: `per_minute` tokens, refilled at per_minute/60 a second."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when)

    def take(self, client: str) -> Decision:
        now = self.clock()
        tokens, stamp = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[client] = (tokens, now)  # most recently seen last
        self._forget_idle(now)
        return Decision(allowed=allowed, limit=int(self.capacity), remaining=int(tokens),
                        reset_seconds=math.ceil((self.capacity - tokens) / self.rate),
                        retry_after=0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate)))

    def _forget_idle(self, now: float) -> None:
        full_after = self.capacity / self.rate  # a bucket idle this long is full: same as a new one
        while self._buckets:
            oldest, (_, stamp) = next(iter(self._buckets.items()))
            if len(self._buckets) <= self.max_clients and now - stamp < full_after:
                break
            del self._buckets[oldest]


class RateLimit:
    """ASGI middleware applying the read and write buckets before the request reaches a route."""

    def __init__(self, app: ASGIApp, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.by_key = settings.rate_limit_by == "key"
        self.api_key = (settings.api_key or "").encode()
        self.buckets = {kind: TokenBuckets(limit, clock) for kind, limit in
                        (("read", settings.rate_limit_reads), ("write", settings.rate_limit_writes)) if limit}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            warm_up(scope)
            await self.app(scope, receive, send)
            return
        kind = "write" if self._is_write(scope) else "read"
        buckets = self.buckets.get(kind)
        if buckets is None:
            await self.app(scope, receive, send)
            return
        decision = buckets.take(self._client(scope))
        if not decision.allowed:
            message = (f"Too many {kind} requests from this client: at most {decision.limit} a minute. "
                       f"Retry in {decision.retry_after} s.")
            headers = {**decision.headers(), "Retry-After": str(decision.retry_after)}
            await error_response(429, "rate_limited", message, headers)(scope, receive, send)
            return
        extra = [(name.lower().encode(), value.encode()) for name, value in decision.headers().items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _is_write(self, scope: Scope) -> bool:
        app = scope.get("app")
        operation = operation_of(scope)
        return operation is not None and operation in operation_facts(app).writes

    def _client(self, scope: Scope) -> str:
        if self.by_key and self.api_key:
            token = _bearer_token(scope)
            # Only the server's own key names a client: random tokens must not each get a fresh bucket.
            if token is not None and hmac.compare_digest(token, self.api_key):
                return "key:" + hashlib.sha256(token).hexdigest()[:16]
        client = scope.get("client")
        return f"ip:{client[0]}" if client else "ip:unknown"


def _bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None
