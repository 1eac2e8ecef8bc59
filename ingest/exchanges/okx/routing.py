"""Which symbol an OKX frame is about, found without parsing it (shared connections).

Every OKX push names its instrument in `arg`: {"arg":{"channel":"trades","instId":"BTC-USDT"},
"data":[...]}, and so do subscribe acknowledgements. An error names it, if at all, in its
message text ("Wrong URL or channel:trades,instId:FOO-BAR doesn't exist"). The route key is
the instId as bytes, which is the symbol as configured and stored. An `account` push names
no instrument: its key is the config symbol of its pair, `account` or `account:<CCY>`.
"""

from __future__ import annotations

from ingest.exchanges.fields_common import MAX_SYMBOL_CHARS, json_object
from ingest.exchanges.okx.account import CHANNEL, account_route

_INST_ID = b'"instId":"'
_IN_TEXT = b"instId:"
_TEXT_ENDS = b'," '
# A push's arg comes first: its instId starts within its first bytes.
_ARG_HEAD_BYTES = 96


def route_key(symbol: str) -> bytes:
    return symbol.encode()


def frame_route(frame: bytes) -> bytes | None:
    """The instId a frame is about; None for pongs and frames naming no instrument."""
    start = frame.find(_INST_ID, 0, _ARG_HEAD_BYTES)
    if start >= 0:
        start += len(_INST_ID)
        end = frame.find(b'"', start, start + MAX_SYMBOL_CHARS + 1)
        if end > start:
            return frame[start:end]
    if frame == b"pong":
        return None
    return _parsed_route(frame)


def _parsed_route(frame: bytes) -> bytes | None:
    # Valid JSON in another layout (whitespace, keys reordered), or an error event.
    msg = json_object(frame)
    if msg is None:
        return None
    arg = msg.get("arg")
    if type(arg) is dict and type(arg.get("instId")) is str:
        return str(arg["instId"]).encode()
    if type(arg) is dict and arg.get("channel") == CHANNEL:
        return account_route(arg)  # balances: rare frames, parsed
    text = msg.get("msg")
    if type(text) is str:
        raw = text.encode()
        at = raw.find(_IN_TEXT)
        if at >= 0:
            value = raw[at + len(_IN_TEXT) : at + len(_IN_TEXT) + MAX_SYMBOL_CHARS + 1]
            end = min((i for i in (value.find(c) for c in (b",", b" ", b'"')) if i >= 0), default=len(value))
            return value[:end] or None
    return None
