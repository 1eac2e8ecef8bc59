"""Gap filling for Binance spot: the Binance simulator publishing live (it trades while nobody
listens) and serving its REST trades with Binance's weights, the generic GapFiller with
BinanceTradeHistory, the real CopyWriter, a native database. An outage of the connection is
filled from REST: from the first trade stored to the last, every fill once, value for value,
for a `@trade` stream (one row per fill) and for an `@aggTrade` stream (one row per taker
order and price, the outage filled with per-fill rows)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

from ingest.collector.continuity import TradeContinuity
from ingest.exchanges.binance.history import BinanceTradeHistory
from ingest.history.gapfill import REASON_RECONNECT, GapFiller
from ingest.simulator.binance import BinanceSimulator, BinanceSimulatorSettings
from ingest.storage import CopyWriter
from tests.collector_support import wait_for
from tests.service_support import query
from tests.storage_support import make_writer
from tests.test_backfill import TCPD, iso
from tests.test_binance_e2e import binance_collector, published, write_binance_configs
from tests.test_gap_fill import refuse_connections_for

RATE = 500.0
SYMBOL = "BTCUSDT"


@asynccontextmanager
async def live_binance() -> AsyncIterator[BinanceSimulator]:
    sim = BinanceSimulator(BinanceSimulatorSettings(symbols=(SYMBOL,), rate=RATE, total=None, live=True))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def fill_an_outage(sim: BinanceSimulator, dsn: str, writer: CopyWriter, channel: str) -> GapFiller:
    filler = GapFiller(
        "binance",
        BinanceTradeHistory(),
        conninfo=dsn,
        sink=writer,
        base_url=sim.rest_url,
        store_raw_data=False,
        give_up_after=60.0,
        retry_interval=3600.0,
        timeout=5.0,
    )
    await filler.start()
    continuity = TradeContinuity(filler, writer, "binance", SYMBOL)
    collector = binance_collector(sim, writer, continuity=continuity, channels={"trades": channel})
    begin_outage = refuse_connections_for(collector, 6.0)
    await collector.start()
    try:
        await wait_for(lambda: collector.stats.rows_received >= 300, what="the stream under way")
        begin_outage()
        await sim.disconnect_all()
        await asyncio.sleep(6.0)
        await wait_for(lambda: filler.stats.gaps_filled == 1, within=90, what="the gap filled")
        received = collector.stats.rows_received
        await wait_for(lambda: collector.stats.rows_received >= received + 300, what="live again")
    finally:
        await collector.stop()
        await filler.stop()
    return filler


async def stored_rows(dsn: str) -> list[tuple[int, int, Decimal, Decimal, str, int]]:
    """(first fill, last fill, price, size, side, ms) of every stored row, in fill order."""
    rows = await query(
        dsn,
        "SELECT trade_seq - fill_count + 1, trade_seq, price, size, side,"
        ' (extract(epoch FROM "timestamp") * 1000)::bigint FROM raw_trades'
        " WHERE exchange = 'binance' ORDER BY trade_seq",
    )
    return [(int(r[0]), int(r[1]), r[2], r[3], r[4], int(r[5])) for r in rows]


async def recorded_gaps(dsn: str) -> list[tuple[str, bool, int]]:
    rows = await query(dsn, "SELECT reason, filled_at IS NOT NULL, rows_filled FROM ingest_gaps")
    return [(r[0], r[1], int(r[2])) for r in rows]


async def test_a_trade_stream_outage_is_filled_from_rest_exactly_once(migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with live_binance() as sim:
        writer = make_writer(dsn)
        await writer.start()
        try:
            await fill_an_outage(sim, dsn, writer, "trade")
        finally:
            await writer.stop(30)
    rows = await stored_rows(dsn)
    first, last = rows[0][0], rows[-1][1]
    tape = {int(t[1]): t for t in published(sim, SYMBOL)}
    assert [r[0] for r in rows] == list(range(first, last + 1))  # every fill once, in order
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        (tape[i][2], tape[i][3], tape[i][4], tape[i][5]) for i in range(first, last + 1)
    ]
    [(reason, filled, rows_filled)] = await recorded_gaps(dsn)
    assert (reason, filled) == (REASON_RECONNECT, True)
    assert rows_filled >= RATE * 5  # the outage came from REST
    assert sim.rest.rate_limited == 0  # the pacer kept under Binance's weight budget


async def test_an_agg_trade_stream_outage_is_filled_with_fills_and_covers_each_once(
    migrated_db_dsn: str,
) -> None:
    dsn = migrated_db_dsn
    async with live_binance() as sim:
        writer = make_writer(dsn)
        await writer.start()
        try:
            await fill_an_outage(sim, dsn, writer, "aggTrade")
        finally:
            await writer.stop(30)
    rows = await stored_rows(dsn)
    first, last = rows[0][0], rows[-1][1]
    # The rows' fill ranges tile [first, last]: no fill missing, none covered twice.
    expected_first = first
    for row_first, row_last, *_ in rows:
        assert row_first == expected_first, f"fills {expected_first}..{row_first - 1} missing or doubled"
        expected_first = row_last + 1
    assert expected_first == last + 1
    # Sizes add up to the fills they cover, prices are those of the fills.
    tape = {int(t[1]): t for t in published(sim, SYMBOL)}
    for row_first, row_last, price, size, side, ts_ms in rows:
        fills = [tape[i] for i in range(row_first, row_last + 1)]
        assert sum((f[3] for f in fills), Decimal(0)) == size
        assert {(f[2], f[4], f[5]) for f in fills} == {(price, side, ts_ms)}
    assert any(r[0] < r[1] for r in rows)  # live rows aggregated several fills
    [(reason, filled, rows_filled)] = await recorded_gaps(dsn)
    assert (reason, filled) == (REASON_RECONNECT, True)
    assert rows_filled >= RATE * 5


async def test_tcpd_backfill_loads_a_binance_range_exactly(tmp_path: Path, migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    sim = BinanceSimulator(BinanceSimulatorSettings(symbols=(SYMBOL,), rate=2000.0, total=None, live=True))
    await sim.start()
    try:
        await wait_for(lambda: sim.published_count(SYMBOL) >= 9000, within=30, what="history")
        tape = published(sim, SYMBOL)
        since_ms, until_ms = tape[1000][5], tape[7000][5]
        args = write_binance_configs(tmp_path, sim, dsn)
        proc = await asyncio.create_subprocess_exec(
            str(TCPD),
            "backfill",
            "--config",
            args[2],
            "--database-config",
            args[4],
            "--symbol",
            "BTC-USDT",  # the config file's spelling; rows say BTCUSDT
            "--since",
            iso(since_ms),
            "--until",
            iso(until_ms),
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await sim.stop()
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["complete"] is True
    rows = await stored_rows(dsn)
    expected = [t for t in tape if since_ms <= t[5] < until_ms]
    assert [(str(r[1]), r[2], r[3], r[4], r[5]) for r in rows] == [
        (t[1], t[2], t[3], t[4], t[5]) for t in expected
    ]
    assert all(r[0] == r[1] for r in rows)  # per-fill rows
