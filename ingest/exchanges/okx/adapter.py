"""OkxAdapter: the ExchangeAdapter for OKX v5 market data and account balances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from ingest.config.secrets import ExchangeCredentials
from ingest.errors import FrameError
from ingest.exchanges.base import Control, FrameResult, Keepalive, ParsedBatch, Subscription
from ingest.exchanges.okx import routing
from ingest.exchanges.okx.book_seq import BookSequencer
from ingest.exchanges.okx.channels import EXCHANGE
from ingest.exchanges.okx.control import PONG, event_control
from ingest.exchanges.okx.handlers import build_handlers
from ingest.exchanges.okx.subscribe import build_subscriptions
from ingest.exchanges.okx.subscribe import combine as combine_subscriptions
from ingest.model import DataType
from ingest.rows import DataRow, MarketRow, TradeRow

# What a frame the fast path cannot take raises on its way (bad JSON is a ValueError, a
# missing key a KeyError, a wrong type a TypeError or AttributeError, a bad value a
# FrameError): such a frame gets the precise path, which finds the reason.
_NOT_FAST = (ValueError, KeyError, TypeError, AttributeError, FrameError)


# JSON's escape for NUL: orjson decodes it, but PostgreSQL text and jsonb refuse it, so a
# frame carrying it (even in a field we ignore, kept in raw_data) is refused here rather
# than by the database, where it would make the writer bisect a whole batch.
_NUL_TEXT = "\\u0000"
_NUL_BYTES = b"\\u0000"
# An int: `92 in frame` is one memchr (~20 ns); `b"\\" in frame` goes through the
# substring search (~160 ns a frame). A str frame raises TypeError: the slow path.
_BACKSLASH = ord("\\")


def _carries_nul(frame: str | bytes) -> bool:
    return _NUL_BYTES in frame if isinstance(frame, bytes) else _NUL_TEXT in frame


class OkxAdapter:
    """Builds OKX v5 subscriptions and parses OKX v5 frames; does no I/O."""

    name = EXCHANGE
    # OKX closes a connection after 30 s without traffic from the client; a text "ping"
    # is answered with a text "pong".
    keepalive = Keepalive.TEXT_PING
    ping_text = "ping"
    # OKX documents no streams-per-connection limit (only 64 KB per subscribe request).
    max_streams_per_connection: int | None = None
    combine = staticmethod(combine_subscriptions)
    route_key = staticmethod(routing.route_key)
    frame_route = staticmethod(routing.frame_route)

    def __init__(self) -> None:
        # Per instId: the `books` seqId chain and book (one adapter per collector).
        self.books = BookSequencer()
        self._handlers = build_handlers(self.books)

    def set_book_snapshot_interval(self, seconds: float) -> None:
        """Store a full `books` snapshot from the kept book every `seconds` of exchange time."""
        self.books.snapshot_interval_ms = round(seconds * 1000)

    def subscriptions(
        self,
        symbol: str,
        data_types: Sequence[DataType],
        channels: Mapping[str, str],
        urls: Mapping[str, str],
        credentials: ExchangeCredentials | None = None,
    ) -> list[Subscription]:
        """Subscriptions for `symbol`: /public for trades, books, tickers; /business for
        candles; /private, logged in with `credentials`, for an `account` pair's balances."""
        return build_subscriptions(symbol, data_types, channels, urls, credentials)

    def parse(self, frame: str | bytes, store_raw_data: bool) -> FrameResult:
        """Parse one received frame; raise FrameError(reason) when it is malformed."""
        rows: list[DataRow] = []
        rejected: list[tuple[str | bytes, str]] = []
        control = self._parse_into(frame, store_raw_data, rows, rejected)
        self.books.take_dropped()
        gaps = self.books.take_controls()
        if control is None and gaps:
            control = gaps[0]
        return FrameResult(
            [r for r in rows if type(r) is TradeRow],
            [r for r in rows if type(r) is MarketRow],
            control,
            rejected,
        )

    def parse_batch(self, frames: Sequence[str | bytes], store_raw_data: bool) -> ParsedBatch:
        """Parse received frames into one ParsedBatch; a malformed frame is rejected alone,
        and so is a malformed item (trade, book, ticker, candle) of a good frame.

        Data frames take a fast path (four lookups, then the channel's handler); a control
        frame or anything unusual goes through `parse`'s checks, which give the reason.
        """
        batch = ParsedBatch()
        rows = batch.rows
        rejected = batch.rejected
        handlers = self._handlers
        loads = orjson.loads
        for frame in frames:
            mark = len(rows)
            refused = len(rejected)
            try:
                # A backslash is rare (one byte, searched at memchr speed); only a frame
                # with one pays for the \u0000 search.
                if _BACKSLASH in frame and _carries_nul(frame):
                    raise FrameError("NUL")  # the precise path below says why
                msg = loads(frame)
                arg = msg["arg"]
                data = msg["data"]
                if "action" in msg:  # an incremental book push (books.py)
                    arg = {**arg, "action": msg["action"]}
                if data.__class__ is list and data:
                    handlers[arg["channel"]](arg, data, store_raw_data, rows, rejected)
                    continue
            except _NOT_FAST:
                # a handler may have added rows or refused items before the frame failed
                del rows[mark:]
                del rejected[refused:]
            try:
                control = self._parse_into(frame, store_raw_data, rows, rejected)
            except FrameError as exc:
                del rows[mark:]
                del rejected[refused:]
                rejected.append((frame, exc.reason))
                batch.rejected_frames += 1
                continue
            if control is not None:
                batch.controls.append(control)
        books = self.books
        batch.controls.extend(books.take_controls())
        batch.book_updates_dropped = books.take_dropped()
        return batch

    def _parse_into(
        self,
        frame: str | bytes,
        store_raw_data: bool,
        rows: list[DataRow],
        rejected: list[tuple[str | bytes, str]],
    ) -> Control | None:
        """Add the rows of one frame to `rows` (its refused items to `rejected`), or return
        its control; FrameError when the frame itself is malformed."""
        if frame == "pong" or frame == b"pong":
            return PONG
        if _carries_nul(frame):
            raise FrameError(r"frame contains \u0000, which no PostgreSQL text or jsonb value can hold")
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            raise FrameError("invalid JSON") from None
        if type(msg) is not dict:
            raise FrameError(f"frame is a JSON {type(msg).__name__}, expected an object")
        data = msg.get("data")
        if data is None:
            event = msg.get("event")
            if event is None:
                raise FrameError("frame has neither 'data' nor 'event'")
            if type(event) is not str:
                raise FrameError("field 'event' is not a string")
            return event_control(event, msg)
        arg = msg.get("arg")
        if type(arg) is not dict:
            raise FrameError("data frame without an 'arg' object")
        channel = arg.get("channel")
        if type(channel) is not str:
            raise FrameError("data frame without a string 'arg.channel'")
        handler = self._handlers.get(channel)
        if handler is None:
            raise FrameError(f"unknown channel {channel!r:.40}")
        if type(data) is not list:
            raise FrameError(f"{channel}: 'data' is not a list")
        if not data:
            # OKX never pushes an empty list; refused so every data frame is either stored
            # or dead-lettered.
            raise FrameError(f"{channel}: 'data' is empty")
        if "action" in msg:
            arg = {**arg, "action": msg["action"]}
        handler(arg, data, store_raw_data, rows, rejected)
        return None
