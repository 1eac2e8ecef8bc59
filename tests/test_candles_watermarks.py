"""Candles show only once complete: a candle whose trades are accepted by the writer but not
committed yet (a blocked, in-flight batch), or whose symbol's watermark is held, is absent from
the views of both editions; once committed or released it appears, equal to the reference."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.config.database import TableNames
from ingest.config.spool import SpoolSettings
from ingest.model import DataType
from ingest.rows import MarketRow, TradeRow
from ingest.storage.writer import CopyWriter
from tests.candles_support import (
    TIMEFRAMES,
    Trade,
    assert_matches,
    bucket_of,
    db_now,
    fetch_view,
    open_autocommit,
    reference_candles,
)
from tests.storage_support import make_writer, settings, wait_until

EXCHANGE, SYMBOL = "okx", "BTC-USDT"
MINUTE = timedelta(minutes=1)


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def trades_between(start: datetime, first: int, count: int) -> list[TradeRow]:
    """`count` trades one second apart from start + `first` seconds, distinct prices and seqs."""
    rows = []
    for n in range(first, first + count):
        ts = start + timedelta(seconds=n)
        rows.append(
            TradeRow(
                EXCHANGE,
                SYMBOL,
                f"w{n}",
                f"{60000 + n * 7 % 13}.5",
                f"0.{n + 1:03d}",
                "buy",
                ms(ts),
                "",
                "1",
                str(n + 1),
            )
        )
    return rows


def ticker(ts: datetime) -> MarketRow:
    return MarketRow(EXCHANGE, SYMBOL, DataType.TICKER, ms(ts), '{"last": "1"}')


def stored_trades(conn: psycopg.Connection[Any]) -> list[Trade]:
    """raw_trades as the reference's input (the reference recomputes every candle from them)."""
    rows = conn.execute(
        'SELECT id, exchange, symbol, trade_id, price, size, "timestamp", fill_count, trade_seq'
        " FROM raw_trades"
    ).fetchall()
    return [Trade(*row) for row in rows]


def watermark(conn: psycopg.Connection[Any]) -> datetime | None:
    row = conn.execute(
        "SELECT committed_through FROM ingest_watermarks WHERE exchange = %s AND symbol = %s",
        (EXCHANGE, SYMBOL),
    ).fetchone()
    return None if row is None else row[0]  # type: ignore[no-any-return]


def assert_views_complete(conn: psycopg.Connection[Any], through: datetime) -> None:
    """Every view equals the reference over what is stored, cut at the wall clock and `through`."""
    with conn.transaction():
        now = db_now(conn)
        trades = stored_trades(conn)
        for tf, width in TIMEFRAMES.items():
            expected = {k: c for k, c in reference_candles(trades, width, now).items() if c["ts"] <= through}
            assert_matches(fetch_view(conn, f"candles_{tf}"), expected, f"candles_{tf}")


