"""Data-channel handlers: one function per OKX channel, turning `data` arrays into rows.

Each handler takes (arg, data, store_raw_data, rows, rejected) from an already-parsed
frame and appends its rows to `rows`. Unknown fields are ignored. An item of `data` with a
missing or malformed required field is refused alone: `(frame reduced to that item, reason)`
goes to `rejected`, naming the channel and the field, and the frame's other items are kept.
A problem of the frame itself (e.g. a candle frame without arg.instId) raises FrameError
(the caller drops whatever the frame had added).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from ingest.errors import FrameError
from ingest.exchanges.okx.account import account
from ingest.exchanges.okx.book_seq import BookSequencer
from ingest.exchanges.okx.books import books
from ingest.exchanges.okx.channels import CANDLE_CHANNELS, EXCHANGE
from ingest.exchanges.okx.fields import (
    MAX_INT_DIGITS,
    MAX_MS,
    MAX_SYMBOL_CHARS,
    MAX_TRADE_ID_CHARS,
    MIN_MS,
    MS_DIGITS,
    SIDES,
    Kind,
    check_levels,
    check_object,
    check_value,
    is_positive,
)
from ingest.model import DataType
from ingest.rows import DataRow, MarketRow, TradeRow

Rejected = list[tuple[str | bytes, str]]
"""(what was refused, why): a whole frame, or one item of a frame as `{"arg", "data": [item]}`."""

Handler = Callable[[dict[str, Any], list[Any], bool, list[DataRow], Rejected], None]

_TRADE_SPEC = {
    "instId": Kind.SYMBOL,
    "tradeId": Kind.TRADE_ID,
    "px": Kind.POSITIVE,
    "sz": Kind.POSITIVE,
    "side": Kind.SIDE,
    "ts": Kind.MS,
}
_TICKER_SPEC = {"last": Kind.POSITIVE, "ts": Kind.MS}
_TICKER_OPTIONAL = ("askPx", "askSz", "bidPx", "bidSz")

_TRADE = DataType.TRADE


def _symbol(arg: dict[str, Any], where: str) -> str:
    return check_value(f"{where}: arg.instId", Kind.SYMBOL, arg.get("instId"))


def refuse(arg: dict[str, Any], item: object, reason: str, rejected: Rejected) -> None:
    """Dead-letter one item: the frame reduced to it, so it can be parsed again once fixed."""
    rejected.append((orjson.dumps({"arg": arg, "data": [item]}), reason))


# A NamedTuple's generated __new__ is a Python function; tuple.__new__ builds the same row
# without that call (0.28 -> 0.13 µs per row), which counts at 100,000+ trades a second.
_new_row = tuple.__new__


def trades(
    arg: dict[str, Any], data: list[Any], store_raw_data: bool, rows: list[DataRow], rejected: Rejected
) -> None:
    """`trades`: one TradeRow per trade; with store_raw_data also the raw object, kept in
    TradeRow.raw_json (raw_trades.raw_data) and as a MarketRow of type trade (market_data).
    A bad trade is refused alone; the frame's other trades are kept."""
    append = rows.append
    for item in data:
        # Hot path: the common case pays for a handful of lookups and string checks; only
        # a bad trade pays for check_object's precise diagnosis.
        try:
            symbol = item["instId"]
            trade_id = item["tradeId"]
            px = item["px"]
            sz = item["sz"]
            side = item["side"]
            ts = item["ts"]
            ok = (
                symbol.__class__ is str
                and trade_id.__class__ is str
                and 0 < len(symbol) <= MAX_SYMBOL_CHARS
                and 0 < len(trade_id) <= MAX_TRADE_ID_CHARS
                # fields.is_positive's common case inlined (a call per value cost ~60 ns
                # of ~300): a short ASCII plain decimal that is not zero. "." sorts before
                # "0", so a first or last character above "0" is a digit 1-9 (the last one
                # usually is: OKX writes no trailing zeros) and only "0.00"-like values pay
                # for the strip; anything else, a long value included, gets the call.
                and (
                    (
                        len(px) <= MAX_INT_DIGITS
                        and px.isascii()
                        and px.replace(".", "", 1).isdigit()
                        and (px[-1] > "0" or px[0] > "0" or px.strip("0.") != "")
                    )
                    or is_positive(px)
                )
                and (
                    (
                        len(sz) <= MAX_INT_DIGITS
                        and sz.isascii()
                        and sz.replace(".", "", 1).isdigit()
                        and (sz[-1] > "0" or sz[0] > "0" or sz.strip("0.") != "")
                    )
                    or is_positive(sz)
                )
                and side in SIDES
                and len(ts) == MS_DIGITS
                and ts.isdigit()
                and ts.isascii()
            )
            ts_ms = int(ts) if ok else 0
        except (KeyError, TypeError, AttributeError):
            ok = False
        if not ok or not MIN_MS <= ts_ms < MAX_MS:
            try:
                check_object("trades", item, _TRADE_SPEC)
                reason = "trades: invalid trade"  # unreachable unless the specs diverge
            except FrameError as exc:
                reason = exc.reason
            refuse(arg, item, reason, rejected)
            continue
        # Cheap checks inline (a helper call per trade cost ~15 % of the parse): counts up to
        # 1,000 are one set lookup, anything else goes through _fill_count, which says the rule.
        # tradeId increases per instrument: it is the trades' own order (trade_seq); an id that
        # is not such a number gives "0" (storage order decides). A non-ASCII digit passes
        # isdigit() but not bigint: the writer dead-letters that row.
        fills = item.get("count", "1")
        if fills.__class__ is not str or fills not in _SMALL_COUNTS:
            try:
                fills = _fill_count(fills)
            except FrameError as exc:
                refuse(arg, item, exc.reason, rejected)
                continue
        seq = trade_id if len(trade_id) <= _MAX_SEQ_DIGITS and trade_id.isdigit() else "0"
        if store_raw_data:
            raw = orjson.dumps(item).decode()
            append(_new_row(TradeRow, (EXCHANGE, symbol, trade_id, px, sz, side, ts_ms, raw, fills, seq)))
            append(_new_row(MarketRow, (EXCHANGE, symbol, _TRADE, ts_ms, raw, trade_id)))
        else:
            # No raw object anywhere (raw_trades.raw_data is NULL): roughly halves bytes
            # per trade and the server's work per row.
            append(_new_row(TradeRow, (EXCHANGE, symbol, trade_id, px, sz, side, ts_ms, "", fills, seq)))


