"""/metrics, /healthz and /readyz over HTTP/1.1, on the service's own event loop.

- /metrics: Prometheus text format (prometheus_client.generate_latest of the service's
  registry);
- /healthz: 200 while the process runs (liveness);
- /readyz: 200 when the database answers (SELECT 1 within READY_TIMEOUT) and every collector
  that should run is healthy, else 503; the body says why, with the spec's health
  dictionaries per collector. A failing refresh or compression job of the database keeps it
  200 with "status": "degraded" (ingest goes on; docs/metrics.md, "Database jobs").
One request per connection (Connection: close): probes and scrapers open one anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)

READY_TIMEOUT = 2.0  # seconds the database has to answer a readiness probe
REQUEST_TIMEOUT = 5.0  # seconds a client has to send its request head
MAX_HEAD = 8192  # bytes of request line and headers accepted
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}

Readiness = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


class Endpoints:
    """The HTTP server; start() binds (an address in use is an OSError), close() stops it."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, readiness: Readiness) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._readiness = readiness
        self._server: asyncio.Server | None = None
        self.port = port  # the bound port (port 0: the one the system picked)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = b""
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            status, content_type, body = await self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            status, content_type, body = 400, "text/plain; charset=utf-8", b"bad request\n"
        method = head.split(b" ", 1)[0]
        headers = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(ConnectionError):
            writer.write(headers if method == b"HEAD" else headers + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _answer(self, head: bytes) -> tuple[int, str, bytes]:
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3:
            return 400, "text/plain; charset=utf-8", b"bad request\n"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain; charset=utf-8", b"GET or HEAD\n"
        if target == b"/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if target == b"/healthz":
            return 200, "application/json", orjson.dumps({"status": "alive"})
        if target == b"/readyz":
            ready, detail = await self._readiness()
            return (200 if ready else 503), "application/json", orjson.dumps({"ready": ready, **detail})
        return 404, "text/plain; charset=utf-8", b"not found: /metrics, /healthz, /readyz\n"
