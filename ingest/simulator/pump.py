"""The pump: writes pre-built frames to subscribed clients, paced by a rate.

Frames go straight to the transport as complete WebSocket frames, many per write; the
write buffer limit of each connection provides backpressure. With settings.weights
(`--skew`) each step's allowance is split by weight (ingest.simulator.skew) and handed out at
most every SKEW_STEP seconds, so a quiet symbol's fraction of a trade carries over.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter

from ingest.simulator.client import Client
from ingest.simulator.generator import TradeGenerator
from ingest.simulator.settings import SimulatorSettings
from ingest.simulator.skew import WeightedShares
from ingest.simulator.streams import SentTrade, Stream

logger = logging.getLogger(__name__)

SKEW_STEP = 0.005  # seconds of trades handed out per step with weights (one loop over the streams)


class Pump:
    """Sends every subscribed stream's next frames; one instance per simulator, run as a task."""

    def __init__(
        self,
        settings: SimulatorSettings,
        streams: dict[tuple[str, str], Stream],
        subscribers: dict[tuple[str, str], list[Client]],
        counters: Counter[str],
        sent_trades: list[SentTrade],
    ) -> None:
        self.settings = settings
        self._streams = streams
        self._subscribers = subscribers
        self.counters = counters
        self.sent_trades = sent_trades
        self._wake = asyncio.Event()
        self._shares: WeightedShares[tuple[str, str]] | None = None
        if settings.weights is not None:
            weights = {
                (settings.trades_channel, sym): w
                for sym, w in zip(settings.symbols, settings.weights, strict=True)
            }
            self._shares = WeightedShares(
                weights, cap=settings.batch_frames * max(1, settings.trades_per_message)
            )

    def wake(self) -> None:
        """A stream got a subscriber: resume if sleeping."""
        self._wake.set()

    async def run(self) -> None:
        """Write pre-built frames to subscribers, paced by settings.rate."""
        s = self.settings
        keep = s.batch_frames + math.ceil(s.resend_on_resubscribe / max(1, s.trades_per_message))
        loop = asyncio.get_running_loop()
        t0, budget_used, idle = loop.time(), 0, True
        shares = self._shares
        least = 1 if shares is None or s.rate is None else max(1, int(s.rate * SKEW_STEP))
        while True:
            active = [
                (key, stream, writers)
                for key, stream in self._streams.items()
                if (writers := [c for c in self._subscribers.get(key, ()) if c.writable()])
                or (s.live and isinstance(stream, TradeGenerator))
            ]
            if not active:
                idle = True
                await self._sleep_until_woken()
                continue
            if idle:  # pace from now on: no burst to catch up on time nobody listened
                t0, budget_used, idle = loop.time(), 0, False
            allowance = s.batch_frames * max(1, s.trades_per_message) * len(active)  # in trades
            if s.rate is not None:
                allowance = min(allowance, int(s.rate * (loop.time() - t0)) - budget_used)
                if allowance < least:
                    await asyncio.sleep(max(0.001, (least - allowance) / s.rate))
                    continue
            if shares is None:
                share = max(1, allowance // len(active))
                for _, stream, writers in active:
                    budget_used += self._send(stream, writers, share)
                    stream.trim(keep)
            else:
                # The whole allowance becomes credit; what a stream does not send now stays its credit.
                budget_used += allowance
                due = shares.split(allowance, [key for key, _, _ in active])
                for (key, stream, writers), n in zip(active, due, strict=True):
                    while n > 0:  # take() hands out one built chunk at most: ask again
                        sent = self._send(stream, writers, n)
                        if sent == 0:
                            break
                        shares.spend(key, sent)
                        n -= sent
                    stream.trim(keep)
            if all(stream.available() <= 0 and not stream.extend() for _, stream, _ in active):
                # Everything subscribed is exhausted until somebody subscribes again.
                idle = True
                await self._sleep_until_woken()
                continue
            await self._drain(active)

    async def _sleep_until_woken(self) -> None:
        self._wake.clear()
        await self._wake.wait()

    def _send(self, stream: Stream, writers: list[Client], max_units: int) -> int:
        """Write up to `max_units` (trades, or messages for non-trade streams); units used.
        Without writers (a live stream nobody listens to) the trades are published unread."""
        per_frame = max(1, self.settings.trades_per_message) if isinstance(stream, TradeGenerator) else 1
        data, first, frames, trades = stream.take(max(1, max_units // per_frame))
        if frames == 0:
            return 0
        for client in writers:
            client.ws.transport.write(data)
        self.counters["messages"] += frames * len(writers)
        self.counters["trades"] += trades * len(writers)
        if self.settings.record and trades:
            sent = stream.trades_in(first, first + frames)
            for _ in writers:
                self.sent_trades.extend(sent)
        return max(trades, frames)

    async def _drain(self, active: list[tuple[tuple[str, str], Stream, list[Client]]]) -> None:
        limit = self.settings.write_limit
        waiting = {
            c for _, _, writers in active for c in writers if c.ws.transport.get_write_buffer_size() > limit
        }
        if not waiting:
            await asyncio.sleep(0)  # let acks, pings and closes through
            return
        # A connection that dies while we wait is dropped from the stream by its handler.
        await asyncio.gather(*(c.ws.drain() for c in waiting), return_exceptions=True)


def log_pump_failure(task: asyncio.Task[None]) -> None:
    """Done-callback: a pump that died of a bug says so instead of silently stopping."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("simulator pump stopped", exc_info=task.exception())
