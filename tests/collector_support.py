"""Shared helpers of the collector and end-to-end tests: an in-memory sink, waiting, configs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from ingest.collector import BaseDataCollector, ExchangeFactory
from ingest.collector.continuity import TradeContinuity
from ingest.config import ExchangeFile, parse_exchange_file
from ingest.model import DataType, ExchangeCollectorConfig
from ingest.rows import DeadLetter, MarketRow, Row, TradeRow
from ingest.simulator import OkxSimulator, SimulatorSettings


def simulator(**settings: Any) -> OkxSimulator:
    """An OKX simulator with these SimulatorSettings; `async with` starts and stops it."""
    return OkxSimulator(SimulatorSettings(**settings))


def btc_trades_config(sim: OkxSimulator) -> ExchangeFile[Any]:
    """An OKX exchange file collecting BTC-USDT trades from the simulator `sim`."""
    return parse_exchange_file(
        {
            "exchange": "okx",
            "connection": {"public_ws_url": sim.url, "business_ws_url": sim.business_url},
            "trading_pairs": [{"symbol": "BTC-USDT", "data_types": ["trade"]}],
        }
    )


class MemorySink:
    """Keeps every row put, in order; optionally reports a nearly full queue."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.queue_rows = 0
        self.queue_capacity = 100

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None:
        self.rows.extend(rows)

    def stats(self) -> dict[str, Any]:
        return {"queue_rows": self.queue_rows, "queue_capacity": self.queue_capacity}

    @property
    def trades(self) -> list[TradeRow]:
        return [r for r in self.rows if isinstance(r, TradeRow)]

    @property
    def market(self) -> list[MarketRow]:
        return [r for r in self.rows if isinstance(r, MarketRow)]

    @property
    def dead(self) -> list[DeadLetter]:
        return [r for r in self.rows if isinstance(r, DeadLetter)]


async def wait_for(predicate: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    """Poll `predicate` until true; fail the test with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def collector_for(
    sim: OkxSimulator,
    sink: Any,
    *,
    symbol: str = "BTC-USDT",
    data_types: tuple[DataType, ...] = (DataType.TRADE,),
    store_raw_data: bool = False,
    auto_restart: bool = True,
    health_check_interval: float = 30.0,
    continuity: TradeContinuity | None = None,
    **params: Any,
) -> BaseDataCollector:
    """A collector reading `symbol` from the simulator into `sink` (fast test timings)."""
    custom: dict[str, Any] = {
        "urls": sim.urls,
        "reconnect_delay": 0.05,
        "max_reconnect_delay": 0.2,
        **params,
    }
    config = ExchangeCollectorConfig(
        exchange="okx",
        symbol=symbol,
        data_types=list(data_types),
        auto_restart=auto_restart,
        health_check_interval=health_check_interval,
        store_raw_data=store_raw_data,
        custom_params=custom,
    )
    return ExchangeFactory.create_collector(config, sink, continuity)


def trade_keys(trades: Sequence[TradeRow]) -> list[tuple[str, str, str, str, str, int]]:
    """Trades as comparable tuples, in the simulator's SentTrade field order."""
    return [(t.symbol, t.trade_id, t.price, t.size, t.side, t.ts_ms) for t in trades]
