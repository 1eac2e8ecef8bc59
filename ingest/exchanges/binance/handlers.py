"""Stream handlers: one function per Binance stream type, turning a `data` object into rows.

Each handler takes (wire_symbol, data, store_raw_data, rows): the lowercase symbol of the
combined stream's name ("btcusdt" of "btcusdt@depth20@100ms"), the payload, and the list
to append to. Every Binance push carries one object, so a malformed one raises
FrameError(reason naming the stream type and the field) before any row is appended, and
the frame is refused whole. Unknown fields are ignored.

Symbols: rows store Binance's uppercase symbol as the payload's `s` spells it ("BTCUSDT");
partial-depth payloads have no `s`, so theirs is the stream name's symbol in uppercase.

Times: see fields.py (milliseconds, or microseconds truncated to milliseconds). Partial
depth and bookTicker payloads carry no time at all: their rows are stamped with the local
clock when the frame is parsed (the adapter's `clock`, injectable for tests), in ms.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from ingest.errors import FrameError
from ingest.exchanges.binance.fields import (
    MAX_ID,
    flag,
    get,
    levels,
    ms,
    ms_or_none,
    number,
    obj_of,
    positive,
    symbol,
    uint,
)
from ingest.exchanges.binance.streams import DEPTH_STREAMS, EXCHANGE, KLINE_INTERVALS, KLINE_STREAMS
from ingest.exchanges.fields_common import MAX_SYMBOL_CHARS, is_positive
from ingest.model import DataType
from ingest.rows import DataRow, MarketRow, TradeRow

Handler = Callable[[str, Any, bool, list[DataRow]], None]
Clock = Callable[[], int]
"""Milliseconds since the epoch, now."""

MAX_FILLS = 999_999_999  # fits raw_trades.fill_count (integer)

_TRADE = DataType.TRADE
_BOOK_TICKER_FIELDS = ("b", "B", "a", "A")
_KLINE_PRICES = (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"))
_KLINE_INTERVALS = frozenset(KLINE_INTERVALS)


# A NamedTuple's generated __new__ is a Python function; tuple.__new__ builds the same row
# without that call (as in okx/handlers.py).
_new_row = tuple.__new__


def _emit_trade(
    obj: Any, trade_id: int, last_fill: int, fills: str, store_raw_data: bool, rows: list[DataRow]
) -> bool:
    """Append the rows of a trade whose ids are checked, if its other fields pass the cheap
    checks; False (nothing appended) otherwise, and the caller finds the reason.

    trade_seq is the id of the trade's last fill (`t` of a trade, `l` of an aggregate): with
    fill_count the row covers fills last - count + 1 .. last, the sequence gap filling
    follows (ingest.exchanges.binance.history; REST serves fills)."""
    try:
        symbol_ = obj["s"]
        price = obj["p"]
        size = obj["q"]
        maker = obj["m"]
        ts_ms = ms_or_none(obj["T"])
    except (KeyError, TypeError):
        return False
    if not (
        type(symbol_) is str
        and 0 < len(symbol_) <= MAX_SYMBOL_CHARS
        and type(price) is str
        and is_positive(price)
        and type(size) is str
        and is_positive(size)
        and type(maker) is bool
        and ts_ms is not None
    ):
        return False
    # m: the buyer is the maker, so the taker (the side the trade is booked to) sold.
    side = "sell" if maker else "buy"
    key = str(trade_id)
    seq = key if last_fill == trade_id else str(last_fill)
    if store_raw_data:
        raw = orjson.dumps(obj).decode()
        rows.append(_new_row(TradeRow, (EXCHANGE, symbol_, key, price, size, side, ts_ms, raw, fills, seq)))
        rows.append(_new_row(MarketRow, (EXCHANGE, symbol_, _TRADE, ts_ms, raw, key)))
    else:
        rows.append(_new_row(TradeRow, (EXCHANGE, symbol_, key, price, size, side, ts_ms, "", fills, seq)))
    return True


def _refuse_trade(where: str, data: Any, id_key: str) -> FrameError:
    """The reason a trade failed the cheap checks, found by the precise ones."""
    obj = obj_of(where, data)
    symbol(where, obj)
    uint(where, obj, id_key)
    if where == "aggTrade":
        _fills(where, obj)
    positive(where, obj, "p")
    positive(where, obj, "q")
    flag(where, obj, "m")
    ms(where, obj, "T")
    return FrameError(f"{where}: invalid trade")  # unreachable unless the checks diverge


def _fills(where: str, obj: Any) -> str:
    """aggTrade: the fills f..l it aggregates, as a decimal string."""
    first = uint(where, obj, "f")
    last = uint(where, obj, "l")
    if not 0 <= last - first < MAX_FILLS:
        raise FrameError(f"{where}: last trade id 'l' {last} is not from first trade id 'f' {first} on")
    return str(last - first + 1)


def trade(wire: str, data: Any, store_raw_data: bool, rows: list[DataRow]) -> None:
    """`<symbol>@trade`: one fill, trade id `t`."""
    try:
        trade_id = data["t"]
        ok = type(trade_id) is int and 0 <= trade_id <= MAX_ID
    except (KeyError, TypeError):
        ok = False
    if not (ok and _emit_trade(data, trade_id, trade_id, "1", store_raw_data, rows)):
        raise _refuse_trade("trade", data, "t")


def agg_trade(wire: str, data: Any, store_raw_data: bool, rows: list[DataRow]) -> None:
    """`<symbol>@aggTrade`: the fills f..l of one taker order at one price, id `a`."""
    try:
        agg_id = data["a"]
        first = data["f"]
        last = data["l"]
        ok = (
            type(agg_id) is int
            and type(first) is int
            and type(last) is int
            and 0 <= agg_id <= MAX_ID
            and 0 <= first <= last <= MAX_ID
            and last - first < MAX_FILLS
        )
    except (KeyError, TypeError):
        ok = False
    if not (ok and _emit_trade(data, agg_id, last, str(last - first + 1), store_raw_data, rows)):
        raise _refuse_trade("aggTrade", data, "a")


def depth(clock: Clock, wire: str, data: Any, store_raw_data: bool, rows: list[DataRow]) -> None:
    """`<symbol>@depth<5|10|20>[@100ms]`: a partial book snapshot, stored whole as ORDERBOOK,
    stamped with the local clock (the payload has no time)."""
    where = "depth"
    obj = obj_of(where, data)
    uint(where, obj, "lastUpdateId")
    levels(where, obj, "bids")
    levels(where, obj, "asks")
    rows.append(MarketRow(EXCHANGE, wire.upper(), DataType.ORDERBOOK, clock(), orjson.dumps(obj).decode()))


def book_ticker(clock: Clock, wire: str, data: Any, store_raw_data: bool, rows: list[DataRow]) -> None:
    """`<symbol>@bookTicker`: best bid and ask, stored whole as ORDERBOOK, stamped with the
    local clock (the payload has no time)."""
    where = "bookTicker"
    obj = obj_of(where, data)
    symbol_ = symbol(where, obj)
    uint(where, obj, "u")
    for name in _BOOK_TICKER_FIELDS:
        number(where, obj, name)
    rows.append(MarketRow(EXCHANGE, symbol_, DataType.ORDERBOOK, clock(), orjson.dumps(obj).decode()))


def ticker(wire: str, data: Any, store_raw_data: bool, rows: list[DataRow]) -> None:
    """`<symbol>@ticker` (24hrTicker): stored whole as TICKER, stamped with the event time E."""
    where = "ticker"
    obj = obj_of(where, data)
    symbol_ = symbol(where, obj)
    ts_ms = ms(where, obj, "E")
    positive(where, obj, "c")
    for name in _BOOK_TICKER_FIELDS:
        if name in obj:
            number(where, obj, name)
    rows.append(MarketRow(EXCHANGE, symbol_, DataType.TICKER, ts_ms, orjson.dumps(obj).decode()))


def kline(wire: str, data: Any, store_raw_data: bool, rows: list[DataRow]) -> None:
    """`<symbol>@kline_<interval>`: a CANDLE row once the candle is closed (k.x true); a
    still-open candle (x false) is checked and ignored, as OKX's unconfirmed candles are.

    Stamped like OKX candles with the bucket START (k.t), kept in data["start_ms"] too."""
    where = "kline"
    obj = obj_of(where, data)
    symbol_ = symbol(where, obj)
    k = obj_of("kline: field 'k'", get(where, obj, "k"))
    where = "kline: k"
    interval = get(where, k, "i")
    if type(interval) is not str or interval not in _KLINE_INTERVALS:
        raise FrameError(f"{where}: field 'i' must be a kline interval such as '1m', got {interval!r:.40}")
    start_ms = ms(where, k, "t")
    ms(where, k, "T")
    candle: dict[str, Any] = {"interval": interval, "start_ms": start_ms}
    for wire_name, name in _KLINE_PRICES:
        candle[name] = positive(where, k, wire_name)
    candle["volume"] = number(where, k, "v")
    candle["volume_ccy_quote"] = number(where, k, "q")
    candle["trade_count"] = uint(where, k, "n")
    if flag(where, k, "x"):
        rows.append(MarketRow(EXCHANGE, symbol_, DataType.CANDLE, start_ms, orjson.dumps(candle).decode()))


def build_handlers(clock: Clock) -> dict[str, Handler]:
    """The stream type -> handler table used by the parser ("aggTrade", "depth20@100ms", ...)."""
    handlers: dict[str, Handler] = {
        "trade": trade,
        "aggTrade": agg_trade,
        "bookTicker": partial(book_ticker, clock),
        "ticker": ticker,
    }
    handlers.update(dict.fromkeys(KLINE_STREAMS, kline))
    handlers.update(dict.fromkeys(DEPTH_STREAMS, partial(depth, clock)))
    return handlers
