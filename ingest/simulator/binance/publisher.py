"""The publisher: trades on the clock, written to every <symbol>@trade / @aggTrade subscriber.

One task per simulator. Each step publishes the trades due at `rate` (spread over the symbols
that trade), builds their frames once per way subscribers want them (raw/combined, ms/µs) and
writes them straight to the transports; a connection's write buffer limit is the backpressure.
With settings.weights (`--skew`) the trades due are split by weight (ingest.simulator.skew).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from ingest.simulator.binance import wire
from ingest.simulator.binance.connection import BinanceConnection
from ingest.simulator.binance.settings import BinanceSimulatorSettings
from ingest.simulator.binance.tape import Tape, agg_of
from ingest.simulator.binance.wire import Variant
from ingest.simulator.skew import WeightedShares

logger = logging.getLogger(__name__)

STEP = 0.005  # seconds between publishing steps at a set rate (a batch shares one time)


class Publisher:
    """Publishes every tape's trades; wake() when a trade stream gets a subscriber."""

    def __init__(
        self,
        settings: BinanceSimulatorSettings,
        tapes: dict[str, Tape],
        subscribers: dict[str, set[BinanceConnection]],
        counters: Counter[str],
    ) -> None:
        self._settings = settings
        self._tapes = tapes
        self._subscribers = subscribers
        self._counters = counters
        self._wake = asyncio.Event()
        self._shares: WeightedShares[str] | None = None
        if settings.weights is not None:
            weights = dict(zip(settings.symbols, settings.weights, strict=True))
            self._shares = WeightedShares(weights, cap=settings.batch_trades)

    def wake(self) -> None:
        self._wake.set()

    def _listened(self, tape: Tape) -> bool:
        s = tape.stream_symbol
        return any(
            c.writable() for kind in ("trade", "aggTrade") for c in self._subscribers.get(f"{s}@{kind}", ())
        )

    async def run(self) -> None:
        """Publish trades at settings.rate (as fast as clients read when it is None)."""
        s = self._settings
        loop = asyncio.get_running_loop()
        t0, used, idle = loop.time(), 0, True
        # With weights, a step hands out at least STEP seconds of trades (one loop over the tapes).
        least = 1 if self._shares is None or s.rate is None else max(1, int(s.rate * STEP))
        while True:
            active = [t for t in self._tapes.values() if not t.exhausted() and (s.live or self._listened(t))]
            if not active:
                idle = True
                self._wake.clear()
                await self._wake.wait()
                continue
            if idle:  # pace from now on: no burst for the time nobody listened
                t0, used, idle = loop.time(), 0, False
            if s.rate is None:
                due = s.batch_trades * len(active)
            else:
                due = int(s.rate * (loop.time() - t0)) - used
                if due < least:
                    await asyncio.sleep(max(STEP, (least - due) / s.rate))
                    continue
            now_us = time.time_ns() // 1000
            if self._shares is None:
                share = max(1, due // len(active))
                for tape in active:
                    span = tape.publish(share, now_us)
                    if span is not None:
                        used += span[1] - span[0] + 1
                        self._send(tape, span[0], span[1], now_us)
            else:
                # The whole allowance becomes credit; a tape's unsent fraction stays its credit.
                used += due
                for tape, n in zip(active, self._shares.split(due, [t.symbol for t in active]), strict=True):
                    if n > 0 and (span := tape.publish(n, now_us)) is not None:
                        self._shares.spend(tape.symbol, span[1] - span[0] + 1)
                        self._send(tape, span[0], span[1], now_us)
            await self._drain(active)

    def _send(self, tape: Tape, lo: int, hi: int, now_us: int) -> None:
        counters = self._counters
        counters["published"] += hi - lo + 1
        for kind in ("trade", "aggTrade"):
            name = f"{tape.stream_symbol}@{kind}"
            writers = [c for c in self._subscribers.get(name, ()) if c.writable()]
            if not writers:
                continue
            frames: dict[Variant, bytes] = {}
            if kind == "trade":
                trades = tape.trades(lo, hi)
                for conn in writers:
                    data = frames.get(conn.variant)
                    if data is None:
                        combined, micro = conn.variant
                        data = b"".join(
                            wire.frame(name, wire.trade(t, now_us, micro), combined) for t in trades
                        )
                        frames[conn.variant] = data
                    conn.transport.write(data)
                counters["trades"] += len(trades) * len(writers)
            else:
                aggs = tape.aggregates(agg_of(lo), agg_of(hi))
                for conn in writers:
                    data = frames.get(conn.variant)
                    if data is None:
                        combined, micro = conn.variant
                        data = b"".join(
                            wire.frame(name, wire.agg_trade(a, now_us, micro), combined) for a in aggs
                        )
                        frames[conn.variant] = data
                    conn.transport.write(data)
                counters["aggTrades"] += len(aggs) * len(writers)

    async def _drain(self, active: list[Tape]) -> None:
        limit = self._settings.write_limit
        waiting = {
            c
            for tape in active
            for kind in ("trade", "aggTrade")
            for c in self._subscribers.get(f"{tape.stream_symbol}@{kind}", ())
            if c.writable() and c.transport.get_write_buffer_size() > limit
        }
        if not waiting:
            await asyncio.sleep(0)  # let answers, pings and closes through
            return
        # A connection that dies while we wait is dropped from the streams by its handler.
        await asyncio.gather(*(c.drain() for c in waiting), return_exceptions=True)


def log_publisher_failure(task: asyncio.Task[None]) -> None:
    """Done-callback: a publisher that died of a bug says so instead of silently stopping."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("binance simulator publisher stopped", exc_info=task.exception())
