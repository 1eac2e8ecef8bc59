"""Turn an exchange config file into one ExchangeCollectorConfig per enabled trading pair."""

from __future__ import annotations

from typing import Any

from ingest.config.exchange import ExchangeFile, TradingPair, collector_params_from
from ingest.model import ExchangeCollectorConfig


def collector_configs(exchange: ExchangeFile, sink: Any = None) -> list[ExchangeCollectorConfig]:
    """One collector config per enabled pair; `sink` (the writer) goes into custom_params."""
    return [_pair_config(exchange, pair, sink) for pair in exchange.enabled_pairs()]


def _pair_config(exchange: ExchangeFile, pair: TradingPair, sink: Any) -> ExchangeCollectorConfig:
    dc = exchange.data_collection
    params: dict[str, Any] = {
        "name": f"{exchange.exchange}-{pair.symbol}",
        "channels": dict(pair.channels),
        **collector_params_from(exchange.connection, dc),
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
