"""OKX v5 public market data: subscriptions and frame parsing, no I/O."""

from ingest.exchanges.okx.adapter import OkxAdapter

__all__ = ["OkxAdapter"]
