"""One InstrumentRefresher per exchange that has an instrument source and has not turned it off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.config import ExchangeFile
from ingest.config.urls import loopback_http_url
from ingest.exchanges.registry import get_instrument_source
from ingest.instruments.refresher import InstrumentRefresher


def instrument_refreshers(conninfo: str, exchanges: Sequence[ExchangeFile[Any]]) -> list[InstrumentRefresher]:
    """Refreshers for `exchanges` (the first config file of an exchange decides its settings)."""
    refreshers: dict[str, InstrumentRefresher] = {}
    for file in exchanges:
        name = file.exchange.strip().lower()
        settings = file.instruments
        source = get_instrument_source(name)
        if name in refreshers or source is None or not settings.enabled:
            continue
        base_url = settings.rest_url or loopback_http_url(file.connection.main_ws_url())
        refreshers[name] = InstrumentRefresher(
            conninfo,
            name,
            source,
            base_url=base_url,
            interval=settings.refresh_interval,
            timeout=settings.timeout,
        )
    return list(refreshers.values())