_MAX_COUNT_DIGITS = 9  # fits raw_trades.fill_count (integer)
_MAX_SEQ_DIGITS = 18  # fits raw_trades.trade_seq (bigint)
_SMALL_COUNTS = frozenset(str(n) for n in range(1, 1001))


def _fill_count(count: object) -> str:
    """OKX `count`: the number of fills one push aggregates (absent in older payloads: "1")."""
    if count is None:
        return "1"
    if (
        type(count) is str
        and 0 < len(count) <= _MAX_COUNT_DIGITS
        and count.isdigit()
        and count.isascii()
        and count.lstrip("0") != ""
    ):
        return count
    raise FrameError(f"trades: field 'count' must be a positive integer string, got {count!r:.40}")


def books5(
    arg: dict[str, Any], data: list[Any], store_raw_data: bool, rows: list[DataRow], rejected: Rejected
) -> None:
    """`books5`: every push is a full 5-level snapshot, stored whole as an ORDERBOOK row."""
    for item in data:
        try:
            rows.append(_book(arg, item))
        except FrameError as exc:
            refuse(arg, item, exc.reason, rejected)


def _book(arg: dict[str, Any], item: object) -> MarketRow:
    if type(item) is not dict:
        raise FrameError(f"books5: expected a JSON object, got {type(item).__name__}")
    for field in ("asks", "bids", "ts"):
        if field not in item:
            raise FrameError(f"books5: missing field {field!r}")
    check_levels("books5: asks", item["asks"])
    check_levels("books5: bids", item["bids"])
    ts = check_value("books5: field 'ts'", Kind.MS, item["ts"])
    symbol = item.get("instId") or _symbol(arg, "books5")
    check_value("books5: field 'instId'", Kind.SYMBOL, symbol)
    return MarketRow(EXCHANGE, symbol, DataType.ORDERBOOK, int(ts), orjson.dumps(item).decode())


