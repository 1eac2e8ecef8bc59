"""Binance spot end to end: the Binance simulator on 127.0.0.1 (ingest/simulator/binance) ->
the generic collector with the Binance adapter -> the real CopyWriter -> a native database.

`tcpd run` stores every published trade value for value, with books and tickers; the
collector survives Binance's connection rules under load: serverShutdown (at the end of a
connection's lifetime) is make before break, nothing lost or stored twice; its pongs keep a
connection the simulator pings open; its subscribe frames stay under the 5 messages a second
that the simulator enforces with a close.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingest.collector import BaseDataCollector, ExchangeFactory
from ingest.collector.continuity import TradeContinuity
from ingest.collector.websocket_collector import WebSocketCollector
from ingest.exchanges.base import Subscription
from ingest.exchanges.binance import subscribe_frames
from ingest.model import DataType, ExchangeCollectorConfig
from ingest.simulator.binance import BinanceSimulator, BinanceSimulatorSettings
from tests.collector_support import MemorySink, wait_for
from tests.service_support import Service, query, wait_count, wait_rows
from tests.storage_support import make_writer

TradeTuple = tuple[str, str, Decimal, Decimal, str, int]


@asynccontextmanager
async def binance(**settings: Any) -> AsyncIterator[BinanceSimulator]:
    sim = BinanceSimulator(BinanceSimulatorSettings(**settings))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def published(sim: BinanceSimulator, symbol: str) -> list[TradeTuple]:
    return [
        (
            t.symbol,
            str(t.trade_id),
            Decimal(t.price),
            Decimal(t.qty),
            "sell" if t.buyer_maker else "buy",
            t.time_ms,
        )
        for t in sim.published_trades(symbol)
    ]


async def stored(dsn: str, symbol: str) -> list[TradeTuple]:
    rows = await query(
        dsn,
        'SELECT symbol, trade_id, price, size, side, (extract(epoch FROM "timestamp") * 1000)::bigint'
        f" FROM raw_trades WHERE exchange = 'binance' AND symbol = '{symbol}' ORDER BY trade_id::bigint",
    )
    return [(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]


def binance_collector(
    sim: BinanceSimulator,
    sink: Any,
    data_types: tuple[DataType, ...] = (DataType.TRADE,),
    continuity: TradeContinuity | None = None,
    **custom: Any,
) -> BaseDataCollector:
    config = ExchangeCollectorConfig(
        exchange="binance",
        symbol="BTC-USDT",  # a config spelling; the wire says btcusdt, rows BTCUSDT
        data_types=list(data_types),
        custom_params={
            "urls": {"public": sim.base_url},
            "reconnect_delay": 0.05,
            "max_reconnect_delay": 0.2,
            **custom,
        },
    )
    return ExchangeFactory.create_collector(config, sink, continuity)


def write_binance_configs(tmp_path: Path, sim: BinanceSimulator, dsn: str) -> list[str]:
    exchange = {
        "exchange": "binance",
        "connection": {"ws_url": sim.base_url, "reconnect_delay": 0.05, "max_reconnect_delay": 0.5},
        "data_collection": {"store_raw_data": True, "health_check_interval": 1.0},
        "trading_pairs": [
            {
                "symbol": "BTC-USDT",
                "data_types": ["trade", "orderbook", "ticker"],
                "channels": {"trades": "trade", "orderbook": "depth5@100ms", "ticker": "ticker"},
            },
            {
                "symbol": "ETHUSDT",
                "data_types": ["trade", "orderbook"],
                "channels": {"orderbook": "bookTicker"},
            },
        ],
    }
    database = {
        "database": {"url": dsn},
        "writer": {"batch_max_delay": 0.05, "status_interval": 0.5},
    }
    logging_config = {
        "level": "INFO",
        "console_output": True,
        "file_output": True,
        "log_directory": str(tmp_path / "logs"),
    }
    for name, data in (
        ("binance.json", exchange),
        ("database.json", database),
        ("logging.json", logging_config),
    ):
        (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")
    return [
        "run",
        "--config",
        str(tmp_path / "binance.json"),
        "--database-config",
        str(tmp_path / "database.json"),
        "--logging-config",
        str(tmp_path / "logging.json"),
    ]


async def test_tcpd_run_stores_binance_trades_books_and_tickers_value_for_value(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    dsn = migrated_db_dsn
    async with binance(symbols=("BTCUSDT", "ETHUSDT"), rate=2000.0, total=6000) as sim:
        svc = Service(tmp_path, write_binance_configs(tmp_path, sim, dsn))
        await svc.start()
        try:
            await wait_rows(dsn, "raw_trades", 6000, within=60)
            await wait_count(
                dsn,
                "SELECT count(DISTINCT (symbol, data_type)) FROM market_data"
                " WHERE exchange = 'binance' AND data_type IN ('orderbook', 'ticker')",
                3,  # BTCUSDT books and tickers, ETHUSDT bookTicker
                within=20,
            )
            assert await svc.terminate() == 0, svc.output()
        finally:
            svc.kill()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert await stored(dsn, symbol) == published(sim, symbol)
    raw = await query(dsn, "SELECT symbol, data->>'t' FROM market_data WHERE data_type = 'trade'")
    assert sorted(raw) == sorted(
        (s, str(t.trade_id)) for s in ("BTCUSDT", "ETHUSDT") for t in sim.published_trades(s)
    )
    books = await query(
        dsn, "SELECT data FROM market_data WHERE data_type = 'orderbook' AND symbol = 'BTCUSDT' LIMIT 1"
    )
    assert len(books[0][0]["bids"]) == 5
    status = await query(dsn, "SELECT collector, status FROM collector_status ORDER BY collector")
    assert status == [("binance-BTCUSDT", "stopped"), ("binance-ETHUSDT", "stopped")]
    assert "running 2 collector(s): binance-BTCUSDT, binance-ETHUSDT" in svc.output()


async def test_server_shutdown_at_the_end_of_each_lifetime_loses_nothing_and_stores_nothing_twice(
    migrated_db_dsn: str,
) -> None:
    dsn = migrated_db_dsn
    # A 2 s lifetime: serverShutdown, then the close 1 s later; four of them under load.
    async with binance(
        symbols=("BTCUSDT",), rate=2000.0, total=None, lifetime=2.0, shutdown_grace=1.0
    ) as sim:
        writer = make_writer(dsn)
        await writer.start()
        collector = binance_collector(sim, writer)
        try:
            await collector.start()
            await wait_for(
                lambda: collector.get_status()["statistics"]["handovers"] >= 4,
                within=30,
                what="four switches after serverShutdown",
            )
            stats = collector.get_status()["statistics"]
        finally:
            await collector.stop()
            await writer.stop(30)
    rows = await stored(dsn, "BTCUSDT")
    # From the first trade stored to the last: every published trade, once, value for value.
    first, last = int(rows[0][1]), int(rows[-1][1])
    tape = [t for t in published(sim, "BTCUSDT") if first <= int(t[1]) <= last]
    assert rows == tape
    assert len(rows) > 8000
    assert stats["handover_failures"] == 0
    assert stats["restarts"] == 0
    assert writer.stats()["duplicates_skipped"] > 0  # the overlaps really overlapped


async def test_pongs_keep_a_connection_the_simulator_pings_open() -> None:
    # The simulator pings every 0.3 s and closes a connection that has not answered within
    # 0.6 s; our own keepalive stays quiet (a ping interval longer than the test).
    async with binance(symbols=("BTCUSDT",), rate=200.0, ping_interval=0.3, pong_timeout=0.6) as sim:
        sink = MemorySink()
        collector = binance_collector(sim, sink, ping_interval=60.0)
        await collector.start()
        try:
            await asyncio.sleep(4.0)
            stats = collector.get_status()["statistics"]
        finally:
            await collector.stop()
    assert sim.counters["connections"] == 1, sim.counters  # about 13 pings answered in time
    assert stats["reconnect_attempts"] == 0, stats.get("last_error")
    assert len(sink.trades) > 400


async def test_subscribe_frames_stay_under_the_simulators_message_limit() -> None:
    # Ten SUBSCRIBE frames on one connection: sent at once they would be closed (1008) by the
    # simulator's 5 a second; paced at Binance's default 4 a second, all are answered.
    streams = [f"btcusdt@{s}" for s in ("trade", "aggTrade", "bookTicker", "ticker", "depth5", "depth10")]
    streams += [f"btcusdt@kline_{i}" for i in ("1m", "5m", "15m", "1h")]
    async with binance(symbols=("BTCUSDT",), rate=100.0) as sim:
        sink = MemorySink()
        collector = binance_collector(sim, sink)
        assert isinstance(collector, WebSocketCollector)
        collector.subscriptions = [
            Subscription(
                sim.base_url + "/stream", subscribe_frames(streams, max_streams=1), carries_trades=True
            )
        ]
        await collector.start()
        try:
            # Frames go out while the connection is read: trades come before the last is sent.
            await wait_for(
                lambda: sim.counters["subscriptions"] == len(streams) and len(sink.trades) > 100,
                within=15,
                what="every one of ten subscribe frames answered, and trades",
            )
            await asyncio.sleep(1.0)
            stats = collector.get_status()["statistics"]
        finally:
            await collector.stop()
    assert stats["reconnect_attempts"] == 0, stats.get("last_error")
    assert sim.counters["flood_closes"] == 0, sim.counters
    assert sim.counters["subscriptions"] == len(streams), sim.counters
