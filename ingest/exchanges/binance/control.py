"""Binance frames that are not market data (request answers, errors, shutdown notices) as Controls.

- {"result": null, "id": 1}: a SUBSCRIBE (or UNSUBSCRIBE) request succeeded -> SUBSCRIBED;
  a non-null result answers a query (LIST_SUBSCRIPTIONS, GET_PROPERTY) -> INFO.
- {"code": 2, "msg": "Invalid request: ...", "id": 1}, as the streams documentation lists
  its errors, or {"error": {"code": 2, "msg": "..."}, "id": 1}, as the server also sends
  them -> ERROR with "code: msg (request id n)".
- serverShutdown ({"e": "serverShutdown", "E": ...}, wrapped as stream "!serverShutdown" on a
  combined connection): the server will close this connection -> RECONNECT_SOON.
"""

from __future__ import annotations

from typing import Any

from ingest.errors import FrameError
from ingest.exchanges.base import Control, ControlKind

SERVER_SHUTDOWN = "serverShutdown"


def shutdown_control(event: dict[str, Any]) -> Control:
    """The Control for a serverShutdown event."""
    return Control(ControlKind.RECONNECT_SOON, f"serverShutdown announced at E={event.get('E', '?')!r:.40}")


def _request(msg: dict[str, Any]) -> str:
    return f"request id {msg.get('id')!r:.40}"


def _request_id(msg: dict[str, Any]) -> str | None:
    # Ids are ints or strings on the wire; ours are ints, compared as their text.
    value = msg.get("id")
    return None if value is None or type(value) is bool else str(value)[:40]


def response_control(msg: dict[str, Any]) -> Control:
    """The Control for an unwrapped frame (no "stream"): a request's answer or a raw-stream
    serverShutdown; FrameError for anything else."""
    if msg.get("e") == SERVER_SHUTDOWN:
        return shutdown_control(msg)
    error = msg.get("error")
    request_id = _request_id(msg)
    if type(error) is dict:
        return Control(
            ControlKind.ERROR,
            f"{error.get('code', '?')}: {error.get('msg', '')} ({_request(msg)})",
            request_id,
        )
    if "code" in msg:
        detail = f"{msg['code']}: {msg.get('msg', '')} ({_request(msg)})"
        return Control(ControlKind.ERROR, detail, request_id)
    if "result" in msg and "id" in msg:
        result = msg["result"]
        if result is None:
            return Control(ControlKind.SUBSCRIBED, _request(msg), request_id)
        return Control(ControlKind.INFO, f"{_request(msg)} answered {result!r:.80}", request_id)
    if "e" in msg:
        raise FrameError(
            f"event {msg['e']!r:.40} outside a combined stream; connect to /stream, whose "
            'frames are {"stream": ..., "data": ...}'
        )
    raise FrameError("frame has neither 'stream' and 'data' nor 'result', 'code' or 'error' with 'id'")
