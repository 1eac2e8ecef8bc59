"""Instrument metadata (contract sizes, currencies, tick and lot sizes) loaded from an exchange's
REST API into the `instruments` table, at start-up and on a schedule. Candle views use it to
turn trade sizes into base and quote volumes (docs/candles.md, "Volumes").

Generic: an exchange package supplies an InstrumentSource (which requests, how to read the
answers); this package does the HTTP, the retries, the upsert and the schedule.

The refresher (and with it the HTTP client) is imported from ingest.instruments.refresher
where it is used: the exchange registry imports this package for its model, and a process
that never loads instruments should not pay for an HTTP client (docs/performance.md, memory).
"""

from ingest.instruments.model import InstrumentRow, InstrumentSource

__all__ = ["InstrumentRow", "InstrumentSource"]
