"""TCP Dashboard ingest: exchange WebSocket market data into TimescaleDB."""

__version__ = "0.1.0"
