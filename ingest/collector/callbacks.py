"""Data callbacks, run off the hot path.

The reader only appends rows to a bounded deque; one task owned by the collector turns
them into MarketDataPoint objects and calls the callbacks. A slow or failing callback
therefore slows nobody but itself: when the deque is full, rows are dropped for the
callbacks only (and counted) while storage keeps every row.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.collector.stats import CollectorStatistics
from ingest.model import DataType, MarketDataPoint
from ingest.redact import redact_text
from ingest.rows import MarketRow, TradeRow

logger = logging.getLogger(__name__)

DataCallback = Callable[[MarketDataPoint], Any]


def to_point(row: TradeRow | MarketRow) -> MarketDataPoint:
    """Build the spec's MarketDataPoint from a stored row (prices stay exact strings)."""
    when = datetime.fromtimestamp(row.ts_ms / 1000, UTC)
    if isinstance(row, TradeRow):
        data: dict[str, Any] = {
            "trade_id": row.trade_id,
            "price": row.price,
            "size": row.size,
            "side": row.side,
        }
        return MarketDataPoint(row.exchange, row.symbol, when, DataType.TRADE, data)
    loaded = orjson.loads(row.data_json)
    data = loaded if isinstance(loaded, dict) else {"data": loaded}
    return MarketDataPoint(row.exchange, row.symbol, when, row.data_type, data)


class CallbackDispatcher:
    """Holds the registered callbacks, a bounded row queue and the task that drains it."""

    def __init__(self, name: str, capacity: int, timeout: float, stats: CollectorStatistics) -> None:
        self._name = name
        self._capacity = capacity
        self._timeout = timeout
        self._stats = stats
        self._callbacks: dict[DataType, list[DataCallback]] = {}
        self._queue: deque[TradeRow | MarketRow] = deque()
        self._wakeup = asyncio.Event()
        self.wanted: frozenset[DataType] = frozenset()

    def add(self, data_type: DataType, callback: DataCallback) -> None:
        """Register `callback` for rows of `data_type` (sync or async callables)."""
        self._callbacks.setdefault(data_type, []).append(callback)
        self.wanted = frozenset(self._callbacks)

    def accepts(self, row: TradeRow | MarketRow) -> bool:
        """True when some callback wants this row's data type."""
        if isinstance(row, TradeRow):
            return DataType.TRADE in self.wanted
        return row.data_type in self.wanted

    def offer(self, rows: Iterable[TradeRow | MarketRow]) -> None:
        """Queue rows for the callbacks; drop (and count) what does not fit. Never blocks."""
        queue = self._queue
        for row in rows:
            if len(queue) >= self._capacity:
                self._stats.callback_dropped += 1
                continue
            queue.append(row)
        self._wakeup.set()

    async def run(self) -> None:
        """Drain the queue forever; the collector owns this task and cancels it on stop."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                row = self._queue.popleft()
                data_type = DataType.TRADE if isinstance(row, TradeRow) else row.data_type
                callbacks = self._callbacks.get(data_type, ())
                point = to_point(row)
                for callback in callbacks:
                    await self._call(callback, point)

    async def _call(self, callback: DataCallback, point: MarketDataPoint) -> None:
        self._stats.callback_calls += 1
        try:
            result = callback(point)
            if inspect.isawaitable(result):
                async with asyncio.timeout(self._timeout):
                    await result
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._stats.callback_errors += 1
            logger.warning("%s: data callback %r timed out after %.1fs", self._name, callback, self._timeout)
        except Exception as exc:  # a user callback may raise anything; it must not stop us
            self._stats.callback_errors += 1
            logger.warning(
                "%s: data callback %r raised %s: %s",
                self._name,
                callback,
                type(exc).__name__,
                redact_text(str(exc)),
            )
