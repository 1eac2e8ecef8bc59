"""OkxSimulator: a local OKX v5 WebSocket server for tests, benchmarks and offline use.

It answers subscribe/unsubscribe and "ping" like OKX, serves /ws/v5/public, /ws/v5/business
and /ws/v5/private (login, balances: ingest.simulator.account), and streams pre-built
frames from generated trades or a recording.
Subscribed books5/tickers without a recording get generated pushes around the last trade
price (ingest.simulator.feed). Fault controls: idle close (4004), notice 64008 then close,
forced disconnect, malformed frames, ignored pings. Every trade (and, with record=True,
every generated book/ticker push) handed to a socket is recorded for value checks.
The same port answers OKX's REST GET /api/v5/public/instruments (ingest.simulator.instruments)
and the trade history, /api/v5/market/trades and /history-trades (ingest.simulator.history).
With settings.live, trades are published on the clock whether anyone listens (a client that
was away finds them in the REST history).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Collection
from http import HTTPStatus

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ingest.errors import ConfigError
from ingest.exchanges.okx.channels import CANDLE_CHANNELS, PUBLIC_CHANNELS
from ingest.simulator import wire
from ingest.simulator.account import AccountEndpoint, SimulatedAccount
from ingest.simulator.client import Client
from ingest.simulator.depth import DepthBook
from ingest.simulator.feed import QUOTE_CHANNELS, QuoteFeed, SentQuote, log_feed_failure
from ingest.simulator.generator import TRADE_CHANNELS, TradeGenerator
from ingest.simulator.history import TradeHistoryEndpoint
from ingest.simulator.instruments import InstrumentsEndpoint
from ingest.simulator.pump import Pump, log_pump_failure
from ingest.simulator.replay import load_replay
from ingest.simulator.settings import SimulatorSettings
from ingest.simulator.skew import rate_of
from ingest.simulator.streams import SentTrade, Stream

logger = logging.getLogger(__name__)

PUBLIC_PATH = "/ws/v5/public"
BUSINESS_PATH = "/ws/v5/business"
PRIVATE_PATH = "/ws/v5/private"
IDLE_CLOSE_CODE = 4004
NOTICE_RECONNECT = "64008"
DEFAULT_LAST_TRADE = ("64000.0", "0.001")


class OkxSimulator:
    """A real websockets server on loopback speaking OKX v5. Explicit start()/stop()."""

    def __init__(self, settings: SimulatorSettings | None = None) -> None:
        self.settings = settings or SimulatorSettings()
        w = self.settings.weights
        if w is not None and (len(w) != len(self.settings.symbols) or self.settings.replay is not None):
            raise ConfigError("skew weights need one value per symbol, and generated trades (no replay)")
        self.sent_trades: list[SentTrade] = []
        self.sent_quotes: list[SentQuote] = []  # filled only with settings.record
        self.counters: Counter[str] = Counter()
        self.ignore_pings = False
        self._server: Server | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._streams: dict[tuple[str, str], Stream] = {}
        self._subscribers: dict[tuple[str, str], list[Client]] = {}
        self._clients: set[Client] = set()
        self._pump = Pump(self.settings, self._streams, self._subscribers, self.counters, self.sent_trades)
        self._conn_ids = itertools.count(1)
        self._closers: set[asyncio.Task[None]] = set()
        self._refuse_until = 0.0  # monotonic time until which handshakes are refused
        self._feeds: dict[Client, QuoteFeed] = {}
        # Full-depth `books` per instId, kept across subscriptions (a resubscribe gets a
        # snapshot of the same book); tests inject gaps and read its past states here.
        self.depth_books: dict[str, DepthBook] = {}
        # REST: GET /api/v5/public/instruments on the same port (plain HTTP, no upgrade).
        self.instruments = InstrumentsEndpoint(self.settings.symbols + self.settings.extra_symbols)
        # REST: the trade history the streams publish (GET /api/v5/market/[history-]trades).
        self.history = TradeHistoryEndpoint(self.settings, self._trade_stream)
        # /ws/v5/private: without a configured account, no key is valid.
        account = self.settings.account or SimulatedAccount("", "", "", balances=(), changes_per_second=0)
        self.account = AccountEndpoint(account, self.counters)

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Build the first frames, listen on settings.host:port and start streaming."""
        s = self.settings
        if s.books_per_second < 0 or s.tickers_per_second < 0:
            raise ConfigError("books_per_second and tickers_per_second must be >= 0 (0 disables)")
        if s.live and s.rate is None:
            raise ConfigError("a live simulator publishes trades on the clock: give it a rate")
        per_symbol = _split(s.total, len(s.symbols))
        for i, (symbol, limit) in enumerate(zip(s.symbols, per_symbol, strict=True)):
            chunk = s.chunk_trades
            if s.rate is not None:
                # Chunks of ~5 ms of trades at a set rate (the symbol's own, when skewed) keep
                # the ts stamped at build time within a few ms of send time (latency
                # measurements use it).
                rate = s.rate if s.weights is None else rate_of(s.weights, i, s.rate)
                chunk = min(chunk, max(s.trades_per_message, int(rate * 0.005)))
            gen = TradeGenerator(
                symbol,
                trades_per_message=s.trades_per_message,
                # Chunks, not the whole total: memory stays bounded (sent frames are
                # trimmed) and building a chunk costs ~1 us per trade, far below sending.
                chunk_trades=chunk,
                limit=limit,
                channel=s.trades_channel,
            )
            gen.extend()
            self._streams[(s.trades_channel, symbol)] = gen
        if s.replay is not None:
            for stream in load_replay(s.replay):
                # A recording wins over generated trades for the same (channel, instId).
                self._streams[(stream.channel, stream.inst_id)] = stream
        try:
            self._server = await serve(
                self._handle,
                s.host,
                s.port,
                process_request=self._check_path,
                compression=None,  # frames are pre-built uncompressed
                ping_interval=None,  # OKX keeps alive with text "ping"/"pong", not control frames
                write_limit=s.write_limit,
                close_timeout=2.0,  # a client that stopped reading must not hold stop() long
            )
        except OSError as exc:
            raise ConfigError(
                f"simulator cannot listen on {s.host}:{s.port}: {exc.strerror}; choose another port"
            ) from None
        self._pump_task = asyncio.create_task(self._pump.run(), name="okx-simulator-pump")
        self.account.start()
        self._pump_task.add_done_callback(log_pump_failure)
        logger.info("OKX simulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Stop streaming, close every connection and the listening socket."""
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None
        await self.account.stop()
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        for client in list(self._feeds):
            await self._stop_feed(client)
        await asyncio.gather(*self._closers, return_exceptions=True)

    async def __aenter__(self) -> OkxSimulator:
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
        return f"ws://{self.settings.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST endpoints (same host and port as the WebSockets)."""
        return f"http://{self.settings.host}:{self.port}"

    @property
    def url(self) -> str:
        """The /ws/v5/public URL (trades, books5, tickers)."""
        return self.base_url + PUBLIC_PATH

    @property
    def business_url(self) -> str:
        """The /ws/v5/business URL (candles)."""
        return self.base_url + BUSINESS_PATH

    @property
    def private_url(self) -> str:
        """The /ws/v5/private URL (login, balances)."""
        return self.base_url + PRIVATE_PATH

    @property
    def urls(self) -> dict[str, str]:
        """{"public": ..., "business": ..., "private": ...}, as the OKX adapter expects."""
        return {"public": self.url, "business": self.business_url, "private": self.private_url}

    @property
    def open_connections(self) -> int:
        return len(self._clients)

    # -- fault controls ----------------------------------------------------------

    async def disconnect_all(self, *, abrupt: bool = True, refuse_for: float = 0.0) -> int:
        """Drop every client: abrupt=True resets TCP (buffered frames are lost, like a network
        failure); abrupt=False closes with 1012 after flushing. WebSocket handshakes are then
        refused (HTTP 503) for `refuse_for` seconds, REST is still answered. Returns the number
        dropped."""
        self._refuse_until = time.monotonic() + refuse_for
        clients = list(self._clients)
        for client in clients:
            client.closing = True
            if abrupt:
                client.ws.transport.abort()
        if not abrupt:
            self._close_soon(clients, 1012, "service restart")
        self.counters["forced_disconnects"] += len(clients)
        return len(clients)

    async def notice_and_close(self, delay: float = 0.1, *, sparing: Collection[str] = ()) -> None:
        """Send notice 64008 to every client, then close them after `delay` seconds.

        `sparing`: connection ids (the connId of their subscribe acks) left alone."""
        msg = "The connection will soon be closed for a service upgrade. Please reconnect."
        clients = [c for c in self._clients if c.writable() and c.conn_id not in sparing]
        for client in clients:
            with contextlib.suppress(ConnectionClosed):
                await client.ws.send(wire.notice(NOTICE_RECONNECT, msg, client.conn_id))
                self.counters["notices"] += 1
        await asyncio.sleep(delay)
        for client in clients:
            client.closing = True
        self._close_soon(clients, 1012, "service upgrade")

    def _close_soon(self, clients: list[Client], code: int, reason: str) -> None:
        # Closing waits for the client's close frame, which a client busy elsewhere (or with a
        # full receive queue) reads late: run the handshakes as owned tasks, not inline.
        for client in clients:
            task = asyncio.create_task(client.ws.close(code, reason), name=f"close-{client.conn_id}")
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)

    async def inject(self, frames: tuple[str | bytes, ...] = wire.MALFORMED_FRAMES) -> int:
        """Send `frames` (malformed ones by default) to every open client; frames sent.

        A str goes as a text frame, bytes as a binary frame (any bytes, e.g. bad UTF-8)."""
        sent = 0
        for client in [c for c in self._clients if c.writable()]:
            for frame in frames:
                with contextlib.suppress(ConnectionClosed):
                    await client.ws.send(frame)
                    sent += 1
        self.counters["injected"] += sent
        return sent

    # -- connections -------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path in (PUBLIC_PATH, BUSINESS_PATH, PRIVATE_PATH):
            if time.monotonic() < self._refuse_until:
                self.counters["refused_connections"] += 1
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "simulated network outage\n")
            return None
        if self.instruments.handles(request):
            return self.instruments.respond(request)
        if self.history.handles(request):
            return self.history.respond(request)
        return connection.respond(
            HTTPStatus.NOT_FOUND, "use /ws/v5/public, /ws/v5/business or /ws/v5/private\n"
        )

    async def _handle(self, ws: ServerConnection) -> None:
        client = Client(ws, f"{next(self._conn_ids):08x}", ws.request.path if ws.request else "")
        self._clients.add(client)
        self.counters["connections"] += 1
        if client.path == PRIVATE_PATH:
            self.counters["private_connections"] += 1
        try:
            while True:
                try:
                    async with asyncio.timeout(self.settings.idle_timeout):
                        message = await ws.recv()
                except TimeoutError:
                    # OKX drops a connection that sent nothing for 30 s.
                    self.counters["idle_closes"] += 1
                    client.closing = True
                    await ws.close(IDLE_CLOSE_CODE, "No data received in time.")
                    return
                await self._on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            client.closing = True
            self._clients.discard(client)
            self.account.drop(client)
            await self._stop_feed(client)
            for key in client.streams:
                subs = self._subscribers.get(key, [])
                if client in subs:
                    subs.remove(client)

    async def _on_message(self, client: Client, message: str | bytes) -> None:
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        if text == "ping":
            self.counters["pings"] += 1
            if not self.ignore_pings:
                await client.ws.send("pong")
            return
        try:
            request = orjson.loads(text)
            op = request["op"]
            args = request["args"]
            if op == "login" and client.path == PRIVATE_PATH:
                await self.account.login(client, args)
                return
            if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
                raise ValueError(op)
        except (ValueError, KeyError, TypeError):
            # Not the text: a refused login frame would be echoed with its credentials.
            await self._error(client, "60012", "Invalid request")
            return
        for arg in args:
            await self._on_arg(client, op, arg)

    async def _on_arg(self, client: Client, op: str, arg: object) -> None:
        if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
            await self._error(client, "60012", f"Invalid request: {arg!r:.100}")
            return
        channel, inst_id = arg["channel"], str(arg.get("instId", ""))
        if channel == "account" and client.path == PRIVATE_PATH:
            await self.account.subscribe(client, op, arg)
            return
        problem = self._refusal(client.path, channel, inst_id)
        if problem is not None:
            await self._error(client, *problem)
            return
        key = (channel, inst_id)
        subs = self._subscribers.setdefault(key, [])
        if op == "subscribe":
            await client.ws.send(
                wire.ack("subscribe", {"channel": channel, "instId": inst_id}, client.conn_id)
            )
            self.counters["subscribes"] += 1
            if client not in subs:
                self._attach(client, key, subs)
            if channel in QUOTE_CHANNELS and key not in self._streams:
                self._feed_for(client).add(channel, inst_id)
        else:
            # Stop the pushes before acking, so nothing of this channel follows the ack.
            if (feed := self._feeds.get(client)) is not None:
                feed.remove(channel, inst_id)
            await client.ws.send(
                wire.ack("unsubscribe", {"channel": channel, "instId": inst_id}, client.conn_id)
            )
            client.streams.discard(key)
            if client in subs:
                subs.remove(client)

    def _refusal(self, path: str, channel: str, inst_id: str) -> tuple[str, str] | None:
        where = f"channel:{channel},instId:{inst_id}"
        if path == PRIVATE_PATH:
            return "60018", f"Wrong URL or {where} doesn't exist. Please use the correct URL."
        if channel in CANDLE_CHANNELS or channel == "trades-all":
            if path != BUSINESS_PATH:
                return "60018", f"Wrong URL or {where} doesn't exist. Please use the correct URL."
        elif channel in PUBLIC_CHANNELS:
            if path != PUBLIC_PATH:
                return "64001", f"This channel is moved to a new URL: {where}."
        else:
            return "60018", f"Wrong URL or {where} doesn't exist."
        known = set(self.settings.symbols) | set(self.settings.extra_symbols)
        known.update(i for _, i in self._streams)
        if inst_id not in known:
            return "60018", f"Wrong URL or {where} doesn't exist."
        return None

    def _attach(self, client: Client, key: tuple[str, str], subs: list[Client]) -> None:
        subs.append(client)
        client.streams.add(key)
        stream = self._streams.get(key)
        if stream is None:
            return
        k = self.settings.resend_on_resubscribe
        if stream.ever_subscribed and k > 0 and len(subs) == 1:
            per_frame = max(1, self.settings.trades_per_message) if key[0] in TRADE_CHANNELS else 1
            back = stream.rewind(math.ceil(k / per_frame))
            self.counters["resent_frames"] += back
        stream.ever_subscribed = True
        self._pump.wake()

    def _feed_for(self, client: Client) -> QuoteFeed:
        feed = self._feeds.get(client)
        if feed is None:
            s = self.settings
            feed = QuoteFeed(
                client,
                {"books5": s.books_per_second, "books": s.depth_per_second, "tickers": s.tickers_per_second},
                self._last_trade,
                s.write_limit,
                self.counters,
                self.sent_quotes if s.record else None,
                self.depth_book,
            )
            feed.task = asyncio.create_task(feed.run(), name=f"okx-simulator-quotes-{client.conn_id}")
            feed.task.add_done_callback(log_feed_failure)
            self._feeds[client] = feed
        return feed

    def depth_book(self, inst_id: str) -> DepthBook:
        """The full-depth book of `inst_id` (made at its first `books` subscribe)."""
        book = self.depth_books.get(inst_id)
        if book is None:
            book = self.depth_books[inst_id] = DepthBook(inst_id)
        return book

    async def _stop_feed(self, client: Client) -> None:
        feed = self._feeds.pop(client, None)
        if feed is not None and feed.task is not None:
            feed.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed.task

    def _trade_stream(self, inst_id: str) -> TradeGenerator | None:
        stream = self._streams.get((self.settings.trades_channel, inst_id))
        return stream if isinstance(stream, TradeGenerator) else None

    def _last_trade(self, inst_id: str) -> tuple[str, str]:
        stream = self._trade_stream(inst_id)
        if stream is not None:
            return stream.last_trade()
        return DEFAULT_LAST_TRADE  # replayed or extra symbols: no generated price to follow

    def published_trades(self, inst_id: str, first: int = 1, last: int | None = None) -> list[SentTrade]:
        """The trades of `inst_id` the exchange published so far (received by a client or not),
        oldest first: what a complete history holds. `first`/`last`: trade ids, inclusive."""
        stream = self._trade_stream(inst_id)
        if stream is None:
            return []
        newest = stream.published()
        return stream.trades_by_id(first, min(newest, newest if last is None else last) + 1)

    def published_count(self, inst_id: str) -> int:
        """How many trades of `inst_id` were published so far (ids run 1..count)."""
        stream = self._trade_stream(inst_id)
        return 0 if stream is None else stream.published()

    async def _error(self, client: Client, code: str, msg: str) -> None:
        self.counters["errors"] += 1
        with contextlib.suppress(ConnectionClosed):
            await client.ws.send(wire.error(code, msg, client.conn_id))


def _split(total: int | None, parts: int) -> list[int | None]:
    if total is None:
        return [None] * parts
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
