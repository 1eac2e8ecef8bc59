"""OKX `event` frames (acks, errors, notices) reduced to Control signals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.exchanges.base import Control, ControlKind

# OKX announces a service upgrade with notice 64008 and closes the connection shortly after.
NOTICE_RECONNECT = "64008"

PONG = Control(ControlKind.PONG, "pong")


def _arg_text(msg: dict[str, Any]) -> str:
    arg = msg.get("arg")
    if type(arg) is not dict:
        return "?"
    channel = arg.get("channel", "?")
    # An instrument's channel names its instId; account a currency, or none (every currency).
    target = arg.get("instId", arg.get("instType", arg.get("ccy")))
    if target is None:
        return f"{channel} (every currency)" if channel == "account" else f"{channel}:?"
    return f"{channel}:{target}"


def _subscribe(msg: dict[str, Any]) -> Control:
    return Control(ControlKind.SUBSCRIBED, _arg_text(msg))


def _unsubscribe(msg: dict[str, Any]) -> Control:
    return Control(ControlKind.INFO, f"unsubscribed {_arg_text(msg)}")


def _error(msg: dict[str, Any]) -> Control:
    return Control(ControlKind.ERROR, f"{msg.get('code', '?')}: {msg.get('msg', '')}")


def _notice(msg: dict[str, Any]) -> Control:
    code = str(msg.get("code", ""))
    kind = ControlKind.RECONNECT_SOON if code == NOTICE_RECONNECT else ControlKind.INFO
    return Control(kind, f"notice {code}: {msg.get('msg', '')}")


def _conn_count(msg: dict[str, Any]) -> Control:
    return Control(
        ControlKind.INFO, f"{msg.get('event')} {msg.get('channel', '?')}: {msg.get('connCount', '?')}"
    )


def _login(msg: dict[str, Any]) -> Control:
    # The link awaits the login's answer itself (OkxLogin); one arriving later is news only.
    return Control(ControlKind.INFO, f"login answer {msg.get('code', '?')}")


EVENT_HANDLERS: dict[str, Callable[[dict[str, Any]], Control]] = {
    "login": _login,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "error": _error,
    "notice": _notice,
    "channel-conn-count": _conn_count,
    "channel-conn-count-error": _conn_count,
}


def event_control(event: str, msg: dict[str, Any]) -> Control:
    """The Control for one event frame; events we do not know are logged, not errors."""
    handler = EVENT_HANDLERS.get(event)
    if handler is None:
        return Control(ControlKind.INFO, f"unhandled event {event!r:.40}")
    return handler(msg)
