"""A local Binance spot market-data simulator: WebSocket streams and REST on one port."""

from ingest.simulator.binance.server import BinanceSimulator
from ingest.simulator.binance.settings import BinanceSimulatorSettings
from ingest.simulator.binance.tape import AggTrade, PublishedTrade

__all__ = ["AggTrade", "BinanceSimulator", "BinanceSimulatorSettings", "PublishedTrade"]
