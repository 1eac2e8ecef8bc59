"""Collectors: connect to exchange WebSockets, parse through adapters, put rows to a sink."""

from ingest.collector.base import BaseDataCollector
from ingest.collector.factory import ExchangeFactory
from ingest.collector.manager import CollectorManager
from ingest.collector.sink import DiscardSink, RowSink
from ingest.collector.websocket_collector import WebSocketCollector

__all__ = [
    "BaseDataCollector",
    "CollectorManager",
    "DiscardSink",
    "ExchangeFactory",
    "RowSink",
    "WebSocketCollector",
]
