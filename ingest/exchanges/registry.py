"""The explicit list of supported exchanges: adding one is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable

from ingest.errors import ConfigError
from ingest.exchanges.base import ExchangeAdapter
from ingest.exchanges.okx import OkxAdapter
from ingest.exchanges.okx.history import OkxTradeHistory
from ingest.exchanges.okx.instruments import OkxInstrumentSource
from ingest.history.model import TradeHistorySource
from ingest.instruments.model import InstrumentSource

ADAPTERS: dict[str, Callable[[], ExchangeAdapter]] = {
    "okx": OkxAdapter,
}

# Exchanges whose instrument metadata (contract sizes) can be loaded; optional per exchange.
INSTRUMENT_SOURCES: dict[str, Callable[[], InstrumentSource]] = {
    "okx": OkxInstrumentSource,
}


# Exchanges whose trade history can be read over REST (gap filling, tcpd backfill).
TRADE_HISTORIES: dict[str, Callable[[], TradeHistorySource]] = {
    "okx": OkxTradeHistory,
}


def supported_exchanges() -> list[str]:
    """Names accepted in the `exchange` key of an exchange config file, sorted."""
    return sorted(ADAPTERS)


def get_adapter(name: str) -> ExchangeAdapter:
    """Return a fresh adapter for `name` (case-insensitive); ConfigError if unknown."""
    factory = ADAPTERS.get(name.strip().lower())
    if factory is None:
        raise ConfigError(
            f"unsupported exchange {name!r}: supported exchanges are "
            f"{', '.join(supported_exchanges())}; fix the `exchange` key of the exchange config"
        )
    return factory()


def get_instrument_source(name: str) -> InstrumentSource | None:
    """The instrument metadata source of exchange `name`, or None if it has none."""
    factory = INSTRUMENT_SOURCES.get(name.strip().lower())
    return None if factory is None else factory()


def get_trade_history(name: str) -> TradeHistorySource | None:
    """The REST trade history of exchange `name`, or None if it has none."""
    factory = TRADE_HISTORIES.get(name.strip().lower())
    return None if factory is None else factory()
