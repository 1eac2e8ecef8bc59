"""The quote feed: depth, bookTicker, ticker and kline pushes for every subscribed stream.

One task per simulator. A due stream's payload is built once and framed once per way its
subscribers want it (raw/combined, ms/µs). It never waits on a client: a connection whose write
buffer is over the limit skips the push (each one is a full state, so nothing is lost that a
later push does not carry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

from ingest.simulator.binance.connection import BinanceConnection
from ingest.simulator.binance.names import StreamSpec
from ingest.simulator.binance.quotes import Book, KlineBuilder, TickerBuilder, in_unit
from ingest.simulator.binance.settings import BinanceSimulatorSettings
from ingest.simulator.binance.tape import Tape
from ingest.simulator.binance.wire import Variant, frame

logger = logging.getLogger(__name__)

QUOTE_KINDS = ("depth", "bookTicker", "ticker", "kline")


class _Due:
    __slots__ = ("interval", "kline", "next_at", "spec", "ticker")

    def __init__(self, spec: StreamSpec, interval: float, next_at: float) -> None:
        self.spec = spec
        self.interval = interval
        self.next_at = next_at
        self.kline: KlineBuilder | None = None
        self.ticker: TickerBuilder | None = None


class QuoteFeed:
    """Pushes for every subscribed quote stream; run() is its task, owned by the simulator."""

    def __init__(
        self,
        settings: BinanceSimulatorSettings,
        tapes: dict[str, Tape],
        subscribers: dict[str, set[BinanceConnection]],
        counters: Counter[str],
    ) -> None:
        self._settings = settings
        self._tapes = tapes
        self._books = {symbol: Book(tape) for symbol, tape in tapes.items()}
        self._subscribers = subscribers
        self._counters = counters
        self._due: dict[str, _Due] = {}
        self._changed = asyncio.Event()

    def add(self, spec: StreamSpec) -> None:
        """A connection subscribed to `spec`: make sure it is pushed (the first push right away)."""
        if spec.name in self._due:
            return
        interval = self._interval(spec)
        if interval <= 0:
            return
        self._due[spec.name] = _Due(spec, interval, time.time())
        self._changed.set()

    def poke(self) -> None:
        """Subscribers changed: streams nobody listens to any more are dropped on the next turn."""
        self._changed.set()

    def _interval(self, spec: StreamSpec) -> float:
        s = self._settings
        if spec.kind == "depth":
            rate = s.depth_per_second or (10.0 if spec.speed_ms == 100 else 1.0)
            return 1.0 / rate
        if spec.kind == "bookTicker":
            return 1.0 / s.book_ticker_per_second if s.book_ticker_per_second > 0 else 0.0
        if spec.kind == "ticker":
            return 1.0 / s.ticker_per_second if s.ticker_per_second > 0 else 0.0
        if s.kline_update_seconds is not None:
            return s.kline_update_seconds
        return 1.0 if spec.interval == "1s" else 2.0

    async def run(self) -> None:
        """Push every due stream, then sleep until the next one is due (wall clock: klines
        close on UTC boundaries)."""
        while True:
            self._changed.clear()
            for name in [n for n in self._due if not self._subscribers.get(n)]:
                del self._due[name]  # nobody listens any more; a new subscriber starts afresh
            if not self._due:
                await self._changed.wait()
                continue
            wait = min(d.next_at for d in self._due.values()) - time.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()
                continue
            now = time.time()
            for due in list(self._due.values()):
                if due.next_at <= now:
                    self._push(due, time.time_ns() // 1000)
                    due.next_at += due.interval
                    if due.next_at <= now:  # behind after a stall: no catch-up burst
                        due.next_at = now + due.interval
                    if due.kline is not None:  # wake at the close to send x=true on time
                        due.next_at = min(due.next_at, (due.kline.end_ms + 1) / 1000 + 0.001)

    def _payloads(self, due: _Due, now_us: int) -> list[dict[str, Any]]:
        spec = due.spec
        tape = self._tapes[spec.symbol]
        book = self._books[spec.symbol]
        if spec.kind == "depth":
            return [book.depth(spec.levels)]
        if spec.kind == "bookTicker":
            return [book.book_ticker()]
        if spec.kind == "ticker":
            if due.ticker is None:
                due.ticker = TickerBuilder(tape, book)
            return [due.ticker.build(now_us)]
        if due.kline is None:
            due.kline = KlineBuilder(tape, spec.interval, now_us)
        return due.kline.build(now_us)

    def _push(self, due: _Due, now_us: int) -> None:
        writers = [c for c in self._subscribers.get(due.spec.name, ()) if c.writable()]
        if not writers:
            return
        payloads = self._payloads(due, now_us)
        timed = due.spec.kind in ("ticker", "kline")
        frames: dict[Variant, bytes] = {}
        limit = self._settings.write_limit
        for conn in writers:
            if conn.transport.get_write_buffer_size() > limit:
                self._counters["quotes_skipped"] += 1
                continue
            data = frames.get(conn.variant)
            if data is None:
                combined, micro = conn.variant
                data = b"".join(
                    frame(due.spec.name, in_unit(p, micro) if timed else p, combined) for p in payloads
                )
                frames[conn.variant] = data
            conn.transport.write(data)
            self._counters[due.spec.kind] += len(payloads)


def log_feed_failure(task: asyncio.Task[None]) -> None:
    """Done-callback: a feed that died of a bug says so instead of silently going quiet."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("binance simulator quote feed stopped", exc_info=task.exception())
