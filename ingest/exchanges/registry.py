"""The explicit list of supported exchanges: adding one is one package plus one line here.

A venue's package is imported when the venue is first asked for, so a process collecting
from OKX alone does not carry Binance's modules (memory: docs/performance.md).
"""

from __future__ import annotations

import importlib

from ingest.errors import ConfigError
from ingest.exchanges.base import ExchangeAdapter
from ingest.exchanges.venue import Venue
from ingest.history.model import TradeHistorySource
from ingest.instruments.model import InstrumentSource

# name -> the package exporting its VENUE
VENUES: dict[str, str] = {
    "okx": "ingest.exchanges.okx",
    "binance": "ingest.exchanges.binance",
}


def supported_exchanges() -> list[str]:
    """Names accepted in the `exchange` key of an exchange config file, sorted."""
    return sorted(VENUES)


def find_venue(name: str) -> Venue | None:
    """The venue called `name` (case-insensitive), or None."""
    package = VENUES.get(name.strip().lower())
    if package is None:
        return None
    venue: Venue = importlib.import_module(package).VENUE
    return venue


def get_venue(name: str) -> Venue:
    """The venue called `name` (case-insensitive); ConfigError naming the key if unknown."""
    venue = find_venue(name)
    if venue is None:
        raise ConfigError(
            f"unsupported exchange {name!r}: supported exchanges are "
            f"{', '.join(supported_exchanges())}; fix the `exchange` key of the exchange config"
        )
    return venue


def get_adapter(name: str) -> ExchangeAdapter:
    """Return a fresh adapter for `name` (case-insensitive); ConfigError if unknown."""
    return get_venue(name).adapter()


def get_instrument_source(name: str) -> InstrumentSource | None:
    """The instrument metadata source of exchange `name`, or None if it has none."""
    factory = get_venue(name).instruments
    return None if factory is None else factory()


def get_trade_history(name: str) -> TradeHistorySource | None:
    """The REST trade history of exchange `name`, or None if it has none."""
    factory = get_venue(name).trade_history
    return None if factory is None else factory()
