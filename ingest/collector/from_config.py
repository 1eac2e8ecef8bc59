"""Turn an exchange config file into one ExchangeCollectorConfig per enabled trading pair."""

from __future__ import annotations

from typing import Any

from ingest.config.exchange import ExchangeFile, TradingPair
from ingest.model import ExchangeCollectorConfig


def collector_configs(exchange: ExchangeFile, sink: Any = None) -> list[ExchangeCollectorConfig]:
    """One collector config per enabled pair; `sink` (the writer) goes into custom_params."""
    return [_pair_config(exchange, pair, sink) for pair in exchange.enabled_pairs()]


def _pair_config(exchange: ExchangeFile, pair: TradingPair, sink: Any) -> ExchangeCollectorConfig:
    conn = exchange.connection
    dc = exchange.data_collection
    params: dict[str, Any] = {
        "name": f"{exchange.exchange}-{pair.symbol}",
        "urls": {"public": conn.public_ws_url, "business": conn.business_ws_url},
        "channels": dict(pair.channels),
        "ping_interval": conn.ping_interval,
        "pong_timeout": conn.pong_timeout,
        "max_reconnect_attempts": conn.max_reconnect_attempts,
        "reconnect_delay": conn.reconnect_delay,
        "max_reconnect_delay": conn.max_reconnect_delay,
        "receive_linger": conn.receive_linger,
        "max_message_bytes": conn.max_message_bytes,
        "max_silence": dc.max_silence,
        "buffer_size": dc.buffer_size,
        "dead_letters_per_hour": dc.dead_letters_per_hour,
    }
    if sink is not None:
        params["sink"] = sink
    return ExchangeCollectorConfig(
        exchange=exchange.exchange,
        symbol=pair.symbol,
        data_types=list(pair.data_types),
        auto_restart=dc.auto_restart,
        health_check_interval=dc.health_check_interval,
        store_raw_data=dc.store_raw_data,
        custom_params=params,
    )
