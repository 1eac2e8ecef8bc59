"""Venue: everything the generic service needs to know about one exchange, in one value.

Each venue package exports one VENUE; ingest.exchanges.registry lists them. Nothing outside
the venue's package names its endpoints, channels, limits or credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ingest.config.exchange import ConnectionSettings
from ingest.exchanges.base import ExchangeAdapter
from ingest.history.model import TradeHistorySource
from ingest.instruments.model import InstrumentSource


def as_written(symbol: str) -> str:
    """The stored symbol of a venue whose rows spell symbols as its config does (OKX)."""
    return symbol


@dataclass(frozen=True, slots=True)
class Venue:
    """One exchange: its adapter, its part of the config file and its optional REST sources.

    connection: the venue's subclass of ConnectionSettings (its endpoint keys, its limits'
    defaults), against which the file's `connection` section is validated.
    credentials: names of the environment variables of its API credentials, all or none
    set (read and masked by ingest.config.secrets.read_exchange_credentials).
    stored_symbol: a config file's trading pair symbol as the venue's rows spell it (the
    collector's symbol, so status, gaps and watermarks name what the tables hold); ConfigError
    when it cannot be the venue's symbol.
    """

    name: str
    adapter: Callable[[], ExchangeAdapter]
    connection: type[ConnectionSettings]
    credentials: tuple[str, ...]
    stored_symbol: Callable[[str], str] = as_written
    instruments: Callable[[], InstrumentSource] | None = None
    trade_history: Callable[[], TradeHistorySource] | None = None
