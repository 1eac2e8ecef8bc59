"""The tape: the trades of one symbol, published in batches, rebuilt from their ids on demand.

Pure (no I/O, no clock: the caller passes the time). Trade ids run 1, 2, 3, ... per symbol.
Aggregate trades (one taker order) cover runs of 1, 2, 3, 1, 2, 3, ... consecutive trades, all
at the aggregate's price and side; a batch always ends on an aggregate boundary, so every trade
of an aggregate has the same time. Prices and sizes come from the venue-neutral tables of
ingest.simulator.generator, written with Binance's 8 decimals.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

from ingest.errors import ConfigError
from ingest.simulator.generator import trade_values

_SPAN_START = (0, 1, 3)  # offsets of the three aggregates in each run of 6 trades
_AGG_OF_OFFSET = (0, 1, 1, 2, 2, 2)


class PublishedTrade(NamedTuple):
    """One trade as the simulator published it on <symbol>@trade, value for value."""

    symbol: str
    trade_id: int
    price: str
    qty: str
    time_us: int
    buyer_maker: bool
    agg_id: int

    @property
    def time_ms(self) -> int:
        return self.time_us // 1000


class AggTrade(NamedTuple):
    """One aggregate trade: trades first..last (inclusive) of one taker order."""

    symbol: str
    agg_id: int
    price: str
    qty: str
    first: int
    last: int
    time_us: int
    buyer_maker: bool


def agg_of(trade_id: int) -> int:
    """The aggregate trade id (from 1) that trade `trade_id` belongs to."""
    run, offset = divmod(trade_id - 1, 6)
    return 3 * run + _AGG_OF_OFFSET[offset] + 1


def agg_span(agg_id: int) -> tuple[int, int]:
    """First and last trade id of aggregate `agg_id`."""
    run, j = divmod(agg_id - 1, 3)
    first = 1 + 6 * run + _SPAN_START[j]
    return first, first + j


def agg_values(agg_id: int) -> tuple[str, bool]:
    """(price with 8 decimals, buyer is maker) shared by every trade of aggregate `agg_id`."""
    price, _, side = trade_values(agg_id)
    return price + "0000000", side == "sell"  # taker sells: the buyer was the maker


def qty_of(trade_id: int) -> str:
    return trade_values(trade_id)[1]


class Tape:
    """The published trades of one symbol. `keep`: how many of the newest trades stay
    retrievable (None: all); `limit`: trades ever published (None: endless)."""

    def __init__(self, symbol: str, *, limit: int | None, keep: int | None) -> None:
        if not symbol.isalnum() or symbol.upper() != symbol:
            raise ConfigError(f"simulator symbol {symbol!r} is not a Binance symbol like BTCUSDT")
        self.symbol = symbol
        self.stream_symbol = symbol.lower()
        self._limit = limit
        self._keep = keep
        self.published = 0  # id of the newest published trade (0: none yet)
        self._starts: list[int] = []  # first trade id of each kept batch
        self._times: list[int] = []  # its time in microseconds

    def exhausted(self) -> bool:
        return self._limit is not None and self.published >= self._limit

    def publish(self, count: int, now_us: int) -> tuple[int, int] | None:
        """Publish at least `count` trades (rounded up to a whole aggregate, never past `limit`)
        at time `now_us`: (first id, last id), or None when nothing is left to publish."""
        lo = self.published + 1
        hi = agg_span(agg_of(lo + max(1, count) - 1))[1]
        if self._limit is not None:
            hi = min(hi, self._limit)
        if hi < lo:
            return None
        ts = max(now_us, self._times[-1] if self._times else 0)
        self._starts.append(lo)
        self._times.append(ts)
        self.published = hi
        self._trim()
        return lo, hi

    def _trim(self) -> None:
        if self._keep is None or len(self._starts) < 1024:
            return
        oldest = self.published - self._keep + 1
        drop = bisect.bisect_right(self._starts, oldest) - 1
        if drop > 512:
            del self._starts[:drop]
            del self._times[:drop]

    def oldest(self) -> int:
        """The oldest trade id still retrievable (published + 1 when there is none)."""
        if not self._starts:
            return self.published + 1
        first = self._starts[0]
        if self._keep is not None:
            first = max(first, self.published - self._keep + 1)
        return first

    def time_of(self, trade_id: int) -> int:
        """Time (µs) of a retrievable trade."""
        return self._times[bisect.bisect_right(self._starts, trade_id) - 1]

    def first_at_or_after(self, time_us: int) -> int:
        """The id of the first kept trade published at or after `time_us` (published + 1: none)."""
        k = bisect.bisect_left(self._times, time_us)
        return self._starts[k] if k < len(self._starts) else self.published + 1

    def trades(self, lo: int, hi: int) -> list[PublishedTrade]:
        """Trades lo..hi (inclusive), clipped to what is retrievable, oldest first."""
        lo, hi = max(lo, self.oldest()), min(hi, self.published)
        out: list[PublishedTrade] = []
        if hi < lo:
            return out
        k = bisect.bisect_right(self._starts, lo) - 1
        next_start = self._starts[k + 1] if k + 1 < len(self._starts) else hi + 1
        for i in range(lo, hi + 1):
            while i >= next_start:
                k += 1
                next_start = self._starts[k + 1] if k + 1 < len(self._starts) else hi + 1
            a = agg_of(i)
            price, maker = agg_values(a)
            out.append(PublishedTrade(self.symbol, i, price, qty_of(i), self._times[k], maker, a))
        return out

    def aggregates(self, lo: int, hi: int) -> list[AggTrade]:
        """Aggregate trades `lo`..`hi` (aggregate ids, inclusive) whose trades are retrievable."""
        out: list[AggTrade] = []
        oldest = self.oldest()
        for a in range(max(1, lo), hi + 1):
            first, last = agg_span(a)
            if self._limit is not None:
                last = min(last, self._limit)  # the last aggregate of a bounded tape may be short
            if first < oldest:
                continue
            if first > last or last > self.published:
                break
            price, maker = agg_values(a)
            qty = _sum_qty(first, last)
            out.append(AggTrade(self.symbol, a, price, qty, first, last, self.time_of(first), maker))
        return out


def _sum_qty(first: int, last: int) -> str:
    """The exact sum of trades first..last's sizes (8 decimals, as Binance writes them)."""
    units = 0
    for i in range(first, last + 1):
        whole, frac = qty_of(i).split(".")
        units += int(whole) * 10**8 + int(frac)
    return f"{units // 10**8}.{units % 10**8:08d}"
