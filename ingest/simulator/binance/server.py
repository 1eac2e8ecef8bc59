"""BinanceSimulator: a local Binance spot market-data WebSocket server for tests and offline use.

It serves /stream?streams=a/b (combined: payloads wrapped {"stream", "data"}), /ws and
/ws/<stream> (raw payloads), with timeUnit=MICROSECOND; answers SUBSCRIBE, UNSUBSCRIBE,
LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY and their errors; pings every ping_interval
and drops a connection whose pong does not come within pong_timeout; closes a connection that
sends more than 5 messages (text, ping, pong) in a second; sends serverShutdown before closing
a connection at the end of its lifetime. Trades, aggTrades, partial depth, bookTicker, ticker
and klines are generated for the configured symbols (ingest.simulator.binance.tape, .quotes).
Fault controls: server_shutdown() for every connection now, disconnect_all(refuse_for=).
The same port answers Binance's REST market-data endpoints (ingest.simulator.binance.rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ingest.errors import ConfigError
from ingest.simulator.binance import wire
from ingest.simulator.binance.connection import BinanceConnection
from ingest.simulator.binance.feeds import QuoteFeed, log_feed_failure
from ingest.simulator.binance.names import TRADE_KINDS, StreamSpec, parse_stream
from ingest.simulator.binance.publisher import Publisher, log_publisher_failure
from ingest.simulator.binance.rest import RestEndpoints
from ingest.simulator.binance.settings import BinanceSimulatorSettings
from ingest.simulator.binance.tape import PublishedTrade, Tape

logger = logging.getLogger(__name__)

COMBINED_PATH = "/stream"
RAW_PATH = "/ws"
SHUTDOWN_CLOSE_CODE = 1001  # going away: serverShutdown, lifetime end
FLOOD_CLOSE_CODE = 1008  # policy violation: too many incoming messages
_MAX_ID = 2**63 - 1


class BinanceSimulator:
    """A real websockets server on loopback speaking Binance spot streams. Explicit start()/stop()."""

    def __init__(self, settings: BinanceSimulatorSettings | None = None) -> None:
        self.settings = s = settings or BinanceSimulatorSettings()
        self.counters: Counter[str] = Counter()
        self._server: Server | None = None
        self._symbols = frozenset(s.symbols)
        if s.weights is not None and len(s.weights) != len(s.symbols):
            raise ConfigError("skew weights need one value per symbol")
        per_symbol = _split(s.total, len(s.symbols))
        keep = None if s.record else s.history_trades
        self._tapes = {
            sym: Tape(sym, limit=n, keep=keep) for sym, n in zip(s.symbols, per_symbol, strict=True)
        }
        self._subscribers: dict[str, set[BinanceConnection]] = {}
        self._clients: set[BinanceConnection] = set()
        self._publisher = Publisher(s, self._tapes, self._subscribers, self.counters)
        self._feed = QuoteFeed(s, self._tapes, self._subscribers, self.counters)
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: set[asyncio.Task[None]] = set()
        self._conn_ids = itertools.count(1)
        self._refuse_until = 0.0  # monotonic time until which handshakes are refused
        self.rest = RestEndpoints(s, self._tapes)
        self._methods: dict[str, Callable[[BinanceConnection, Any, object], Awaitable[None]]] = {
            "SUBSCRIBE": self._m_subscribe,
            "UNSUBSCRIBE": self._m_unsubscribe,
            "LIST_SUBSCRIPTIONS": self._m_list,
            "SET_PROPERTY": self._m_set_property,
            "GET_PROPERTY": self._m_get_property,
        }

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Listen on settings.host:port and start publishing."""
        s = self.settings
        if not s.symbols:
            raise ConfigError("the Binance simulator needs at least one symbol, e.g. BTCUSDT")
        if s.live and s.rate is None:
            raise ConfigError("a live simulator publishes trades on the clock: give it a rate")
        if s.rate is not None and s.rate <= 0:
            raise ConfigError("rate must be above 0 (None: as fast as clients read)")
        if s.ping_interval <= 0 or s.pong_timeout <= 0 or s.lifetime <= 0 or s.shutdown_grace < 0:
            raise ConfigError("ping_interval, pong_timeout and lifetime must be > 0, shutdown_grace >= 0")
        try:
            self._server = await serve(
                self._handle,
                s.host,
                s.port,
                process_request=self._check_path,
                create_connection=BinanceConnection,
                compression=None,  # frames are built uncompressed
                ping_interval=s.ping_interval,
                ping_timeout=s.pong_timeout,
                write_limit=s.write_limit,
                close_timeout=2.0,  # a client that stopped reading must not hold stop() long
            )
        except OSError as exc:
            raise ConfigError(
                f"simulator cannot listen on {s.host}:{s.port}: {exc.strerror}; choose another port"
            ) from None
        publisher = asyncio.create_task(self._publisher.run(), name="binance-simulator-publisher")
        publisher.add_done_callback(log_publisher_failure)
        feed = asyncio.create_task(self._feed.run(), name="binance-simulator-quotes")
        feed.add_done_callback(log_feed_failure)
        self._tasks = [publisher, feed]
        logger.info("Binance simulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Stop publishing, close every connection and the listening socket."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for task in list(self._closers):
            task.cancel()
        await asyncio.gather(*self._closers, return_exceptions=True)
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> BinanceSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port (useful with port=0)."""
        if self._server is None:
            raise RuntimeError("simulator is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        """ws://host:port, the equivalent of wss://stream.binance.com:9443."""
        return f"ws://{self.settings.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """http://host:port, the equivalent of https://api.binance.com."""
        return f"http://{self.settings.host}:{self.port}"

    @property
    def url(self) -> str:
        """The raw-stream URL without streams (/ws): subscribe with SUBSCRIBE."""
        return self.base_url + RAW_PATH

    def stream_url(self, *streams: str, micro: bool = False) -> str:
        """A combined-stream URL (/stream?streams=a/b), timestamps in µs with micro=True."""
        query = "streams=" + "/".join(streams)
        if micro:
            query += "&timeUnit=MICROSECOND"
        return f"{self.base_url}{COMBINED_PATH}?{query}"

    @property
    def open_connections(self) -> int:
        return len(self._clients)

    # -- what was published ------------------------------------------------------

    def published_trades(
        self, symbol: str, first_id: int = 1, last_id: int | None = None
    ) -> list[PublishedTrade]:
        """The trades of `symbol` published so far (received by a client or not), oldest first;
        `first_id`/`last_id` inclusive. With record=False only the newest history_trades."""
        tape = self._tapes.get(symbol)
        if tape is None:
            return []
        return tape.trades(first_id, tape.published if last_id is None else last_id)

    def published_count(self, symbol: str) -> int:
        """How many trades of `symbol` were published so far (ids run 1..count)."""
        tape = self._tapes.get(symbol)
        return 0 if tape is None else tape.published

    # -- fault controls ----------------------------------------------------------

    async def server_shutdown(self, grace: float | None = None) -> int:
        """Send serverShutdown to every connection now and close them `grace` seconds later
        (settings.shutdown_grace by default); returns the number of connections notified."""
        conns = [c for c in self._clients if c.writable()]
        self._shutdown(conns, self.settings.shutdown_grace if grace is None else grace)
        return len(conns)

    async def disconnect_all(self, *, abrupt: bool = True, refuse_for: float = 0.0) -> int:
        """Drop every connection: abrupt=True resets TCP (like a network failure), abrupt=False
        closes with 1001. WebSocket handshakes are then refused with HTTP 503 for `refuse_for`
        seconds (REST is still answered). Returns the number dropped."""
        self._refuse_until = time.monotonic() + refuse_for
        conns = list(self._clients)
        for conn in conns:
            conn.closing = True
            if abrupt:
                conn.transport.abort()
        if not abrupt:
            self._close_later(conns, 0.0, SHUTDOWN_CLOSE_CODE, "service restart")
        self.counters["forced_disconnects"] += len(conns)
        return len(conns)

    def _shutdown(self, conns: list[BinanceConnection], grace: float) -> None:
        now_us = time.time_ns() // 1000
        for conn in conns:
            conn.transport.write(wire.server_shutdown(now_us, conn.micro, conn.combined))
            self.counters["shutdown_notices"] += 1
        self._close_later(conns, grace, SHUTDOWN_CLOSE_CODE, "server shutdown")

    def _close_later(self, conns: list[BinanceConnection], delay: float, code: int, reason: str) -> None:
        # Closing waits for the client's close frame: run it as an owned task, not inline.
        async def close() -> None:
            if delay > 0:
                await asyncio.sleep(delay)
            for conn in conns:
                conn.closing = True
            await asyncio.gather(*(c.close(code, reason) for c in conns), return_exceptions=True)

        task = asyncio.create_task(close(), name="binance-simulator-close")
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    def _on_flood(self, conn: BinanceConnection) -> None:
        self.counters["flood_closes"] += 1
        self._close_later([conn], 0.0, FLOOD_CLOSE_CODE, "Too many messages")

    # -- handshake ---------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        path = parts.path
        if path != COMBINED_PATH and path != RAW_PATH and not path.startswith(RAW_PATH + "/"):
            if self.rest.handles(parts.path):
                return self.rest.respond(parts.path, parts.query)
            return connection.respond(HTTPStatus.NOT_FOUND, "use /ws, /ws/<stream> or /stream?streams=\n")
        if time.monotonic() < self._refuse_until:
            self.counters["refused_connections"] += 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "simulated network outage\n")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path == COMBINED_PATH:
            names = [n for n in query.get("streams", "").split("/") if n]
        else:
            names = [n for n in path[len(RAW_PATH) + 1 :].split("/") if n]
        specs = [parse_stream(n, self._symbols) for n in names]
        if any(spec is None for spec in specs) or len(specs) > self.settings.max_streams:
            self.counters["refused_connections"] += 1
            return connection.respond(HTTPStatus.BAD_REQUEST, "Invalid request: invalid stream\n")
        assert isinstance(connection, BinanceConnection)
        connection.conn_id = f"{next(self._conn_ids):08x}"
        connection.combined = path == COMBINED_PATH
        connection.micro = query.get("timeUnit", "").upper() == "MICROSECOND"
        connection.message_limit = self.settings.max_messages_per_second
        connection.on_flood = self._on_flood
        connection.streams = {spec.name: spec for spec in specs if spec is not None}
        return None

    # -- connections -------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert isinstance(ws, BinanceConnection)
        conn = ws
        self._clients.add(conn)
        self.counters["connections"] += 1
        self._subscribe(conn, list(conn.streams.values()))
        loop = asyncio.get_running_loop()
        deadline: float | None = loop.time() + self.settings.lifetime
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await conn.recv()
                except TimeoutError:
                    # Binance closes a connection after 24 hours, announcing it first.
                    self.counters["lifetime_closes"] += 1
                    self._shutdown([conn], self.settings.shutdown_grace)
                    deadline = None
                    continue
                if not conn.closing:
                    await self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            conn.closing = True
            self._clients.discard(conn)
            for name in conn.streams:
                self._subscribers.get(name, set()).discard(conn)
            self._feed.poke()

    def _subscribe(self, conn: BinanceConnection, specs: Iterable[StreamSpec]) -> None:
        for spec in specs:
            conn.streams[spec.name] = spec
            self._subscribers.setdefault(spec.name, set()).add(conn)
            if spec.kind in TRADE_KINDS:
                self._publisher.wake()
            else:
                self._feed.add(spec)
            self.counters["subscriptions"] += 1

    async def _on_message(self, conn: BinanceConnection, message: str | bytes) -> None:
        self.counters["requests"] += 1
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            await self._error(
                conn, 3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}"
            )
            return
        if not isinstance(request, dict):
            await self._error(conn, 2, "Invalid request: expected a JSON object")
            return
        request_id = request.get("id")
        if not _valid_id(request_id) or "id" not in request:
            await self._error(conn, 2, "Invalid request: request ID must be an unsigned integer")
            return
        method = request.get("method")
        if method is None:
            msg = f"Invalid request: missing field `method` at line 1 column {len(text)}"
            await self._error(conn, 2, msg, request_id)
            return
        handler = self._methods.get(method) if isinstance(method, str) else None
        if handler is None:
            column = text.find(orjson.dumps(method).decode()) + len(orjson.dumps(method))
            await self._error(conn, 2, wire.unknown_method(method, column), request_id)
            return
        await handler(conn, request.get("params"), request_id)

    async def _m_subscribe(self, conn: BinanceConnection, params: Any, request_id: object) -> None:
        specs = self._specs(params)
        if specs is None:
            await self._error(conn, 2, "Invalid request: invalid stream", request_id)
            return
        if len(conn.streams.keys() | {s.name for s in specs}) > self.settings.max_streams:
            msg = f"Invalid request: too many streams (at most {self.settings.max_streams} per connection)"
            await self._error(conn, 2, msg, request_id)
            return
        self._subscribe(conn, specs)
        await self._send(conn, wire.result(None, request_id))

    async def _m_unsubscribe(self, conn: BinanceConnection, params: Any, request_id: object) -> None:
        specs = self._specs(params)
        if specs is None:
            await self._error(conn, 2, "Invalid request: invalid stream", request_id)
            return
        # Stop the pushes before answering, so nothing of these streams follows the answer.
        for spec in specs:
            conn.streams.pop(spec.name, None)
            self._subscribers.get(spec.name, set()).discard(conn)
        self._feed.poke()
        await self._send(conn, wire.result(None, request_id))

    async def _m_list(self, conn: BinanceConnection, params: Any, request_id: object) -> None:
        await self._send(conn, wire.result(list(conn.streams), request_id))

    async def _m_set_property(self, conn: BinanceConnection, params: Any, request_id: object) -> None:
        problem = _property_problem(params, 2)
        if problem is None and not isinstance(params[1], bool):
            problem = (1, "Invalid value type: expected Boolean")
        if problem is not None:
            await self._error(conn, *problem, request_id)
            return
        conn.combined = params[1]
        await self._send(conn, wire.result(None, request_id))

    async def _m_get_property(self, conn: BinanceConnection, params: Any, request_id: object) -> None:
        problem = _property_problem(params, 1)
        if problem is not None:
            await self._error(conn, *problem, request_id)
            return
        await self._send(conn, wire.result(conn.combined, request_id))

    def _specs(self, params: Any) -> list[StreamSpec] | None:
        """The streams of SUBSCRIBE/UNSUBSCRIBE params; None if any is not a valid stream."""
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return None
        specs = [parse_stream(p, self._symbols) for p in params]
        valid = [s for s in specs if s is not None]
        return valid if len(valid) == len(specs) else None

    async def _send(self, conn: BinanceConnection, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.send(text)

    async def _error(self, conn: BinanceConnection, code: int, msg: str, request_id: object = None) -> None:
        self.counters["errors"] += 1
        await self._send(conn, wire.error(code, msg, request_id))


def _valid_id(request_id: object) -> bool:
    """Binance accepts a 64-bit signed integer, an alphanumeric string of up to 36, or null."""
    if request_id is None:
        return True
    if isinstance(request_id, bool):
        return False
    if isinstance(request_id, int):
        return -_MAX_ID - 1 <= request_id <= _MAX_ID
    return isinstance(request_id, str) and len(request_id) <= 36 and request_id.isalnum()


def _property_problem(params: Any, count: int) -> tuple[int, str] | None:
    if not isinstance(params, list) or not params or not isinstance(params[0], str):
        return 2, "Invalid request: property name must be a string"
    if len(params) > count:
        return 2, "Invalid request: too many parameters"
    if params[0] != "combined":
        return 0, "Unknown property"
    if len(params) < count:
        return 1, "Invalid value type: expected Boolean"
    return None


def _split(total: int | None, parts: int) -> list[int | None]:
    if total is None:
        return [None] * parts
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