def lock_waiters(dsn: str) -> int:
    with open_autocommit(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


async def incomplete_candle_stays_hidden(dsn: str) -> None:
    with open_autocommit(dsn) as conn:
        minute = bucket_of(db_now(conn) - 10 * MINUTE, MINUTE)  # closed by the wall clock long ago
    early, late = trades_between(minute, 1, 10), trades_between(minute, 30, 10)
    writer: CopyWriter = make_writer(dsn)
    await writer.start()
    try:
        await writer.put(early)
        await wait_until(lambda: writer.stats()["rows_written"]["raw_trades"] == 10, 20, "the early trades")
        with open_autocommit(dsn) as lock, open_autocommit(dsn) as conn:
            # Block raw_trades: the batch of the late trades stays in flight, not committed.
            lock.execute("BEGIN")
            lock.execute("LOCK TABLE raw_trades IN EXCLUSIVE MODE")
            await writer.put(late)
            await wait_until(lambda: lock_waiters(dsn) == 1, 20, "the late trades' batch to wait on the lock")
            # The other worker commits a later ticker first: out of order.
            await writer.put([ticker(minute + 3 * MINUTE)])
            await wait_until(lambda: writer.stats()["rows_written"]["market_data"] == 1, 20, "the ticker")
            await writer.flush_watermarks()

            shown = fetch_view(conn, "candles_1m")
            assert (EXCHANGE, SYMBOL, minute) not in shown, "a candle with uncommitted trades is shown"
            assert watermark(conn) == minute + timedelta(seconds=30, milliseconds=-1)
            assert_views_complete(conn, minute + timedelta(seconds=30, milliseconds=-1))

            lock.execute("ROLLBACK")  # the late batch commits now
            await wait_until(
                lambda: writer.stats()["rows_written"]["raw_trades"] == 20, 20, "the late trades"
            )
            await writer.flush_watermarks()
            assert watermark(conn) == minute + 3 * MINUTE
            shown = fetch_view(conn, "candles_1m")
            assert shown[EXCHANGE, SYMBOL, minute]["trade_rows"] == 20
            assert_views_complete(conn, minute + 3 * MINUTE)

            # A hold (an open gap) hides it again; its release shows it again.
            hold = writer.hold(EXCHANGE, SYMBOL, minute + timedelta(seconds=20))
            await writer.flush_watermarks()
            assert watermark(conn) == minute + timedelta(seconds=20)
            assert (EXCHANGE, SYMBOL, minute) not in fetch_view(conn, "candles_1m")
            assert_views_complete(conn, minute + timedelta(seconds=20))
            writer.release(hold)
            await writer.flush_watermarks()
            assert_views_complete(conn, minute + 3 * MINUTE)
    finally:
        await writer.stop(10)


async def test_incomplete_candles_hidden_native(migrated_db_dsn: str) -> None:
    await incomplete_candle_stays_hidden(migrated_db_dsn)


@pytest.mark.tsl
async def test_incomplete_candles_hidden_tsl(migrated_tsl_dsn: str) -> None:
    await incomplete_candle_stays_hidden(migrated_tsl_dsn)


def test_a_symbol_without_watermark_keeps_the_wall_clock_rule(migrated_db_dsn: str) -> None:
    """Rows loaded by older versions or by hand (no watermark row): closed candles still show."""
    with open_autocommit(migrated_db_dsn) as conn:
        minute = bucket_of(db_now(conn) - 10 * MINUTE, MINUTE)
        conn.execute(
            'INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp")'
            " VALUES (%s, %s, 'a', 1, 2, 'buy', %s), (%s, %s, 'b', 1, 2, 'buy', %s)",
            (EXCHANGE, SYMBOL, minute, EXCHANGE, SYMBOL, db_now(conn)),
        )
        assert watermark(conn) is None
        assert_views_complete(conn, db_now(conn))
        assert (EXCHANGE, SYMBOL, minute) in fetch_view(conn, "candles_1m")


def spooling_writer(dsn: str, spool_dir: str) -> CopyWriter:
    return CopyWriter(
        dsn,
        TableNames(),
        settings(retry_initial_delay=0.05, retry_max_delay=0.3),
        spool=SpoolSettings(directory=spool_dir, max_bytes=1 << 24, segment_bytes=1 << 20),
    )


async def test_rows_spooled_through_an_outage_and_a_restart_hold_the_candle_back(
    migrated_db_dsn: str, native_engine: Any, tmp_path: Path
) -> None:
    """Outage: the late trades are queued, then spooled by the stop. The next run replays them;
    until they commit, its newer rows (a later ticker) must not move the watermark past them."""
    dsn, spool_dir = migrated_db_dsn, str(tmp_path / "spool")
    with open_autocommit(dsn) as conn:
        minute = bucket_of(db_now(conn) - 10 * MINUTE, MINUTE)
    early, late = trades_between(minute, 1, 10), trades_between(minute, 30, 10)
    first = spooling_writer(dsn, spool_dir)
    await first.start()
    await first.put(early)
    await wait_until(lambda: first.stats()["rows_written"]["raw_trades"] == 10, 20, "the early trades")
    await first.flush_watermarks()
    await asyncio.to_thread(native_engine.stop)
    try:
        await first.put([*late, ticker(minute + 3 * MINUTE)])
        await wait_until(lambda: first.stats()["outage"], 30, "the writer to see the outage")
        await first.stop(1)  # the database is down: the rows go to the spool
    finally:
        await asyncio.to_thread(native_engine.start)
    assert first.stats()["spool"]["rows_spooled"] == 11

    with open_autocommit(dsn) as lock, open_autocommit(dsn) as conn:
        assert watermark(conn) == minute + timedelta(seconds=10)
        assert (EXCHANGE, SYMBOL, minute) not in fetch_view(conn, "candles_1m")
        assert_views_complete(conn, minute + timedelta(seconds=10))

        lock.execute("BEGIN")
        lock.execute("LOCK TABLE raw_trades IN EXCLUSIVE MODE")
        second = spooling_writer(dsn, spool_dir)
        await second.start()
        try:
            await wait_until(lambda: lock_waiters(dsn) == 1, 20, "the replayed trades to wait on the lock")
            await second.put([ticker(minute + 4 * MINUTE)])
            await wait_until(lambda: second.stats()["rows_written"]["market_data"] == 1, 20, "the new ticker")
            await second.flush_watermarks()
            assert watermark(conn) == minute + timedelta(seconds=10), "passed rows replayed, not committed"
            assert (EXCHANGE, SYMBOL, minute) not in fetch_view(conn, "candles_1m")

            lock.execute("ROLLBACK")
            await wait_until(lambda: second.stats()["rows_written"]["raw_trades"] == 10, 20, "the replay")
            await wait_until(lambda: second.stats()["spool"]["segments"] == 0, 20, "the spool to empty")
            await second.flush_watermarks()
            assert watermark(conn) == minute + 4 * MINUTE
            assert fetch_view(conn, "candles_1m")[EXCHANGE, SYMBOL, minute]["trade_rows"] == 20
            assert_views_complete(conn, minute + 4 * MINUTE)
        finally:
            await second.stop(10)
