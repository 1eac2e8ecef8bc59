"""Candle views against the independent Python reference (tests/candles_support.py),
on both editions, and the Apache variant against the TSL views on the same data."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingest.paths import sql_dir
from tests.candles_support import (
    PAST_SPAN,
    PAST_START,
    TIMEFRAMES,
    Trade,
    assert_all_views,
    fetch_view,
    generate_trades,
    load_trades,
    open_autocommit,
    reference_candles,
    refresh_all,
)

APACHE_CANDLE_FILES = ("0100_candles.apache.sql", "0105_candles_fills_and_contracts.apache.sql")


@pytest.mark.tsl
def test_tsl_views_equal_reference_realtime_and_materialized(migrated_tsl_dsn: str) -> None:
    trades = generate_trades(random.Random(11), PAST_START, PAST_SPAN, count=4000)
    with open_autocommit(migrated_tsl_dsn) as conn:
        load_trades(conn, trades)
        # Nothing materialized yet: real-time aggregation alone must give every candle.
        assert_all_views(conn, trades)
        refresh_all(conn, PAST_START - timedelta(days=2), PAST_START + PAST_SPAN + timedelta(days=2))
        row = conn.execute(
            "SELECT count(*) FROM candles_1m_agg WHERE bucket_start < %s", (PAST_START + PAST_SPAN,)
        ).fetchone()
        assert row is not None
        assert row[0] > 0
        # Materialized: the same answer, now read from the aggregates.
        assert_all_views(conn, trades)


@pytest.mark.tsl
def test_apache_variant_equals_tsl_views_on_same_data(migrated_tsl_dsn: str) -> None:
    trades = generate_trades(random.Random(12), PAST_START, PAST_SPAN, count=1500)
    # The views of the current Apache variant: 0100 creates them, 0105 replaces them.
    apache_sql = [(sql_dir() / name).read_bytes() for name in APACHE_CANDLE_FILES]
    with open_autocommit(migrated_tsl_dsn) as conn:
        load_trades(conn, trades)
        refresh_all(conn, PAST_START - timedelta(days=1), PAST_START + timedelta(days=1))
        row = conn.execute("SELECT current_setting('search_path')").fetchone()
        assert row is not None
        search_path = row[0]
        conn.execute("CREATE SCHEMA cdl_apache")
        try:
            # Views bind raw_trades at creation: it resolves to the migrated table.
            conn.execute("SELECT set_config('search_path', 'cdl_apache, ' || %s, false)", (search_path,))
            for script in apache_sql:
                conn.execute(script)
            conn.execute("SELECT set_config('search_path', %s, false)", (search_path,))
            for tf in TIMEFRAMES:
                with conn.transaction():
                    apache = fetch_view(conn, f"cdl_apache.candles_{tf}")
                    tsl = fetch_view(conn, f"candles_{tf}")
                assert apache, tf
                assert apache == tsl, f"candles_{tf}: apache variant differs from the TSL views"
        finally:
            conn.execute("SELECT set_config('search_path', %s, false)", (search_path,))
            conn.execute("DROP SCHEMA cdl_apache CASCADE")


@pytest.mark.db
def test_apache_views_equal_reference_on_native_engine(migrated_db_dsn: str) -> None:
    trades = generate_trades(random.Random(13), PAST_START, PAST_SPAN, count=4000)
    with open_autocommit(migrated_db_dsn) as conn:
        load_trades(conn, trades)
        assert_all_views(conn, trades)


def test_reference_buckets_are_right_aligned_and_utc() -> None:
    """The reference itself: a trade at exactly 12:01:00.000 is in the candle stamped 12:02."""
    t = datetime(2025, 1, 1, 12, 1, tzinfo=UTC)
    trades = [
        Trade(2, "okx", "X", "a", Decimal("2"), Decimal("1"), t, fills=4),
        Trade(1, "okx", "X", "b", Decimal("1"), Decimal("3"), t),
        Trade(3, "okx", "X", "c", Decimal("5"), Decimal("1"), t - timedelta(microseconds=1)),
    ]
    got = reference_candles(trades, TIMEFRAMES["1m"], t + timedelta(hours=1))
    assert got[("okx", "X", t)] == {
        "ts": datetime(2025, 1, 1, 12, 2, tzinfo=UTC),
        "open": Decimal("1"),
        "high": Decimal("2"),
        "low": Decimal("1"),
        "close": Decimal("2"),
        "volume": Decimal("4"),
        "quote_volume": Decimal("5"),
        "trade_count": 5,
        "vwap": Decimal("1.25"),
        "base_volume": Decimal("4"),
        "trade_rows": 2,
    }
    assert got[("okx", "X", t - timedelta(minutes=1))]["ts"] == t
    assert reference_candles(trades, TIMEFRAMES["4h"], t) == {}
    four_h = reference_candles(trades, TIMEFRAMES["4h"], t + timedelta(hours=4))
    assert list(four_h) == [("okx", "X", datetime(2025, 1, 1, 12, 0, tzinfo=UTC))]


@pytest.mark.db
def test_apache_views_hide_open_intervals(migrated_db_dsn: str) -> None:
    with open_autocommit(migrated_db_dsn) as conn:
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        now: datetime = row[0]
        trades = generate_trades(
            random.Random(14), now - timedelta(hours=30), timedelta(hours=30), count=1500
        )
        trades.append(Trade(10**7, "okx", "BTC-USDT", "at-now", Decimal("7"), Decimal("1"), now))
        load_trades(conn, trades)
        for tf in TIMEFRAMES:
            with conn.transaction():
                leaked = conn.execute(f"SELECT count(*) FROM candles_{tf} WHERE ts > now()").fetchone()
            assert leaked is not None
            assert leaked[0] == 0, tf
        assert_all_views(conn, trades)


def test_reference_volumes_of_contracts_and_the_exchange_order() -> None:
    """The reference itself: linear and inverse contract volumes, ties by trade_seq before id."""
    t = datetime(2025, 1, 1, 12, 1, tzinfo=UTC)
    width, later = TIMEFRAMES["1m"], t + timedelta(hours=1)
    linear = [  # ETH-USDT-SWAP: 0.1 ETH per contract
        Trade(1, "okx", "ETH-USDT-SWAP", "8", Decimal("2000"), Decimal("30"), t, seq=8),
        Trade(2, "okx", "ETH-USDT-SWAP", "7", Decimal("2010"), Decimal("10"), t, seq=7),
    ]
    got = reference_candles(linear, width, later)[("okx", "ETH-USDT-SWAP", t)]
    assert (got["open"], got["close"]) == (Decimal("2010"), Decimal("2000"))  # tradeId 7 first
    assert got["volume"] == Decimal("40")  # contracts
    assert got["base_volume"] == Decimal("4.0")  # ETH
    assert got["quote_volume"] == Decimal("6000.0") + Decimal("2010.0")  # USDT
    inverse = [  # BTC-USD-SWAP: 100 USD per contract
        Trade(1, "okx", "BTC-USD-SWAP", "1", Decimal("50000"), Decimal("5"), t, seq=1),
        Trade(2, "okx", "BTC-USD-SWAP", "2", Decimal("40000"), Decimal("2"), t, seq=2),
    ]
    got = reference_candles(inverse, width, later)[("okx", "BTC-USD-SWAP", t)]
    assert got["quote_volume"] == Decimal("700")  # USD
    assert got["base_volume"] == Decimal("0.01") + Decimal("0.005")  # 500/50000 + 200/40000 BTC
    assert abs(got["vwap"] - Decimal("46666.66666666667")) < Decimal("1e-10")  # 700 / 0.015
