"""Bytes on the wire: OKX control messages and pre-framed WebSocket text frames.

Data frames are framed once, up front, so sending costs one transport write per batch
instead of one protocol call per message. Server-to-client frames are never masked and
the server runs without compression, so the framing is just a 2-10 byte header.
"""

from __future__ import annotations

import struct

import orjson


def text_frame(payload: bytes) -> bytes:
    """A complete, final, unmasked WebSocket text frame carrying `payload` (UTF-8)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def ack(op: str, arg: dict[str, str], conn_id: str) -> str:
    """Subscribe/unsubscribe acknowledgement, as OKX sends it."""
    return orjson.dumps({"event": op, "arg": arg, "connId": conn_id}).decode()


def error(code: str, msg: str, conn_id: str) -> str:
    """An OKX error event."""
    return orjson.dumps({"event": "error", "code": code, "msg": msg, "connId": conn_id}).decode()


def notice(code: str, msg: str, conn_id: str) -> str:
    """An OKX notice event (64008: the connection will be closed soon)."""
    return orjson.dumps({"event": "notice", "code": code, "msg": msg, "connId": conn_id}).decode()


# One example of each way a frame can be broken; inject_malformed() sends these by default.
MALFORMED_FRAMES: tuple[str, ...] = (
    '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":',
    '{"arg":{"channel":"nosuch","instId":"BTC-USDT"},"data":[{}]}',
    '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
    '"tradeId":"1","px":"abc","sz":"1","side":"buy","ts":"1786538760218"}]}',
    '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
    '"tradeId":"1","sz":"1","side":"buy","ts":"1786538760218"}]}',
)
