"""Which symbol a Binance frame is about, found without parsing it (shared connections).

A combined-stream frame names its stream first: {"stream":"btcusdt@aggTrade","data":{...}};
the route key is the lowercase symbol before "@" (streams.wire_symbol). Answers to requests
({"result":null,"id":7}, errors) name no stream: they are routed by their id.
"""

from __future__ import annotations

from ingest.exchanges.binance.streams import wire_symbol
from ingest.exchanges.fields_common import MAX_SYMBOL_CHARS, json_object

_PREFIX = b'{"stream":"'
_START = len(_PREFIX)


def route_key(symbol: str) -> bytes:
    return wire_symbol(symbol).encode()


def frame_route(frame: bytes) -> bytes | None:
    """The wire symbol a frame's stream is about; None for answers, notices like
    serverShutdown ("!serverShutdown" has no symbol) and malformed frames."""
    if frame.startswith(_PREFIX):
        end = frame.find(b"@", _START, _START + MAX_SYMBOL_CHARS + 1)
        return frame[_START:end] if end > _START else None
    return _parsed_route(frame)


def _parsed_route(frame: bytes) -> bytes | None:
    # Valid JSON in another layout (whitespace, keys reordered).
    msg = json_object(frame)
    stream = None if msg is None else msg.get("stream")
    if type(stream) is not str or "@" not in stream:
        return None
    return stream.partition("@")[0].encode() or None
