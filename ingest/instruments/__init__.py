"""Instrument metadata (contract sizes, currencies, tick and lot sizes) loaded from an exchange's
REST API into the `instruments` table, at start-up and on a schedule. Candle views use it to
turn trade sizes into base and quote volumes (docs/candles.md, "Volumes").

Generic: an exchange package supplies an InstrumentSource (which requests, how to read the
answers); this package does the HTTP, the retries, the upsert and the schedule.
"""

from ingest.instruments.model import InstrumentRow, InstrumentSource
from ingest.instruments.refresher import InstrumentRefresher

__all__ = ["InstrumentRefresher", "InstrumentRow", "InstrumentSource"]
