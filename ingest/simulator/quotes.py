"""Generated books5 and tickers payloads for one (connection, instId), built around the
last trade price. Pure: no I/O and no clock, the caller passes the time.

Prices are Decimal-exact: the tick is the last price's own precision (0.1 for the
generated 6xxxx.x trades), best bid = last price, best ask = last price + one tick.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

DEPTH = 5
FIRST_SEQ_ID = 1_000_000
# Exact decimal sizes (1e-8 units, never zero), picked by a push counter.
_SIZES = tuple(f"{u // 10**8}.{u % 10**8:08d}" for u in (k * 7_368_787 % 299_999_999 + 1 for k in range(97)))
_BASE_VOLUME = Decimal("1000")


def _tick(price: Decimal) -> Decimal:
    exponent = price.as_tuple().exponent
    return Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)


class BookBuilder:
    """books5 snapshots for one instId: a fresh seqId chain starting at prevSeqId -1."""

    def __init__(self, inst_id: str) -> None:
        self.inst_id = inst_id
        self._seq = FIRST_SEQ_ID
        self._prev = -1
        self._pushes = 0
        self._ts = 0

    def build(self, last_price: str, now_ms: int) -> bytes:
        """One books5 push (JSON payload) around `last_price`."""
        last = Decimal(last_price)
        tick = _tick(last)
        k = self._pushes
        self._pushes += 1
        asks = [self._level(last + tick * (1 + i), k + i) for i in range(DEPTH)]
        bids = [self._level(last - tick * i, k + 50 + i) for i in range(DEPTH)]
        self._ts = max(self._ts, now_ms)
        # OKX seqIds grow with every book change, not by one per push.
        seq = self._seq + 1 + k % 3
        item: dict[str, Any] = {
            "asks": asks,
            "bids": bids,
            "instId": self.inst_id,
            "ts": str(self._ts),
            "checksum": 0,
            "prevSeqId": self._prev,
            "seqId": seq,
        }
        self._prev = self._seq = seq
        return orjson.dumps({"arg": {"channel": "books5", "instId": self.inst_id}, "data": [item]})

    @staticmethod
    def _level(price: Decimal, k: int) -> list[str]:
        return [str(price), _SIZES[k % len(_SIZES)], "0", str(1 + k % 9)]


class TickerBuilder:
    """tickers pushes for one instId; 24h figures start at the first price seen."""

    def __init__(self, inst_id: str) -> None:
        self.inst_id = inst_id
        self._open: Decimal | None = None
        self._high = self._low = Decimal(0)
        self._vol = _BASE_VOLUME
        self._vol_ccy = Decimal(0)
        self._pushes = 0
        self._ts = 0

    def build(self, last_price: str, last_size: str, now_ms: int) -> bytes:
        """One tickers push (JSON payload): last trade, best bid/ask, 24h statistics."""
        last = Decimal(last_price)
        tick = _tick(last)
        if self._open is None:
            self._open = self._high = self._low = last
            self._vol_ccy = _BASE_VOLUME * last
        self._high = max(self._high, last)
        self._low = min(self._low, last)
        size = Decimal(last_size)
        self._vol += size
        self._vol_ccy += size * last
        k = self._pushes
        self._pushes += 1
        self._ts = max(self._ts, now_ms)
        item = {
            "instType": "SPOT",
            "instId": self.inst_id,
            "last": last_price,
            "lastSz": last_size,
            "askPx": str(last + tick),
            "askSz": _SIZES[k % len(_SIZES)],
            "bidPx": str(last),
            "bidSz": _SIZES[(k + 50) % len(_SIZES)],
            "open24h": str(self._open),
            "high24h": str(self._high),
            "low24h": str(self._low),
            "sodUtc0": str(self._open),
            "sodUtc8": str(self._open),
            "volCcy24h": str(self._vol_ccy),
            "vol24h": str(self._vol),
            "ts": str(self._ts),
        }
        return orjson.dumps({"arg": {"channel": "tickers", "instId": self.inst_id}, "data": [item]})
