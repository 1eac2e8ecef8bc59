"""Connection settings a collector reads from ExchangeCollectorConfig.custom_params.

The spec's ExchangeCollectorConfig has one open slot, `custom_params`. These keys are
understood (every one optional; defaults match config/okx.json's `connection` section):

    urls                   {"public": ws-url, "business": ws-url}: passed to the adapter
    channels               the trading pair's `channels` mapping, passed to the adapter
    ping_interval          seconds of silence before sending the adapter's text ping (25.0)
    pong_timeout           seconds to wait for the pong before reconnecting (10.0)
    max_reconnect_attempts consecutive failed connects before giving up, unless
                           auto_restart is on (5)
    reconnect_delay        first backoff delay in seconds, doubled per failure (5.0)
    max_reconnect_delay    backoff cap in seconds (60.0)
    receive_linger         seconds reading pauses after a read that delivered data, so one
                           wake-up takes many messages (0.02; 0 = off; at most 0.1)
    max_silence            seconds without data after which the collector restarts (60.0)
    buffer_size            callback queue capacity in rows; full -> dropped for callbacks only (1000)
    callback_timeout       seconds an async callback may take before it counts as failed (5.0)
    max_message_bytes      largest message accepted; a bigger one closes the connection
                           with 1009, is counted and its first bytes dead-lettered (1048576)
    dead_letters_per_hour  dead letters kept per hour; the rest are counted (1000; 0 = none)
    name                   collector name (default "<exchange>-<symbol>", lower-case exchange)
    sink                   the RowSink rows are put to (normally the CopyWriter); without one,
                           rows only reach callbacks (see ExchangeFactory.create_collector)

A ws:// URL is accepted only for loopback hosts (the simulator); everything else needs wss://.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ingest.errors import ConfigError

_FLOAT_KEYS = (
    "ping_interval",
    "pong_timeout",
    "reconnect_delay",
    "max_reconnect_delay",
    "max_silence",
    "callback_timeout",
)
_INT_KEYS = ("max_reconnect_attempts", "buffer_size", "max_message_bytes", "dead_letters_per_hour")
_ZERO_OK = frozenset({"max_reconnect_attempts", "dead_letters_per_hour"})
MAX_LINGER = 0.1
KNOWN_KEYS = frozenset(
    {*_FLOAT_KEYS, *_INT_KEYS, "receive_linger", "urls", "channels", "name", "sink"},
)


@dataclass(frozen=True, slots=True)
class CollectorParams:
    """Validated connection and health settings of one collector."""

    name: str
    urls: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    ping_interval: float = 25.0
    pong_timeout: float = 10.0
    max_reconnect_attempts: int = 5
    reconnect_delay: float = 5.0
    max_reconnect_delay: float = 60.0
    max_silence: float = 60.0
    buffer_size: int = 1000
    callback_timeout: float = 5.0
    receive_linger: float = 0.02
    max_message_bytes: int = 2**20
    dead_letters_per_hour: int = 1000


def default_name(exchange: str, symbol: str) -> str:
    """The collector name used when custom_params has none: 'okx-BTC-USDT'."""
    return f"{exchange.strip().lower()}-{symbol}"


def parse_params(exchange: str, symbol: str, custom: Mapping[str, Any] | None) -> CollectorParams:
    """Validate custom_params; raise ConfigError naming the key, what was expected and found."""
    custom = dict(custom or {})
    unknown = sorted(set(custom) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"collector {exchange}/{symbol}: unknown custom_params key(s) {unknown}; "
            f"known keys are {sorted(KNOWN_KEYS)}"
        )
    values: dict[str, Any] = {}
    for key in _FLOAT_KEYS:
        if key in custom:
            values[key] = _positive(exchange, symbol, key, custom[key], float)
    for key in _INT_KEYS:
        if key in custom:
            values[key] = _positive(exchange, symbol, key, custom[key], int, zero_ok=key in _ZERO_OK)
    if "receive_linger" in custom:
        linger = custom["receive_linger"]
        if not isinstance(linger, int | float) or isinstance(linger, bool) or not 0 <= linger <= MAX_LINGER:
            raise ConfigError(
                f"collector {exchange}/{symbol}: custom_params.receive_linger must be a number of "
                f"seconds from 0 to {MAX_LINGER}, found {linger!r}"
            )
        values["receive_linger"] = float(linger)
    urls = _str_map(exchange, symbol, "urls", custom.get("urls", {}))
    for url in urls.values():
        check_url(url)
    channels = _str_map(exchange, symbol, "channels", custom.get("channels", {}))
    name = custom.get("name", default_name(exchange, symbol))
    if not isinstance(name, str) or not name:
        raise ConfigError(f"collector {exchange}/{symbol}: custom_params.name must be a non-empty string")
    params = CollectorParams(name=name, urls=urls, channels=channels, **values)
    if params.max_reconnect_delay < params.reconnect_delay:
        raise ConfigError(
            f"collector {name}: max_reconnect_delay ({params.max_reconnect_delay}) must be "
            f">= reconnect_delay ({params.reconnect_delay})"
        )
    return params


def check_url(url: str) -> None:
    """Accept wss:// anywhere and ws:// only on loopback; ConfigError otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "wss" and parts.hostname:
        return
    if parts.scheme == "ws" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise ConfigError(
        f"websocket URL {url!r} is not allowed: use wss:// (plain ws:// is accepted only for "
        "loopback hosts such as the local simulator)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _positive(
    exchange: str, symbol: str, key: str, value: Any, kind: type[Any], zero_ok: bool = False
) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok or value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(
            f"collector {exchange}/{symbol}: custom_params.{key} must be a positive "
            f"{kind.__name__}, found {value!r}"
        )
    return kind(value)


def _str_map(exchange: str, symbol: str, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(
            f"collector {exchange}/{symbol}: custom_params.{key} must map strings to strings, "
            f"found {type(value).__name__}"
        )
    return dict(value)
