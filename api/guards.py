"""What every request passes before an endpoint sees it: rate limit, bearer token, body size, crash guard.

One pure ASGI middleware rather than FastAPI dependencies, because the checks must run *before*
the body is read: a dependency runs after FastAPI has already parsed (and spooled) a multipart
body, so a 50 MB upload would be read whole just to be refused. Order: rate limit (so a token
cannot be guessed at full speed), token, declared Content-Length, then the streamed body is
counted as the endpoint reads it. Any exception an endpoint lets escape becomes a 500 with a
short JSON message; the traceback goes to the server log, never to the client.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

log = logging.getLogger("smarttrace.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/health"})  # no token, no rate limit: for load balancers and monitoring
RATE_WINDOW_S = 60.0
MAX_TRACKED_CLIENTS = 10_000  # client addresses remembered by the rate limiter; the oldest are dropped
# A refused request's body is read and thrown away (never stored) up to this many bytes before the
# error is sent: most HTTP clients (httpx, requests) send the whole body before reading the reply,
# and a server that closes on them mid-upload leaves them with a connection reset instead of the
# JSON error. 64 MB covers the 50 MB upload; past it the connection is simply closed.
DRAIN_LIMIT_BYTES = 64 * 2**20


class RateLimiter:
    """At most `per_minute` requests per client address in any sliding 60 s window (0 = unlimited)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = int(per_minute)
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> float | None:
        """None when the request may go ahead, else the seconds until it would be allowed."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        with self._lock:
            times = self._seen.get(client)
            if times is None:
                if len(self._seen) >= MAX_TRACKED_CLIENTS:
                    self._seen.pop(next(iter(self._seen)))
                times = self._seen[client] = deque()
            while times and now - times[0] >= RATE_WINDOW_S:
                times.popleft()
            if len(times) >= self.per_minute:
                return max(RATE_WINDOW_S - (now - times[0]), 0.0)
            times.append(now)
            return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def token_matches(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time (no timing hint of a prefix match)."""
    if not header or not header[:7].lower() == "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


async def send_error(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    """The API's one error shape, `{"error": message}`, sent straight from the middleware."""
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def drain(receive: Receive, limit: int) -> None:
    """Read and discard the rest of a request body, at most `limit` bytes (see DRAIN_LIMIT_BYTES)."""
    drained = 0
    while drained <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestGuard:
    """The checks above, around the FastAPI app (`app.add_middleware(RequestGuard, ...)`)."""

    def __init__(self, app: ASGIApp, token: str | None, max_body_bytes: int, limiter: RateLimiter) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = int(max_body_bytes)
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await drain(receive, DRAIN_LIMIT_BYTES)
            await send_error(send, *refusal)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self._counted(receive), tracked_send)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if not started:
                await send_error(send, 500, "internal server error (details are in the server log)")

    def _refusal(self, scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        """(status, message, headers) when the request is refused before it is read, else None."""
        if scope.get("path") in PUBLIC_PATHS:
            return None
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.limiter.allow(client)
        if wait is not None:
            return 429, f"rate limit: {self.limiter.per_minute} requests a minute; retry in {wait:.0f} s", {
                "Retry-After": str(max(1, round(wait)))
            }
        if self.token and not token_matches(_header(scope, b"authorization"), self.token):
            return 401, "missing or wrong bearer token (header 'Authorization: Bearer <token>')", {
                "WWW-Authenticate": "Bearer"
            }
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                return 400, "invalid Content-Length header", {}
            if int(declared) > self.max_body_bytes:
                return 413, self._too_large(), {}
        return None

    def _too_large(self) -> str:
        return f"request body over the {self.max_body_bytes / 2**20:g} MB limit (api.max_body_mb)"

    def _counted(self, receive: Receive) -> Receive:
        """`receive` that stops a body without Content-Length (chunked) once it passes the limit.

        Raised as an HTTPException: FastAPI passes those through its body parsing untouched (any
        other exception there becomes a generic 400), and the app's handler turns it into JSON.
        """
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if message.get("more_body", False):
                        await drain(receive, DRAIN_LIMIT_BYTES)
                    raise HTTPException(status_code=413, detail=self._too_large())
            return message

        return counted
