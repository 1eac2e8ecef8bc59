"""Stream names: `btcusdt@trade` and friends parsed into what the simulator generates."""

from __future__ import annotations

import re
from typing import NamedTuple

# Kline intervals with a fixed length, in milliseconds ("1M", calendar months, is apart).
KLINE_INTERVALS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 0,
}
TRADE_KINDS = ("trade", "aggTrade")
SHUTDOWN_STREAM = "!serverShutdown"

_NAME = re.compile(
    r"(?P<symbol>[a-z0-9]+)@(?:(?P<simple>trade|aggTrade|bookTicker|ticker)"
    r"|depth(?P<levels>5|10|20)(?:@(?P<speed>100|1000)ms)?|kline_(?P<interval>\w+))"
)


class StreamSpec(NamedTuple):
    """A valid stream name: kind is trade, aggTrade, depth, bookTicker, ticker or kline."""

    name: str
    symbol: str  # upper case, as in payloads
    kind: str
    levels: int = 0  # depth
    speed_ms: int = 1000  # depth
    interval: str = ""  # kline


def parse_stream(name: str, symbols: frozenset[str]) -> StreamSpec | None:
    """The stream `name` names, or None when it is not one this simulator serves."""
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    symbol = m["symbol"].upper()
    if symbol not in symbols:
        return None
    if m["simple"]:
        return StreamSpec(name, symbol, m["simple"])
    if m["levels"]:
        return StreamSpec(name, symbol, "depth", int(m["levels"]), int(m["speed"] or 1000))
    if m["interval"] not in KLINE_INTERVALS:
        return None
    return StreamSpec(name, symbol, "kline", interval=m["interval"])
