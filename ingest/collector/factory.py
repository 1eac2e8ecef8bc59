"""ExchangeFactory: builds collectors from ExchangeCollectorConfig through the adapter registry."""

from __future__ import annotations

import logging

from ingest.collector.base import BaseDataCollector
from ingest.collector.continuity import TradeContinuity
from ingest.collector.params import parse_params
from ingest.collector.sink import DiscardSink, RowSink
from ingest.collector.websocket_collector import WebSocketCollector
from ingest.config.secrets import read_exchange_credentials
from ingest.errors import ConfigError
from ingest.exchanges.registry import get_adapter, get_venue, supported_exchanges
from ingest.model import ExchangeCollectorConfig

logger = logging.getLogger(__name__)


class ExchangeFactory:
    """Creates collectors; generic code never names an exchange (the registry does)."""

    @staticmethod
    def create_collector(
        config: ExchangeCollectorConfig,
        sink: RowSink | None = None,
        continuity: TradeContinuity | None = None,
    ) -> BaseDataCollector:
        """Build a collector for `config`.

        The venue's credentials are read from the environment (its Venue.credentials
        names): a private data type (balance) needs them. Rows go to `sink`, else to
        `config.custom_params["sink"]`; with neither, rows only reach data callbacks (a
        DiscardSink counts them). With `continuity`, the gaps between its connections'
        trades are found and filled (docs/gaps.md). Raises ConfigError.
        """
        ExchangeFactory.validate_config(config)
        params = parse_params(config.exchange, config.symbol, config.custom_params)
        chosen = sink if sink is not None else (config.custom_params or {}).get("sink")
        if chosen is None:
            chosen = DiscardSink()
        elif not isinstance(chosen, RowSink):
            raise ConfigError(
                f"collector {params.name}: the sink must have an async put(rows) method, "
                f"found {type(chosen).__name__}"
            )
        venue = get_venue(config.exchange)
        # None when none is set; every value read is masked in logs and errors from now on.
        credentials = read_exchange_credentials(venue.credentials)
        return WebSocketCollector(config, params, venue.adapter(), chosen, continuity, credentials)

    @staticmethod
    def create_multiple_collectors(
        configs: list[ExchangeCollectorConfig], sink: RowSink | None = None
    ) -> list[BaseDataCollector]:
        """Build one collector per config; any invalid config raises before any is built."""
        for config in configs:
            ExchangeFactory.validate_config(config)
        return [ExchangeFactory.create_collector(config, sink) for config in configs]

    @staticmethod
    def get_supported_exchanges() -> list[str]:
        """Exchange names the registry knows, sorted."""
        return supported_exchanges()

    @staticmethod
    def validate_config(config: ExchangeCollectorConfig) -> bool:
        """True for a usable config; raises ConfigError saying what is wrong otherwise."""
        get_adapter(config.exchange)
        if not config.symbol or not config.symbol.strip():
            raise ConfigError(f"collector for {config.exchange}: symbol must not be empty")
        if not config.data_types:
            raise ConfigError(f"collector {config.exchange}/{config.symbol}: data_types must not be empty")
        if config.health_check_interval <= 0:
            raise ConfigError(
                f"collector {config.exchange}/{config.symbol}: health_check_interval must be "
                f"> 0, found {config.health_check_interval!r}"
            )
        parse_params(config.exchange, config.symbol, config.custom_params)
        return True
