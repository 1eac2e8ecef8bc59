"""Gap filling from the REST trade history (docs/gaps.md): real simulator on 127.0.0.1 publishing
live (trades happen whether or not anyone listens, like an exchange), its REST history with
OKX's pagination and rate limits, real CopyWriter, native database.

"Stored == published" is checked value for value over the whole stretch the collector covered
(from the first trade it stored to the last): every trade once, none missing, none twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from ingest.collector import BaseDataCollector
from ingest.collector.continuity import TradeContinuity
from ingest.collector.link_pool import pool_for_loop
from ingest.collector.websocket_collector import WebSocketCollector
from ingest.exchanges.okx.history import OkxTradeHistory
from ingest.history.gapfill import REASON_HORIZON, REASON_RECONNECT, REASON_RESTART, GapFiller
from ingest.metrics.exporter import service_registry
from ingest.simulator import OkxSimulator
from ingest.storage import CopyWriter
from tests.collector_support import collector_for, simulator, wait_for
from tests.service_support import db_trades, query, sent_tuples_of
from tests.storage_support import make_writer

RATE = 500.0
TRADES_ALL = {"trades": "trades-all"}


def filler_for(sim: OkxSimulator, dsn: str, writer: CopyWriter, **settings: Any) -> GapFiller:
    options: dict[str, Any] = {"give_up_after": 60.0, "retry_interval": 3600.0, "timeout": 5.0, **settings}
    return GapFiller(
        "okx",
        OkxTradeHistory(),
        conninfo=dsn,
        sink=writer,
        base_url=sim.rest_url,
        store_raw_data=False,
        **options,
    )


@asynccontextmanager
async def collecting(
    sim: OkxSimulator, dsn: str, writer: CopyWriter, **filler_settings: Any
) -> AsyncIterator[tuple[BaseDataCollector, GapFiller]]:
    """A BTC-USDT trades-all collector with gap filling, into `writer` (started by the caller)."""
    filler = filler_for(sim, dsn, writer, **filler_settings)
    await filler.start()
    continuity = TradeContinuity(filler, writer, "okx", "BTC-USDT")
    collector = collector_for(sim, writer, channels=TRADES_ALL, continuity=continuity)
    await collector.start()
    try:
        yield collector, filler
    finally:
        await collector.stop()
        await filler.stop()


async def stored_ids(dsn: str) -> list[int]:
    rows = await query(dsn, "SELECT trade_id::bigint FROM raw_trades ORDER BY 1")
    return [int(r[0]) for r in rows]


async def assert_stored_is_published(dsn: str, sim: OkxSimulator) -> list[int]:
    """raw_trades equals the simulator's history from the first stored trade to the last."""
    ids = await stored_ids(dsn)
    assert ids, "nothing stored"
    published = {int(t.trade_id): t for t in sim.published_trades("BTC-USDT")}
    expected = sent_tuples_of([published[i] for i in range(ids[0], ids[-1] + 1)])
    stored = await db_trades(dsn)
    missing = sorted(set(range(ids[0], ids[-1] + 1)) - set(ids))
    assert not missing, f"{len(missing)} trades missing, e.g. {missing[:5]}"
    assert stored == expected  # value for value, each once
    return ids


def refuse_connections_for(collector: BaseDataCollector, seconds: float) -> Callable[[], None]:
    """Make the collector's connects (every connect of this event loop's links) fail for
    `seconds` from when the returned function is called (a network outage on our side;
    the exchange keeps trading)."""
    assert isinstance(collector, WebSocketCollector)
    pool = pool_for_loop()
    connect = pool.dial
    until = [0.0]

    async def refusing(url: str, **options: Any) -> Any:
        if time.monotonic() < until[0]:
            raise ConnectionRefusedError("network down (test)")
        return await connect(url, **options)

    pool.dial = refusing

    def begin() -> None:
        until[0] = time.monotonic() + seconds

    return begin


async def gaps(dsn: str) -> list[tuple[Any, ...]]:
    return await query(
        dsn,
        "SELECT reason, after_trade_id, before_trade_id, filled_at IS NOT NULL, rows_filled, attempts,"
        " last_error FROM ingest_gaps ORDER BY recorded_at",
    )


