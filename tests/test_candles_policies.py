"""Candles under TimescaleDB's own jobs (TSL engine): no leakage of open intervals, late trades,
retention, compression and the tcpd_set_* policy functions.

Scheduled jobs fail on the TSL test engine (docs/testing.md) and would run at their own time
anyway, so every job runs here with CALL run_job(id).
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.candles_support import (
    TIMEFRAMES,
    Trade,
    assert_all_views,
    db_now,
    fetch_view,
    generate_trades,
    load_trades,
    open_autocommit,
    reference_candles,
    refresh_all,
)

pytestmark = pytest.mark.tsl

ONLY_LATE_IN_THE_DAY = frozenset({"1d"})


def refresh_job_ids(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute(
        "SELECT p.job_id FROM tcpd_candle_policies AS p"
        " JOIN candle_timeframes AS t USING (timeframe)"
        " WHERE p.kind = 'refresh' ORDER BY t.sort_order"
    ).fetchall()
    assert len(rows) == len(TIMEFRAMES)
    return [r[0] for r in rows]


def job_id(conn: psycopg.Connection[Any], kind: str, relation: str) -> int:
    row = conn.execute(
        "SELECT job_id FROM tcpd_candle_policies WHERE kind = %s AND relation = %s", (kind, relation)
    ).fetchone()
    assert row is not None, f"no {kind} policy on {relation}"
    return int(row[0])


def run_jobs(conn: psycopg.Connection[Any], ids: list[int]) -> None:
    for job in ids:
        conn.execute("CALL run_job(%s)", (job,))


def count(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def test_no_open_interval_leaks_even_when_materialized(migrated_tsl_dsn: str) -> None:
    with open_autocommit(migrated_tsl_dsn) as conn:
        now = db_now(conn)
        trades = generate_trades(
            random.Random(21), now - timedelta(hours=30), timedelta(hours=30), count=3000
        )
        # One trade per pair at `now`: the current 4h and 1d intervals surely hold trades.
        latest = {(t.exchange, t.symbol) for t in trades}
        trades += [
            Trade(10**7 + n, ex, sym, f"now{n}", Decimal("1.5"), Decimal("2"), now)
            for n, (ex, sym) in enumerate(sorted(latest))
        ]
        load_trades(conn, trades)
        # A refresh window reaching past now materializes the intervals still in progress.
        refresh_all(conn, now - timedelta(days=3), now + timedelta(days=1))
        run_jobs(conn, refresh_job_ids(conn))
        open_rows = sum(
            count(
                conn,
                f"SELECT count(*) FROM candles_{tf}_agg WHERE bucket_start + %s > now()",
                (width,),
            )
            for tf, width in TIMEFRAMES.items()
            if tf in ("4h", "1d")
        )
        assert open_rows > 0, "test setup: the open 4h/1d interval should be materialized"
        for tf in TIMEFRAMES:
            assert count(conn, f"SELECT count(*) FROM candles_{tf} WHERE ts > now()") == 0, tf
        assert_all_views(conn, trades)


def test_late_trade_changes_its_candle_after_the_refresh_jobs(migrated_tsl_dsn: str) -> None:
    with open_autocommit(migrated_tsl_dsn) as conn:
        now = db_now(conn)
        trades = generate_trades(
            random.Random(22), now - timedelta(hours=20), timedelta(hours=18), count=2000
        )
        load_trades(conn, trades)
        jobs = refresh_job_ids(conn)
        run_jobs(conn, jobs)
        # The 1m job refreshes one day back, so the trades lie within the last 20 h: a closed
        # UTC day falls inside them only late in the day, so 1d may be empty (and must then be).
        assert_all_views(conn, trades, may_be_empty=ONLY_LATE_IN_THE_DAY)
        target = next(t for t in trades if t.ts < now - timedelta(hours=3))
        minute = TIMEFRAMES["1m"]
        key = (target.exchange, target.symbol, reference_candles([target], minute, now).popitem()[0][2])
        assert (
            count(
                conn,
                "SELECT count(*) FROM candles_1m_agg WHERE exchange = %s AND symbol = %s"
                " AND bucket_start = %s",
                key,
            )
            == 1
        ), "the target interval must be materialized before the late trade"
        before = fetch_view(conn, "candles_1m")[key]
        late = Trade(
            10**9, target.exchange, target.symbol, "late-1", Decimal("9999999.5"), Decimal("0.25"), key[2]
        )
        load_trades(conn, [late])
        # Materialized and not yet refreshed: the candle is the old one.
        assert fetch_view(conn, "candles_1m")[key] == before
        run_jobs(conn, jobs)
        after = fetch_view(conn, "candles_1m")[key]
        assert after["high"] == Decimal("9999999.5")
        assert after["trade_count"] == before["trade_count"] + 1
        assert after["volume"] == before["volume"] + Decimal("0.25")
        assert_all_views(conn, [*trades, late], may_be_empty=ONLY_LATE_IN_THE_DAY)


def test_retention_drops_old_raw_chunks_and_keeps_candles(migrated_tsl_dsn: str) -> None:
    with open_autocommit(migrated_tsl_dsn) as conn:
        now = db_now(conn)
        old_start = (now - timedelta(days=3 * 365)).replace(hour=0, minute=0, second=0, microsecond=0)
        old = generate_trades(random.Random(23), old_start, timedelta(hours=30), count=800)
        recent = generate_trades(
            random.Random(24), now - timedelta(days=5), timedelta(days=1), count=800, first_id=10**6
        )
        load_trades(conn, [*old, *recent])
        refresh_all(conn, old_start - timedelta(days=1), old_start + timedelta(days=3))
        refresh_all(conn, now - timedelta(days=7), now - timedelta(days=3))
        assert_all_views(conn, [*old, *recent])
        run_jobs(conn, [job_id(conn, "retention", "raw_trades")])
        old_end = old_start + timedelta(days=3)
        assert count(conn, 'SELECT count(*) FROM raw_trades WHERE "timestamp" < %s', (old_end,)) == 0
        chunks = "SELECT count(*) FROM show_chunks('raw_trades', older_than => INTERVAL '2 years')"
        assert count(conn, chunks) == 0
        assert count(conn, "SELECT count(*) FROM raw_trades") == len(recent)
        # The candles outlive their raw trades, also after every refresh job has run.
        assert_all_views(conn, [*old, *recent])
        run_jobs(conn, refresh_job_ids(conn))
        assert_all_views(conn, [*old, *recent])


def test_compression_keeps_candles_and_on_conflict_inserts(migrated_tsl_dsn: str) -> None:
    with open_autocommit(migrated_tsl_dsn) as conn:
        now = db_now(conn)
        old = generate_trades(random.Random(25), now - timedelta(days=12), timedelta(days=3), count=1500)
        recent = generate_trades(
            random.Random(26), now - timedelta(days=2), timedelta(days=1), count=500, first_id=10**6
        )
        load_trades(conn, [*old, *recent])
        refresh_all(conn, now - timedelta(days=14), now - timedelta(hours=12))
        run_jobs(conn, [job_id(conn, "compression", "raw_trades")])
        chunks = conn.execute(
            "SELECT range_end < now() - INTERVAL '7 days', is_compressed"
            " FROM timescaledb_information.chunks WHERE hypertable_name = 'raw_trades'"
        ).fetchall()
        assert (True, True) in chunks, chunks
        assert (True, False) not in chunks, "chunks older than 7 days must be compressed"
        assert (False, True) not in chunks, "recent chunks must stay uncompressed"
        assert_all_views(conn, [*old, *recent])
        insert = (
            'INSERT INTO raw_trades (id, exchange, symbol, trade_id, price, size, side, "timestamp")'
            " VALUES (%s, %s, %s, %s, %s, %s, 'buy', %s)"
            ' ON CONFLICT (exchange, symbol, trade_id, "timestamp") DO NOTHING'
        )
        for dup in (old[0], recent[0]):  # compressed and uncompressed duplicates are skipped
            cur = conn.execute(insert, (10**8, dup.exchange, dup.symbol, dup.trade_id, 1, 1, dup.ts))
            assert cur.rowcount == 0
        late = Trade(
            10**8 + 1, old[0].exchange, old[0].symbol, "late-c", Decimal("0.5"), Decimal("2"), old[0].ts
        )
        cur = conn.execute(
            insert, (late.id, late.exchange, late.symbol, late.trade_id, late.price, late.size, late.ts)
        )
        assert cur.rowcount == 1
        assert count(conn, "SELECT count(*) FROM raw_trades") == len(old) + len(recent) + 1
        # Older than every policy window: only an explicit refresh (tcpd candles refresh) sees it.
        refresh_all(conn, now - timedelta(days=14), now - timedelta(hours=12))
        assert_all_views(conn, [*old, *recent, late])


def test_policy_functions_refuse_windows_that_would_lose_candles(migrated_tsl_dsn: str) -> None:
    with open_autocommit(migrated_tsl_dsn) as conn:

        def policy(kind: str, relation: str, column: str) -> Any:
            row = conn.execute(
                f"SELECT {column} FROM tcpd_candle_policies WHERE kind = %s AND relation = %s",
                (kind, relation),
            ).fetchone()
            return None if row is None else row[0]

        assert policy("retention", "raw_trades", "drop_after") == timedelta(days=730)
        assert policy("retention", "market_data", "drop_after") == timedelta(days=730)
        assert policy("compression", "raw_trades", "compress_after") == timedelta(days=7)
        assert policy("retention", "candles_1m_agg", "drop_after") is None  # candles: forever
        with pytest.raises(psycopg.errors.RaiseException, match="inside the 1d refresh window"):
            conn.execute("SELECT tcpd_set_raw_retention(INTERVAL '20 days')")
        assert policy("retention", "raw_trades", "drop_after") == timedelta(days=730)
        conn.execute("SELECT tcpd_set_raw_retention(INTERVAL '400 days')")
        assert policy("retention", "market_data", "drop_after") == timedelta(days=400)
        with pytest.raises(psycopg.errors.RaiseException, match="candles_1m retention"):
            conn.execute("SELECT tcpd_set_candle_retention('1m', INTERVAL '10 days')")
        conn.execute("SELECT tcpd_set_candle_retention('1m', INTERVAL '90 days')")
        assert policy("retention", "candles_1m_agg", "drop_after") == timedelta(days=90)
        with pytest.raises(psycopg.errors.RaiseException, match="end_offset must be >= 0"):
            conn.execute("SELECT tcpd_set_candle_refresh('5m', '1 day', '-1 minute', '1 minute')")
        with pytest.raises(psycopg.errors.RaiseException, match="unknown timeframe 2m"):
            conn.execute("SELECT tcpd_set_candle_refresh('2m', '1 day', '1 minute', '1 minute')")
        conn.execute("SELECT tcpd_set_candle_refresh('1m', '6 hours', '2 minutes', '30 seconds')")
        assert policy("refresh", "candles_1m_agg", "start_offset") == timedelta(hours=6)
        conn.execute("SELECT tcpd_set_compress_after(NULL)")
        assert policy("compression", "raw_trades", "compress_after") is None
        conn.execute("SELECT tcpd_set_raw_retention(NULL)")
        assert policy("retention", "raw_trades", "drop_after") is None


def test_refresh_from_the_beginning_is_refused_while_its_source_has_a_retention(
    migrated_tsl_dsn: str,
) -> None:
    with open_autocommit(migrated_tsl_dsn) as conn:

        def start_offset(tf: str) -> Any:
            row = conn.execute(
                "SELECT start_offset FROM tcpd_candle_policies WHERE kind = 'refresh' AND timeframe = %s",
                (tf,),
            ).fetchone()
            assert row is not None
            return row[0]

        # Raw trades are dropped after 730 days (the default): a window with no start reaches them.
        with pytest.raises(psycopg.errors.RaiseException) as raw:
            conn.execute("SELECT tcpd_set_candle_refresh('1m', NULL, '1 minute', '1 minute')")
        assert "the 1m refresh window has no start (start_offset NULL)" in str(raw.value)
        assert "raw_trades retention drops data older than 2 years" in str(raw.value)
        assert raw.value.diag.message_hint == (
            "give the 1m refresh a start_offset of at most 2 years -7 days, "
            "or keep raw data forever first (tcpd_set_raw_retention(NULL))"
        )
        assert start_offset("1m") == timedelta(days=1)  # the old policy stays
        # Raw data kept forever: a 5m refresh from the beginning reads only candles_1m ...
        conn.execute("SELECT tcpd_set_raw_retention(NULL)")
        conn.execute("SELECT tcpd_set_candle_refresh('5m', NULL, '5 minutes', '5 minutes')")
        assert start_offset("5m") is None
        # ... so candles_1m may no longer get a retention, and the reverse order is refused too.
        with pytest.raises(psycopg.errors.RaiseException) as candles:
            conn.execute("SELECT tcpd_set_candle_retention('1m', INTERVAL '90 days')")
        assert "the 5m refresh window has no start (start_offset NULL)" in str(candles.value)
        assert "candles_1m retention drops candles older than 90 days" in str(candles.value)
        assert "tcpd_set_candle_retention('1m', NULL)" in (candles.value.diag.message_hint or "")
        conn.execute("SELECT tcpd_set_candle_refresh('5m', '2 days', '5 minutes', '5 minutes')")
        conn.execute("SELECT tcpd_set_candle_retention('1m', INTERVAL '90 days')")
        with pytest.raises(psycopg.errors.RaiseException, match="the 1h refresh window has no start"):
            conn.execute("SELECT tcpd_set_candle_refresh('1h', NULL, '1 hour', '30 minutes')")
        assert start_offset("1h") == timedelta(days=7)
