"""The generic shape of instrument metadata, and what an exchange provides to load it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol


class InstrumentRow(NamedTuple):
    """One row of the `instruments` table (sql/0104_trade_fills_and_instruments.sql).

    Numbers are exact decimal strings as the exchange sent them, None where they do not apply
    (contract fields of a spot pair). instrument_type is "spot", "swap" or "futures";
    contract_type "linear" or "inverse" for contracts, None for spot.
    """

    exchange: str
    symbol: str
    instrument_type: str
    base_currency: str | None
    quote_currency: str | None
    settle_currency: str | None
    contract_type: str | None
    contract_value: str | None
    contract_value_currency: str | None
    contract_multiplier: str | None
    lot_size: str | None
    tick_size: str | None


class InstrumentRequest(NamedTuple):
    """One GET: a path below the REST base URL and its query parameters."""

    path: str
    params: dict[str, str]


class InstrumentSource(Protocol):
    """What an exchange package gives to load its instruments (no I/O here)."""

    default_base_url: str  # e.g. the exchange's public REST host, used when the config has none

    def requests(self) -> Sequence[InstrumentRequest]:
        """The GETs that together list every instrument to store."""
        ...

    def parse(self, payload: object) -> list[InstrumentRow]:
        """Rows from one decoded JSON answer; ExchangeError when the exchange reports an error
        or the answer does not have the documented shape."""
        ...
