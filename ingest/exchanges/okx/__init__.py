"""OKX v5 public market data: subscriptions and frame parsing, no I/O; VENUE for the registry."""

from ingest.exchanges.okx.adapter import OkxAdapter
from ingest.exchanges.okx.history import OkxTradeHistory
from ingest.exchanges.okx.instruments import OkxInstrumentSource
from ingest.exchanges.okx.settings import OkxConnection
from ingest.exchanges.venue import Venue

VENUE = Venue(
    name="okx",
    adapter=OkxAdapter,
    connection=OkxConnection,
    credentials=("OKX_API_KEY", "OKX_API_SECRET", "OKX_API_PASSPHRASE"),
    instruments=OkxInstrumentSource,
    trade_history=OkxTradeHistory,
)

__all__ = ["VENUE", "OkxAdapter"]
