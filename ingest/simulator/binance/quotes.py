"""Generated depth, bookTicker, 24hrTicker and kline payloads, built from a symbol's tape.

Pure: no I/O and no clock, the caller passes the time (µs). The book sits around the last
trade price with Binance's BTCUSDT tick (0.01): best bid = last price, best ask = one tick
above. Klines and the ticker fold the tape's trades incrementally, value for value.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ingest.simulator.binance.names import KLINE_INTERVALS
from ingest.simulator.binance.tape import Tape, agg_of, agg_values
from ingest.simulator.binance.wire import stamp

TICK = Decimal("0.01")
_EIGHT = Decimal("0.00000001")
_SIZES = tuple(f"{u // 10**8}.{u % 10**8:08d}" for u in (k * 7_368_787 % 299_999_999 + 1 for k in range(97)))
FIRST_UPDATE_ID = 1_000_000


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(_EIGHT):f}"


def last_price(tape: Tape) -> str:
    """The price of the tape's newest trade (of trade 1 before any was published)."""
    return agg_values(agg_of(max(1, tape.published)))[0]


class Book:
    """Top-of-book levels of one symbol; every push is a new book state (a new update id)."""

    def __init__(self, tape: Tape) -> None:
        self._tape = tape
        self.update_id = FIRST_UPDATE_ID

    def levels(self, depth: int) -> tuple[list[list[str]], list[list[str]], int]:
        """(bids, asks, update id) of a fresh book state around the last price."""
        self.update_id += 1 + self.update_id % 3  # ids grow with book changes, not one per push
        last = Decimal(last_price(self._tape))
        k = self.update_id
        bids = [[_fmt(last - TICK * i), _SIZES[(k + i) % 97]] for i in range(depth)]
        asks = [[_fmt(last + TICK * (i + 1)), _SIZES[(k + 50 + i) % 97]] for i in range(depth)]
        return bids, asks, k

    def depth(self, levels: int) -> dict[str, Any]:
        bids, asks, update_id = self.levels(levels)
        return {"lastUpdateId": update_id, "bids": bids, "asks": asks}

    def book_ticker(self) -> dict[str, Any]:
        bids, asks, update_id = self.levels(1)
        symbol = self._tape.symbol
        return {
            "u": update_id,
            "s": symbol,
            "b": bids[0][0],
            "B": bids[0][1],
            "a": asks[0][0],
            "A": asks[0][1],
        }


class _Fold:
    """Running open/high/low/close/volumes over trades first..last."""

    def __init__(self) -> None:
        self.first = self.last = -1
        self.count = 0
        self.open = self.high = self.low = self.close = Decimal(0)
        self.last_qty = "0.00000000"
        self.volume = self.quote = self.taker_volume = self.taker_quote = Decimal(0)

    def add(self, trade_id: int, price: str, qty: str, buyer_maker: bool) -> None:
        p, q = Decimal(price), Decimal(qty)
        if self.count == 0:
            self.first = trade_id
            self.open = self.high = self.low = p
        self.high = max(self.high, p)
        self.low = min(self.low, p)
        self.close = p
        self.last = trade_id
        self.last_qty = qty
        self.count += 1
        self.volume += q
        self.quote += p * q
        if not buyer_maker:  # the taker bought
            self.taker_volume += q
            self.taker_quote += p * q


def kline_start(interval: str, time_ms: int) -> int:
    """Open time (ms) of the `interval` kline holding `time_ms` (weeks open on Monday, UTC)."""
    length = KLINE_INTERVALS[interval]
    if interval == "1M":
        day = datetime.fromtimestamp(time_ms / 1000, UTC)
        return calendar.timegm((day.year, day.month, 1, 0, 0, 0)) * 1000
    if interval == "1w":
        monday = 4 * 86_400_000  # 1970-01-05
        return (time_ms - monday) // length * length + monday
    return time_ms // length * length


def kline_end(interval: str, start_ms: int) -> int:
    """Close time (ms, inclusive) of the kline opened at `start_ms`."""
    if interval == "1M":
        day = datetime.fromtimestamp(start_ms / 1000, UTC)
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000 - 1
    return start_ms + KLINE_INTERVALS[interval] - 1