def tickers(
    arg: dict[str, Any], data: list[Any], store_raw_data: bool, rows: list[DataRow], rejected: Rejected
) -> None:
    """`tickers`: last price, best bid/ask and 24h statistics, stored whole as a TICKER row."""
    for item in data:
        try:
            rows.append(_ticker(arg, item))
        except FrameError as exc:
            refuse(arg, item, exc.reason, rejected)


def _ticker(arg: dict[str, Any], item: object) -> MarketRow:
    obj = check_object("tickers", item, _TICKER_SPEC)
    for field in _TICKER_OPTIONAL:
        # OKX sends "" for an empty side of the book.
        if field in obj:
            check_value(f"tickers: field {field!r}", Kind.NUMBER_OR_EMPTY, obj[field])
    symbol = obj.get("instId") or _symbol(arg, "tickers")
    check_value("tickers: field 'instId'", Kind.SYMBOL, symbol)
    text = orjson.dumps(obj).decode()
    return MarketRow(EXCHANGE, symbol, DataType.TICKER, int(obj["ts"]), text)


_CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "volume_ccy", "volume_ccy_quote")
_CANDLE_KINDS = dict.fromkeys(("open", "high", "low", "close"), Kind.POSITIVE)  # volumes may be 0


def candles(
    interval: str,
    arg: dict[str, Any],
    data: list[Any],
    store_raw_data: bool,
    rows: list[DataRow],
    rejected: Rejected,
) -> None:
    """`candle<interval>`: rows [ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm].

    Only closed candles (confirm "1") become CANDLE rows; a still-open candle is ignored.
    OKX stamps a candle with its bucket START: the row's ts_ms and data["start_ms"] keep
    that stamp, while the SQL candles of this project are stamped at the bucket END.
    """
    where = f"candle{interval}"
    symbol = _symbol(arg, where)
    for values in data:
        try:
            row = _candle(where, interval, symbol, values)
        except FrameError as exc:
            refuse(arg, values, exc.reason, rejected)
            continue
        if row is not None:
            rows.append(row)


def _candle(where: str, interval: str, symbol: str, values: object) -> MarketRow | None:
    if type(values) is not list or len(values) < 9:
        raise FrameError(f"{where}: expected a list of 9 values per candle")
    start = check_value(f"{where}: ts", Kind.MS, values[0])
    for name, value in zip(_CANDLE_FIELDS, values[1:8], strict=True):
        check_value(f"{where}: {name}", _CANDLE_KINDS.get(name, Kind.NUMBER), value)
    confirm = values[8]
    if confirm == "0":
        return None
    if confirm != "1":
        raise FrameError(f"{where}: confirm must be '0' or '1', got {confirm!r:.40}")
    candle: dict[str, Any] = {"interval": interval, "start_ms": int(start)}
    candle.update(zip(_CANDLE_FIELDS, values[1:8], strict=True))
    return MarketRow(EXCHANGE, symbol, DataType.CANDLE, int(start), orjson.dumps(candle).decode())


def build_handlers(sequencer: BookSequencer) -> dict[str, Handler]:
    """The channel -> handler table used by the parser; `books` pushes go through
    `sequencer` (the adapter's, which keeps each instId's chain)."""
    # trades-all pushes one object per fill, the fields of `trades` without count (one fill).
    handlers: dict[str, Handler] = {
        "trades": trades,
        "trades-all": trades,
        "books5": books5,
        "books": partial(books, sequencer),
        "tickers": tickers,
        "account": account,
    }
    for channel, interval in CANDLE_CHANNELS.items():
        handlers[channel] = partial(candles, interval)
    return handlers
