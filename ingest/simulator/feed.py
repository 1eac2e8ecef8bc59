"""QuoteFeed: generated books5/tickers pushes for one connection, at fixed rates.

One feed (one task) per connection that subscribed to a generated books5 or tickers
channel. It never waits on the client: when the connection's write buffer is over the
limit a push is skipped (every books5 push is a full snapshot, every ticker a full
state, so a skipped push loses nothing a later one does not carry), which also keeps it
from slowing the trade pump that shares the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from ingest.simulator.client import Client
from ingest.simulator.depth import DepthBook
from ingest.simulator.quotes import BookBuilder, TickerBuilder
from ingest.simulator.wire import text_frame

logger = logging.getLogger(__name__)

QUOTE_CHANNELS = ("books5", "books", "tickers")

LastTrade = Callable[[str], tuple[str, str]]  # instId -> (price, size) of its last trade
DepthBooks = Callable[[str], DepthBook]  # instId -> its full-depth book (the server's)


class DepthStream:
    """One subscription's `books` pushes: the book's snapshot first, then its updates."""

    __slots__ = ("book", "started")

    def __init__(self, book: DepthBook) -> None:
        self.book = book
        self.started = False

    def build(self, now_ms: int) -> bytes:
        if not self.started:
            self.started = True
            return self.book.snapshot(now_ms)
        return self.book.update(now_ms)


class SentQuote(NamedTuple):
    """One books5/tickers push the simulator wrote to a connection (its JSON payload)."""

    conn_id: str
    channel: str
    inst_id: str
    payload: str


class _Due:
    __slots__ = ("builder", "interval", "next_at")

    def __init__(
        self, builder: BookBuilder | TickerBuilder | DepthStream, interval: float, next_at: float
    ) -> None:
        self.builder = builder
        self.interval = interval
        self.next_at = next_at


class QuoteFeed:
    """Pushes for one client's quote subscriptions; run() is its task, owned by the server."""

    def __init__(
        self,
        client: Client,
        rates: dict[str, float],
        last_trade: LastTrade,
        write_limit: int,
        counters: Counter[str],
        record: list[SentQuote] | None,
        depth_books: DepthBooks | None = None,
    ) -> None:
        self.client = client
        self._depth_books = depth_books
        self._rates = rates
        self._last_trade = last_trade
        self._write_limit = write_limit
        self._counters = counters
        self._record = record
        self._due: dict[tuple[str, str], _Due] = {}
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def add(self, channel: str, inst_id: str) -> None:
        """Start pushing (channel, inst_id); the first push goes out right away."""
        rate = self._rates.get(channel, 0.0)
        if rate <= 0 or (channel, inst_id) in self._due:
            return
        builder: BookBuilder | TickerBuilder | DepthStream
        if channel == "books" and self._depth_books is not None:
            builder = DepthStream(self._depth_books(inst_id))
        elif channel == "books5":
            builder = BookBuilder(inst_id)
        else:
            builder = TickerBuilder(inst_id)
        loop = asyncio.get_running_loop()
        self._due[(channel, inst_id)] = _Due(builder, 1.0 / rate, loop.time())
        self._changed.set()

    def remove(self, channel: str, inst_id: str) -> None:
        """Stop pushing (channel, inst_id); a later subscribe starts a new seqId chain."""
        if self._due.pop((channel, inst_id), None) is not None:
            self._changed.set()

    async def run(self) -> None:
        """Push every due subscription, then sleep until the next one is due."""
        loop = asyncio.get_running_loop()
        while True:
            self._changed.clear()
            if not self._due:
                await self._changed.wait()
                continue
            wait = min(d.next_at for d in self._due.values()) - loop.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()
                continue
            now = loop.time()
            for key, due in list(self._due.items()):
                if due.next_at <= now:
                    self._push(key, due)
                    due.next_at += due.interval
                    if due.next_at <= now:  # behind after a stall: no catch-up burst
                        due.next_at = now + due.interval

    def _push(self, key: tuple[str, str], due: _Due) -> None:
        client = self.client
        if not client.writable():
            return
        if client.ws.transport.get_write_buffer_size() > self._write_limit:
            self._counters["quotes_skipped"] += 1
            return
        channel, inst_id = key
        price, size = self._last_trade(inst_id)
        now_ms = time.time_ns() // 1_000_000
        builder = due.builder
        if isinstance(builder, DepthStream):
            payload = builder.build(now_ms)
        elif isinstance(builder, BookBuilder):
            payload = builder.build(price, now_ms)
        else:
            payload = builder.build(price, size, now_ms)
        client.ws.transport.write(text_frame(payload))
        self._counters[channel] += 1
        if self._record is not None:
            self._record.append(SentQuote(client.conn_id, channel, inst_id, payload.decode()))


def log_feed_failure(task: asyncio.Task[None]) -> None:
    """Done-callback: a feed that died of a bug says so instead of silently going quiet."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("simulator quote feed stopped", exc_info=task.exception())
