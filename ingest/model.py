"""Public data shapes of the reference spec: DataType, MarketDataPoint, ExchangeCollectorConfig."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class DataType(Enum):
    """Kinds of market data a collector can subscribe to; values are stored in market_data.data_type."""

    TICKER = "ticker"
    TRADE = "trade"
    ORDERBOOK = "orderbook"
    CANDLE = "candle"
    BALANCE = "balance"


@dataclass
class MarketDataPoint:
    """One normalized observation handed to data callbacks."""

    exchange: str
    symbol: str
    timestamp: datetime
    data_type: DataType
    data: dict[str, Any]


@dataclass
class ExchangeCollectorConfig:
    """What one collector collects: one exchange, one symbol, some data types."""

    exchange: str
    symbol: str
    data_types: list[DataType]
    auto_restart: bool = True
    health_check_interval: float = 30.0
    store_raw_data: bool = True
    custom_params: dict[str, Any] | None = field(default=None)