async def test_a_ten_second_outage_is_filled_from_rest_exactly_once(migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with simulator(
        total=None, rate=RATE, live=True, trades_channel="trades-all", idle_timeout=3600.0
    ) as sim:
        writer = make_writer(dsn)
        await writer.start()
        try:
            async with collecting(sim, dsn, writer) as (collector, filler):
                begin_outage = refuse_connections_for(collector, 10.0)
                await wait_for(lambda: collector.stats.rows_received >= 500, what="the stream under way")
                begin_outage()
                await sim.disconnect_all()
                before = len(sim.published_trades("BTC-USDT"))
                await asyncio.sleep(10.0)
                assert len(sim.published_trades("BTC-USDT")) - before >= RATE * 8, "the tape went on"
                await wait_for(lambda: filler.stats.gaps_filled == 1, within=90, what="the gap filled")
                received = collector.stats.rows_received
                await wait_for(lambda: collector.stats.rows_received >= received + 500, what="live again")
        finally:
            await writer.stop(30)
    ids = await assert_stored_is_published(dsn, sim)
    recorded = await gaps(dsn)
    assert len(recorded) == 1
    reason, after, before_id, filled, rows_filled, _attempts, last_error = recorded[0]
    assert reason == REASON_RECONNECT
    assert filled
    assert last_error is None
    assert int(before_id) - int(after) - 1 == rows_filled >= RATE * 9  # the whole outage came from REST
    assert ids[0] < int(after) < int(before_id) < ids[-1]
    assert sim.history.rate_limited == 0  # the pacer kept under OKX's limit
    # /metrics says the same as ingest_gaps
    registry, _commits = service_registry(lambda: [collector], writer.stats, lambda: {"okx": filler.stats})
    okx = {"exchange": "okx"}
    assert registry.get_sample_value("tcpd_gaps_found_total", okx) == 1
    assert registry.get_sample_value("tcpd_gaps_filled_total", okx) == 1
    assert registry.get_sample_value("tcpd_gaps_left_open_total", okx) == 0
    assert registry.get_sample_value("tcpd_gaps_filling", okx) == 0
    assert registry.get_sample_value("tcpd_rows_backfilled_total", okx) == rows_filled


async def test_a_restart_fills_from_the_last_stored_trade(migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with simulator(
        total=None, rate=RATE, live=True, trades_channel="trades-all", idle_timeout=3600.0
    ) as sim:
        writer = make_writer(dsn)
        await writer.start()
        try:
            async with collecting(sim, dsn, writer) as (collector, _filler):
                await wait_for(lambda: collector.stats.rows_received >= 1000, what="the first run under way")
            await writer.flush_watermarks()
            await asyncio.sleep(3.0)  # the service is down; the exchange trades on
            async with collecting(sim, dsn, writer) as (collector, filler):
                await wait_for(
                    lambda: filler.stats.gaps_filled == 1, within=60, what="the restart gap filled"
                )
                received = collector.stats.rows_received
                await wait_for(lambda: collector.stats.rows_received >= received + 200, what="live again")
        finally:
            await writer.stop(30)
    await assert_stored_is_published(dsn, sim)
    recorded = await gaps(dsn)
    assert [(r[0], r[3]) for r in recorded] == [(REASON_RESTART, True)]
    assert recorded[0][4] >= RATE * 2


async def test_rest_failing_for_a_while_is_waited_out_and_the_watermark_held(migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with simulator(
        total=None, rate=RATE, live=True, trades_channel="trades-all", idle_timeout=3600.0
    ) as sim:
        writer = make_writer(dsn)
        await writer.start()
        try:
            async with collecting(sim, dsn, writer) as (collector, filler):
                begin_outage = refuse_connections_for(collector, 2.0)
                await wait_for(lambda: collector.stats.rows_received >= 500, what="the stream under way")
                sim.history.fail_next(4, HTTPStatus.SERVICE_UNAVAILABLE)
                sim.history.fail_next(4, HTTPStatus.TOO_MANY_REQUESTS)
                sim.history.fail_next(4, HTTPStatus.BAD_GATEWAY)
                begin_outage()
                await sim.disconnect_all()
                await wait_for(lambda: filler.stats.gaps_found == 1, within=30, what="the gap found")
                await wait_for(lambda: bool(filler.stats.last_error), within=30, what="a failed attempt")
                # While the gap is open, the watermark stays at or below its start.
                await writer.flush_watermarks()
                rows = await query(
                    dsn,
                    "SELECT w.committed_through <= g.from_ts FROM ingest_watermarks AS w"
                    " JOIN ingest_gaps AS g USING (exchange, symbol) WHERE g.filled_at IS NULL",
                )
                assert rows == [(True,)]
                await wait_for(lambda: filler.stats.gaps_filled == 1, within=120, what="the gap filled")
                received = collector.stats.rows_received
                await wait_for(lambda: collector.stats.rows_received >= received + 200, what="live again")
        finally:
            await writer.stop(30)
    await assert_stored_is_published(dsn, sim)
    recorded = await gaps(dsn)
    assert len(recorded) == 1
    assert recorded[0][3] is True
    assert recorded[0][5] >= 2  # failed attempts noted, then the filling one


async def test_a_gap_beyond_the_rest_horizon_is_recorded_and_the_rest_filled(migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with simulator(
        total=None,
        rate=RATE,
        live=True,
        trades_channel="trades-all",
        idle_timeout=3600.0,
        history_trades=1500,
    ) as sim:
        writer = make_writer(dsn)
        await writer.start()
        try:
            async with collecting(sim, dsn, writer) as (collector, filler):
                begin_outage = refuse_connections_for(collector, 6.0)
                await wait_for(lambda: collector.stats.rows_received >= 500, what="the stream under way")
                begin_outage()
                await sim.disconnect_all()
                await wait_for(
                    lambda: filler.stats.gaps_left_open == 1, within=60, what="the remainder recorded"
                )
        finally:
            await writer.stop(30)
    recorded = await gaps(dsn)
    assert len(recorded) == 1
    reason, after, before_id, filled, _rows, _attempts, _error = recorded[0]
    assert not filled
    assert reason.startswith(REASON_HORIZON)
    ids = set(await stored_ids(dsn))
    # Below the remainder: stored before the outage; above it up to the live stream: from REST.
    assert int(after) in ids
    assert int(before_id) in ids
    assert not ids & set(range(int(after) + 1, int(before_id)))
    top = max(ids)
    assert set(range(int(before_id), top + 1)) <= ids  # all REST still had, and live after it
