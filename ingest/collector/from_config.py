"""Turn an exchange config file into one ExchangeCollectorConfig per enabled trading pair."""

from __future__ import annotations

from typing import Any

from ingest.config.exchange import ExchangeFile, TradingPair, collector_params_from
from ingest.errors import ConfigError
from ingest.exchanges.registry import get_venue
from ingest.model import ExchangeCollectorConfig


def collector_configs(exchange: ExchangeFile[Any], sink: Any = None) -> list[ExchangeCollectorConfig]:
    """One collector config per enabled pair; `sink` (the writer) goes into custom_params.

    A collector's symbol is the pair's symbol as the venue's rows spell it (Binance:
    "BTC-USDT" in the file is "BTCUSDT"); ConfigError when two pairs are one symbol."""
    to_stored = get_venue(exchange.exchange).stored_symbol
    configs: list[ExchangeCollectorConfig] = []
    written: dict[str, str] = {}
    for pair in exchange.enabled_pairs():
        symbol = to_stored(pair.symbol)
        if symbol in written:
            raise ConfigError(
                f"{exchange.exchange} trading_pairs {written[symbol]!r} and {pair.symbol!r} are both "
                f"{symbol}: keep one of them"
            )
        written[symbol] = pair.symbol
        configs.append(_pair_config(exchange, pair, symbol, sink))
    return configs


def _pair_config(
    exchange: ExchangeFile[Any], pair: TradingPair, symbol: str, sink: Any
) -> ExchangeCollectorConfig:
    dc = exchange.data_collection
    params: dict[str, Any] = {
        "name": f"{exchange.exchange}-{symbol}",
        "channels": dict(pair.channels),
        **collector_params_from(exchange.connection, dc),
    }
    if sink is not None:
        params["sink"] = sink
    return ExchangeCollectorConfig(
        exchange=exchange.exchange,
        symbol=symbol,
        data_types=list(pair.data_types),
        auto_restart=dc.auto_restart,
        health_check_interval=dc.health_check_interval,
        store_raw_data=dc.store_raw_data,
        custom_params=params,
    )
