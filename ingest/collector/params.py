"""A collector's settings from ExchangeCollectorConfig.custom_params, validated once.

The spec's ExchangeCollectorConfig has one open slot, `custom_params`. Its keys, their
defaults and every rule are those of ingest.config.exchange.CollectorParams (the same
field types as the config file's `connection` and `data_collection` sections, so a value
the file accepts is accepted here and the reverse):

    urls                   the venue's endpoints (OKX: {"public": ws-url, "business": ws-url}),
                           passed to the adapter;
                           wss://, or ws:// only to a loopback host (the simulator)
    channels               the trading pair's `channels` mapping, passed to the adapter
    ping_interval          seconds of silence before sending the adapter's ping (25.0)
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
    max_connection_age     seconds after which a connection is replaced, make before break
                           (None = never; default: the venue's, e.g. Binance 84600)
    max_messages_per_second frames sent per second per connection, subscribe frames paced
                           to it (None = no limit; default: the venue's, e.g. Binance 4.0)
    connect_rate           {"attempts": n, "seconds": t}: connection attempts to the venue's
                           host, shared by the process's collectors (None = no limit;
                           default: the venue's, OKX 3 per 1 s, Binance 300 per 300 s)
    pairs_per_connection   trading pairs whose streams share one connection to an endpoint,
                           1 to 1024 (50; 1 = a connection per pair; ingest.collector.link_pool)
    book_snapshot_interval seconds of exchange time between the full snapshots stored from an
                           incremental book the collector keeps (OKX `books`) (60.0)
    name                   collector name (default "<exchange>-<symbol>", lower-case exchange)
    sink                   the RowSink rows are put to (normally the CopyWriter); without one,
                           rows only reach callbacks (see ExchangeFactory.create_collector)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ingest.config.errors import Problem, problem_of
from ingest.config.exchange import CollectorParams
from ingest.errors import ConfigError

__all__ = ["KNOWN_KEYS", "CollectorParams", "default_name", "parse_params"]

KNOWN_KEYS = frozenset({*CollectorParams.model_fields, "sink"})


def default_name(exchange: str, symbol: str) -> str:
    """The collector name used when custom_params has none: 'okx-BTC-USDT'."""
    return f"{exchange.strip().lower()}-{symbol}"


def parse_params(exchange: str, symbol: str, custom: Mapping[str, Any] | None) -> CollectorParams:
    """Validate custom_params; raise ConfigError naming each wrong key, what it expects and found."""
    values = {key: value for key, value in (custom or {}).items() if key != "sink"}
    unknown = sorted(set(values) - KNOWN_KEYS, key=str)
    if unknown:
        raise ConfigError(
            f"collector {exchange}/{symbol}: unknown custom_params key(s) {unknown}; "
            f"known keys are {sorted(KNOWN_KEYS)}"
        )
    values.setdefault("name", default_name(exchange, symbol))
    for key, default in venue_limits(exchange).items():
        values.setdefault(key, default)
    try:
        return CollectorParams.model_validate(values)
    except ValidationError as exc:
        problems = [problem_of(CollectorParams, error) for error in exc.errors()]
        raise ConfigError("\n".join(_line(exchange, symbol, p) for p in problems)) from None


VENUE_LIMIT_KEYS = ("max_connection_age", "max_messages_per_second", "connect_rate")


def venue_limits(exchange: str) -> dict[str, Any]:
    """The defaults of the venue's limits (its connection model's), so a collector made
    from an ExchangeCollectorConfig alone keeps them as one made from a config file does;
    none for an unknown exchange (the factory refuses it)."""
    # Imported here: the venues' packages build on ingest.config, which this module uses.
    from ingest.exchanges.registry import find_venue

    venue = find_venue(exchange)
    if venue is None:
        return {}
    fields = venue.connection.model_fields
    return {key: fields[key].default for key in VENUE_LIMIT_KEYS}


def _line(exchange: str, symbol: str, problem: Problem) -> str:
    where = "custom_params" if problem.key == "(top level)" else f"custom_params.{problem.key}"
    return f"collector {exchange}/{symbol}: {where}{problem.line()[len(problem.key) :]}"
