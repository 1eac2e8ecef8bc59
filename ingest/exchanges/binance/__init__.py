"""Binance spot public market data (combined streams): subscriptions and frame parsing, no
I/O; VENUE for the registry."""

from ingest.exchanges.binance.adapter import BinanceAdapter
from ingest.exchanges.binance.history import BinanceTradeHistory
from ingest.exchanges.binance.settings import BinanceConnection
from ingest.exchanges.binance.streams import stored_symbol, subscribe_frames, wire_symbol
from ingest.exchanges.venue import Venue

VENUE = Venue(
    name="binance",
    adapter=BinanceAdapter,
    connection=BinanceConnection,
    credentials=("BINANCE_API_KEY", "BINANCE_API_SECRET"),
    stored_symbol=stored_symbol,
    trade_history=BinanceTradeHistory,
)

__all__ = ["VENUE", "BinanceAdapter", "subscribe_frames", "wire_symbol"]
