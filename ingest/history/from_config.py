"""One GapFiller per exchange that has a REST trade history and has not turned gap filling off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.config import ExchangeFile
from ingest.config.urls import loopback_http_url
from ingest.exchanges.registry import get_trade_history
from ingest.history.gapfill import GapFiller, HistorySink


def gap_fillers(
    conninfo: str, exchanges: Sequence[ExchangeFile[Any]], sink: HistorySink
) -> dict[str, GapFiller]:
    """Fillers by exchange name (the first config file of an exchange decides its settings)."""
    fillers: dict[str, GapFiller] = {}
    for file in exchanges:
        name = file.exchange.strip().lower()
        settings = file.gap_fill
        source = get_trade_history(name)
        if name in fillers or source is None or not settings.enabled:
            continue
        fillers[name] = GapFiller(
            name,
            source,
            conninfo=conninfo,
            sink=sink,
            base_url=settings.rest_url or loopback_http_url(file.connection.main_ws_url()),
            store_raw_data=file.data_collection.store_raw_data,
            timeout=settings.timeout,
            give_up_after=settings.give_up_after,
            retry_interval=settings.retry_interval,
        )
    return fillers
