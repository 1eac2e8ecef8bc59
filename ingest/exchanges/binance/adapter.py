"""BinanceAdapter: the ExchangeAdapter for Binance spot public market data (combined streams).

Decisions (details in the modules named):
- Connections go to <public URL>/stream and subscribe with one SUBSCRIBE frame, so every
  data frame is wrapped as {"stream": "btcusdt@aggTrade", "data": {...}} (streams.py).
- Rows store Binance's uppercase symbol as its payloads spell it ("BTCUSDT"); the config
  may write "BTC-USDT", "btc/usdt" or "BTCUSDT" (streams.wire_symbol).
- Times are read as milliseconds, or as microseconds (timeUnit=MICROSECOND connections)
  when the value has 16 digits, decided per value; rows hold milliseconds (fields.py).
- Partial depth and bookTicker payloads have no time: their rows are stamped with the
  local clock at parse time, `clock` below (handlers.py).
- Closed klines only become CANDLE rows, stamped with the bucket start (handlers.kline).
- Diff-depth streams (depthUpdate) are refused as unsupported: this adapter never
  subscribes to them, so one arriving means a misconfigured connection.
- Binance pings with WebSocket protocol frames, which the websockets library answers by
  itself: keepalive is PROTOCOL_PING and ping_text is empty (no application-level ping).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import orjson

from ingest.config.secrets import ExchangeCredentials
from ingest.errors import FrameError
from ingest.exchanges.base import Control, FrameResult, Keepalive, ParsedBatch, Subscription
from ingest.exchanges.binance import routing
from ingest.exchanges.binance.control import SERVER_SHUTDOWN, response_control, shutdown_control
from ingest.exchanges.binance.handlers import Clock, build_handlers
from ingest.exchanges.binance.streams import EXCHANGE, MAX_STREAMS_PER_CONNECTION, build_subscriptions
from ingest.exchanges.binance.streams import combine as combine_subscriptions
from ingest.exchanges.fields_common import MAX_SYMBOL_CHARS
from ingest.model import DataType
from ingest.rows import DataRow, MarketRow, TradeRow

# What a frame the fast path cannot take raises on its way (bad JSON is a ValueError, a
# missing key a KeyError, a wrong type a TypeError or AttributeError, a bad value a
# FrameError): such a frame gets the precise path, which finds the reason.
_NOT_FAST = (ValueError, KeyError, TypeError, AttributeError, FrameError)

# NUL as OKX handles it (see okx/adapter.py): PostgreSQL text and jsonb cannot hold it, so
# a frame carrying \u0000 anywhere is refused here rather than by the database.
_NUL_TEXT = "\\u0000"
_NUL_BYTES = b"\\u0000"
_BACKSLASH = ord("\\")  # `92 in frame` is one memchr; a str frame raises TypeError: slow path

_DIFF_DEPTH = frozenset({"depth", "depth@100ms", "depth@1000ms"})


def _carries_nul(frame: str | bytes) -> bool:
    return _NUL_BYTES in frame if isinstance(frame, bytes) else _NUL_TEXT in frame


def wall_clock_ms() -> int:
    """Now, in milliseconds since the epoch (the default clock)."""
    return time.time_ns() // 1_000_000


def _unknown_stream(stream: str, kind: str) -> str:
    if kind in _DIFF_DEPTH:
        return (
            f"diff-depth stream {stream!r:.60} is not supported (it needs local book state); "
            "subscribe to depth5, depth10 or depth20 instead"
        )
    return f"unknown stream {stream!r:.60}"


class BinanceAdapter:
    """Builds Binance spot subscriptions and parses Binance combined-stream frames; does no I/O.

    clock: milliseconds now, for the rows of payloads without a time (partial depth,
    bookTicker); tests pass a fixed one."""

    name = EXCHANGE
    # Binance pings every 20 s with protocol ping frames and the websockets library answers
    # them; a protocol ping of ours proves a quiet connection alive. No text ping exists.
    keepalive = Keepalive.PROTOCOL_PING
    ping_text = ""
    max_streams_per_connection: int | None = MAX_STREAMS_PER_CONNECTION
    combine = staticmethod(combine_subscriptions)
    route_key = staticmethod(routing.route_key)
    frame_route = staticmethod(routing.frame_route)

    def __init__(self, clock: Clock = wall_clock_ms) -> None:
        self._handlers = build_handlers(clock)

    def set_book_snapshot_interval(self, seconds: float) -> None:
        """Binance books here are partial-depth snapshots (depth5/10/20): nothing to keep."""

    def subscriptions(
        self,
        symbol: str,
        data_types: Sequence[DataType],
        channels: Mapping[str, str],
        urls: Mapping[str, str],
        credentials: ExchangeCredentials | None = None,
    ) -> list[Subscription]:
        """One Subscription for `symbol`: <urls["public"]>/stream and one SUBSCRIBE frame
        (public streams only: `credentials` are not used)."""
        return build_subscriptions(symbol, data_types, channels, urls)

    def parse(self, frame: str | bytes, store_raw_data: bool) -> FrameResult:
        """Parse one received frame; raise FrameError(reason) when it is malformed."""
        rows: list[DataRow] = []
        control = self._parse_into(frame, store_raw_data, rows)
        return FrameResult(
            [r for r in rows if type(r) is TradeRow],
            [r for r in rows if type(r) is MarketRow],
            control,
        )

    def parse_batch(self, frames: Sequence[str | bytes], store_raw_data: bool) -> ParsedBatch:
        """Parse received frames into one ParsedBatch; a malformed frame is rejected alone.

        Data frames take a fast path (two lookups, then the stream type's handler); a
        control frame or anything unusual goes through `parse`'s checks, which give the reason.
        """
        batch = ParsedBatch()
        rows = batch.rows
        rejected = batch.rejected
        handlers = self._handlers
        loads = orjson.loads
        for frame in frames:
            mark = len(rows)
            try:
                if _BACKSLASH in frame and _carries_nul(frame):
                    raise FrameError("NUL")  # the precise path below says why
                msg = loads(frame)
                wire, _, kind = msg["stream"].partition("@")
                if 0 < len(wire) <= MAX_SYMBOL_CHARS:
                    handlers[kind](wire, msg["data"], store_raw_data, rows)
                    continue
            except _NOT_FAST:
                del rows[mark:]
            try:
                control = self._parse_into(frame, store_raw_data, rows)
            except FrameError as exc:
                del rows[mark:]
                rejected.append((frame, exc.reason))
                batch.rejected_frames += 1
                continue
            if control is not None:
                batch.controls.append(control)
        return batch

    def _parse_into(self, frame: str | bytes, store_raw_data: bool, rows: list[DataRow]) -> Control | None:
        """Add the rows of one frame to `rows`, or return its control; FrameError when the
        frame is malformed."""
        if _carries_nul(frame):
            raise FrameError(r"frame contains \u0000, which no PostgreSQL text or jsonb value can hold")
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            raise FrameError("invalid JSON") from None
        if type(msg) is not dict:
            raise FrameError(f"frame is a JSON {type(msg).__name__}, expected an object")
        if "stream" not in msg:
            return response_control(msg)
        stream = msg["stream"]
        if type(stream) is not str:
            raise FrameError("field 'stream' is not a string")
        if "data" not in msg:
            raise FrameError(f"stream {stream!r:.60}: missing field 'data'")
        data = msg["data"]
        wire, _, kind = stream.partition("@")
        handler = self._handlers.get(kind)
        if handler is None:
            if type(data) is dict and data.get("e") == SERVER_SHUTDOWN:
                return shutdown_control(data)
            raise FrameError(_unknown_stream(stream, kind))
        if not 0 < len(wire) <= MAX_SYMBOL_CHARS:
            raise FrameError(
                f"stream {stream!r:.60}: the symbol before '@' must have 1 to {MAX_SYMBOL_CHARS} characters"
            )
        handler(wire, data, store_raw_data, rows)
        return None
