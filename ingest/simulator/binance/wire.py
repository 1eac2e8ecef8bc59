"""Bytes on the wire: Binance stream payloads, control responses and pre-built frames.

A payload is built once as a dict and serialised with orjson for each way a connection wants
it: raw (the bare payload) or combined ({"stream": name, "data": payload}), timestamps in
milliseconds or, with timeUnit=MICROSECOND, microseconds.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.simulator.binance.names import SHUTDOWN_STREAM
from ingest.simulator.binance.tape import AggTrade, PublishedTrade
from ingest.simulator.wire import text_frame

Variant = tuple[bool, bool]  # (combined, microseconds)
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


def stamp(time_us: int, micro: bool) -> int:
    """A timestamp in the connection's unit."""
    return time_us if micro else time_us // 1000


def frame(stream: str, payload: dict[str, Any], combined: bool) -> bytes:
    """One complete WebSocket text frame carrying `payload`, wrapped for combined streams."""
    body = {"stream": stream, "data": payload} if combined else payload
    return text_frame(orjson.dumps(body))


def trade(t: PublishedTrade, event_us: int, micro: bool) -> dict[str, Any]:
    """A <symbol>@trade payload."""
    return {
        "e": "trade",
        "E": stamp(event_us, micro),
        "s": t.symbol,
        "t": t.trade_id,
        "p": t.price,
        "q": t.qty,
        "T": stamp(t.time_us, micro),
        "m": t.buyer_maker,
        "M": True,
    }


def agg_trade(a: AggTrade, event_us: int, micro: bool) -> dict[str, Any]:
    """A <symbol>@aggTrade payload."""
    return {
        "e": "aggTrade",
        "E": stamp(event_us, micro),
        "s": a.symbol,
        "a": a.agg_id,
        "p": a.price,
        "q": a.qty,
        "f": a.first,
        "l": a.last,
        "T": stamp(a.time_us, micro),
        "m": a.buyer_maker,
        "M": True,
    }


def server_shutdown(now_us: int, micro: bool, combined: bool) -> bytes:
    """The serverShutdown event, raw or combined (stream "!serverShutdown"), as a frame."""
    return frame(SHUTDOWN_STREAM, {"e": "serverShutdown", "E": stamp(now_us, micro)}, combined)


def result(value: object, request_id: object) -> str:
    """The answer to a method call: {"result": ..., "id": ...}."""
    return orjson.dumps({"result": value, "id": request_id}).decode()


def error(code: int, msg: str, request_id: object = None) -> str:
    """An error answer, as the stream servers send it: {"error": {"code", "msg"}, "id"}."""
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": request_id}).decode()


def unknown_method(method: object, column: int) -> str:
    expected = ", ".join(f"`{m}`" for m in METHODS)
    return (
        f"Invalid request: unknown variant `{method}`, expected one of {expected} at line 1 column {column}"
    )
