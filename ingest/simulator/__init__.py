"""A local OKX v5 WebSocket server: tests, benchmarks and offline trials of the service."""

from ingest.simulator.feed import SentQuote
from ingest.simulator.server import IDLE_CLOSE_CODE, OkxSimulator
from ingest.simulator.settings import SimulatorSettings
from ingest.simulator.streams import SentTrade

__all__ = ["IDLE_CLOSE_CODE", "OkxSimulator", "SentQuote", "SentTrade", "SimulatorSettings"]