class KlineBuilder:
    """The klines of one (symbol, interval): updates of the open one, and the closing one."""

    def __init__(self, tape: Tape, interval: str, now_us: int) -> None:
        self._tape = tape
        self.interval = interval
        self.start_ms = kline_start(interval, now_us // 1000)
        self.end_ms = kline_end(interval, self.start_ms)
        self._next_id = tape.first_at_or_after(self.start_ms * 1000)
        self._fold = _Fold()
        self._prev_close = Decimal(last_price(tape))

    def build(self, now_us: int) -> list[dict[str, Any]]:
        """The pushes due at `now_us`: the closing kline (x true) if its interval ended, then
        an update of the open one (x false); times in µs (in_unit() converts)."""
        out: list[dict[str, Any]] = []
        while now_us // 1000 > self.end_ms:
            self._take(self.end_ms)
            out.append(self._payload(now_us, closed=True))
            self._prev_close = self._fold.close if self._fold.count else self._prev_close
            self.start_ms = self.end_ms + 1
            self.end_ms = kline_end(self.interval, self.start_ms)
            self._fold = _Fold()
        self._take(now_us // 1000)
        out.append(self._payload(now_us, closed=False))
        return out

    def _take(self, until_ms: int) -> None:
        for t in self._tape.trades(self._next_id, self._tape.published):
            if t.time_ms > until_ms:
                break
            self._next_id = t.trade_id + 1
            if t.time_ms >= self.start_ms:
                self._fold.add(t.trade_id, t.price, t.qty, t.buyer_maker)

    def _payload(self, now_us: int, *, closed: bool) -> dict[str, Any]:
        f = self._fold
        empty = f.count == 0
        o, h, low, c = (self._prev_close,) * 4 if empty else (f.open, f.high, f.low, f.close)
        return {
            "e": "kline",
            "E": now_us,
            "s": self._tape.symbol,
            "k": {
                "t": self.start_ms * 1000,
                "T": self.end_ms * 1000 + 999,
                "s": self._tape.symbol,
                "i": self.interval,
                "f": f.first,
                "L": f.last,
                "o": _fmt(o),
                "c": _fmt(c),
                "h": _fmt(h),
                "l": _fmt(low),
                "v": _fmt(f.volume),
                "n": f.count,
                "x": closed,
                "q": _fmt(f.quote),
                "V": _fmt(f.taker_volume),
                "Q": _fmt(f.taker_quote),
                "B": "0",
            },
        }


def in_unit(payload: dict[str, Any], micro: bool) -> dict[str, Any]:
    """A kline/ticker payload built in µs (E, t, T, O, C) converted to the connection's unit."""
    if micro:
        return payload
    out = dict(payload)
    for key in ("E", "O", "C"):
        if key in out:
            out[key] = stamp(out[key], False)
    if "k" in out:
        k = dict(out["k"])
        k["t"], k["T"] = stamp(k["t"], False), stamp(k["T"], False)
        out["k"] = k
    return out


class TickerBuilder:
    """24hrTicker pushes of one symbol, over every trade the tape still holds."""

    def __init__(self, tape: Tape, book: Book) -> None:
        self._tape = tape
        self._book = book
        self._next_id = tape.oldest()
        self._fold = _Fold()
        self._open_us = 0

    def build(self, now_us: int) -> dict[str, Any]:
        """One 24hrTicker payload (times in µs; in_unit() converts)."""
        f = self._fold
        for t in self._tape.trades(self._next_id, self._tape.published):
            if f.count == 0:
                self._open_us = t.time_us
            f.add(t.trade_id, t.price, t.qty, t.buyer_maker)
            self._next_id = t.trade_id + 1
        bids, asks, _ = self._book.levels(1)
        last = f.close if f.count else Decimal(last_price(self._tape))
        opened = f.open if f.count else last
        change = last - opened
        percent = (change * 100 / opened).quantize(Decimal("0.001")) if opened else Decimal("0.000")
        average = f.quote / f.volume if f.volume else last
        return {
            "e": "24hrTicker",
            "E": now_us,
            "s": self._tape.symbol,
            "p": _fmt(change),
            "P": f"{percent:f}",
            "w": _fmt(average),
            "x": _fmt(opened),
            "c": _fmt(last),
            "Q": f.last_qty,
            "b": bids[0][0],
            "B": bids[0][1],
            "a": asks[0][0],
            "A": asks[0][1],
            "o": _fmt(opened),
            "h": _fmt(f.high if f.count else last),
            "l": _fmt(f.low if f.count else last),
            "v": _fmt(f.volume),
            "q": _fmt(f.quote),
            "O": self._open_us or now_us,
            "C": now_us,
            "F": f.first,
            "L": f.last,
            "n": f.count,
        }
