"""The writer through a database outage: stop the server mid-stream, keep putting, start it.

Needs control of the native engine (native_engine fixture): it really stops the server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from ingest.model import DataType
from ingest.rows import MarketRow, Row, TradeRow
from tests.storage_support import (
    T0_MS,
    count,
    expected_trades,
    make_writer,
    read_trades,
    trade,
    wait_until,
)


async def test_rows_survive_a_server_restart_exactly_once(
    migrated_db_dsn: str, native_engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer(
        migrated_db_dsn,
        batch_max_rows=200,
        batch_max_delay=0.02,
        retry_initial_delay=0.05,
        retry_max_delay=0.3,
    )
    trades: list[TradeRow] = []
    market: list[MarketRow] = []
    stop_producing = asyncio.Event()

    async def produce() -> None:
        i = 0
        while not stop_producing.is_set():
            chunk: list[Row] = []
            for _ in range(10):
                trades.append(trade(i))
                chunk.append(trades[-1])
                i += 1
            # Reconnect overlap: every chunk repeats the previous chunk's last trade.
            if i > 10:
                chunk.append(trade(i - 11))
            market.append(MarketRow("okx", "BTC-USDT", DataType.TICKER, T0_MS + i, f'{{"i": {i}}}'))
            chunk.append(market[-1])
            await writer.put(chunk)
            await asyncio.sleep(0.005)

    with caplog.at_level(logging.INFO, logger="ingest.storage.writer"):
        await writer.start()
        producer = asyncio.create_task(produce())
        try:
            await wait_until(lambda: count(migrated_db_dsn, "raw_trades") > 100, 20, "first rows")
            await asyncio.to_thread(native_engine.stop)
            written_before = len(trades)
            await wait_until(lambda: writer.stats()["outage"], 30, "the writer to see the outage")
            # Still accepting (queue not full) while the database is down.
            await wait_until(lambda: len(trades) > written_before + 200, 20, "puts during the outage")
            assert writer.stats()["queue_rows"] > 0
            await asyncio.to_thread(native_engine.start)
            await wait_until(lambda: not writer.stats()["outage"], 60, "the writer to recover")
            await asyncio.sleep(0.3)  # a little more traffic after recovery
        finally:
            stop_producing.set()
            await producer
            await writer.stop(60)

    assert writer.unwritten == 0
    assert read_trades(migrated_db_dsn) == expected_trades(trades)
    assert count(migrated_db_dsn, "market_data") == len(market)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("database writes failing" in m for m in messages) == 1, messages
    assert sum("database writes are back" in m for m in messages) == 1, messages
    stats = writer.stats()
    assert stats["retries"] >= 1
    assert stats["rows_written"]["raw_trades"] == len(expected_trades(trades))


async def test_a_database_down_at_start_is_waited_for(migrated_db_dsn: str, native_engine: Any) -> None:
    await asyncio.to_thread(native_engine.stop)
    writer = make_writer(migrated_db_dsn, retry_initial_delay=0.05, retry_max_delay=0.3)
    try:
        await writer.start()  # must not fail: the database may come up after the service
        rows = [trade(i) for i in range(50)]
        await writer.put(rows)
        await wait_until(lambda: writer.stats()["outage"], 30, "the writer to see the outage")
    finally:
        await asyncio.to_thread(native_engine.start)
    await writer.stop(60)
    assert writer.unwritten == 0
    assert read_trades(migrated_db_dsn) == expected_trades(rows)
