"""Apache edition, materialized candles (sql/0117_candles_materialized.apache.sql): the views
read materialized_candles_<tf> for what the refresh covered and raw_trades for the rest, and are
equal to the independent reference (tests/candles_support.py) and to the TSL views whatever was
refreshed when: before any refresh, after one, with late trades not refreshed yet, with a writer
committing while a refresh runs, and after an upgrade from 0115."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.db.migrations import migrate
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
    refresh_all,
)
from tests.test_candles_watermarks_upgrade import sql_below, view_columns

MATERIALIZED = 117
APACHE_CANDLE_FILES = (
    "0100_candles.apache.sql",
    "0105_candles_fills_and_contracts.apache.sql",
    "0115_candles_complete.apache.sql",
    "0117_candles_materialized.apache.sql",
)


def refresh(conn: psycopg.Connection[Any], schema: str = "") -> dict[str, int]:
    rows = conn.execute(f"SELECT * FROM {schema}tcpd_refresh_apache_candles()").fetchall()
    return {str(tf): int(n) for tf, n in rows}


def materialized(conn: psycopg.Connection[Any], tf: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM materialized_candles_{tf}").fetchone()
    assert row is not None
    return int(row[0])


def late_trades(trades: list[Trade], first_id: int, tag: str = "late") -> list[Trade]:
    """One new trade in the middle of every 10th existing 1m bucket: a new high, a new low,
    more volume, each a bucket that is already materialized. Their ids are below the loaded
    ones (the refresh must not rely on ids growing)."""
    out = []
    for n, t in enumerate(sorted(trades, key=lambda t: t.ts)[::10]):
        price = t.price * 3 if n % 2 else t.price / 3
        out.append(Trade(first_id - n, t.exchange, t.symbol, f"{tag}-{n}", price, Decimal("7"), t.ts, 2, 0))
    return out


@pytest.mark.db
def test_refreshed_views_read_the_tables_and_equal_the_reference(migrated_db_dsn: str) -> None:
    trades = generate_trades(random.Random(21), PAST_START, PAST_SPAN, count=3000)
    with open_autocommit(migrated_db_dsn) as conn:
        load_trades(conn, trades)
        assert_all_views(conn, trades)  # nothing materialized: every candle from raw_trades
        written = refresh(conn)
        assert set(written) == set(TIMEFRAMES)
        for tf in TIMEFRAMES:
            assert written[tf] == materialized(conn, tf) > 0, tf
        assert_all_views(conn, trades)
        # The candles now come from the tables: with the raw trades gone (and no refresh told
        # of it) every candle is still there.
        conn.execute("DELETE FROM raw_trades")
        assert_all_views(conn, trades)
        # A refresh over the range makes the tables follow the deletion.
        conn.execute(
            "SELECT * FROM tcpd_refresh_apache_candles(%s, %s)",
            (PAST_START - timedelta(days=1), PAST_START + PAST_SPAN + timedelta(days=1)),
        )
        for tf in TIMEFRAMES:
            assert materialized(conn, tf) == 0, tf
            with conn.transaction():
                assert fetch_view(conn, f"candles_{tf}") == {}, tf


@pytest.mark.db
def test_late_trades_show_at_once_and_are_materialized_by_the_next_refresh(migrated_db_dsn: str) -> None:
    trades = generate_trades(random.Random(22), PAST_START, PAST_SPAN, count=3000)
    with open_autocommit(migrated_db_dsn) as conn:
        load_trades(conn, trades)
        refresh(conn)
        before = {tf: fetch_view(conn, f"candles_{tf}") for tf in TIMEFRAMES}
        late = late_trades(trades, first_id=-(10**6))
        load_trades(conn, late)
        everything = trades + late
        assert_all_views(conn, everything)  # right before any refresh
        for tf in TIMEFRAMES:
            assert fetch_view(conn, f"candles_{tf}") != before[tf], tf  # the late trades count
        written = refresh(conn)
        # Only the buckets the late trades touched are written again.
        assert 0 < written["1m"] <= len(late)
        assert_all_views(conn, everything)
        # and the tables hold them: dropping the raw rows leaves the views unchanged
        conn.execute("DELETE FROM raw_trades")
        assert_all_views(conn, everything)


@pytest.mark.db
def test_rows_committed_while_a_refresh_runs_are_not_missed(migrated_db_dsn: str) -> None:
    """A writer inserts (id allocated) before a refresh and commits after it: the refresh did
    not see the rows, so they are late for the views and for the next refresh, whatever their
    ids. A watermark on raw_trades.id would have lost them for good."""
    trades = generate_trades(random.Random(23), PAST_START, PAST_SPAN, count=2000)
    with open_autocommit(migrated_db_dsn) as conn, psycopg.connect(migrated_db_dsn) as writer:
        load_trades(conn, trades)
        refresh(conn)
        pending = late_trades(trades, first_id=-(10**6))
        load_trades(writer, pending)  # writer's transaction stays open
        refresh(conn)  # cannot see them
        later = late_trades(trades[5:], first_id=10**9, tag="later")  # higher ids, committed first
        load_trades(conn, later[:5])
        refresh(conn)
        writer.commit()
        everything = trades + pending + later[:5]
        assert_all_views(conn, everything)  # at once, from raw_trades
        refresh(conn)
        conn.execute("DELETE FROM raw_trades")
        assert_all_views(conn, everything)  # from the tables


@pytest.mark.db
def test_tail_since_the_last_refresh_comes_from_raw_trades(migrated_db_dsn: str) -> None:
    with open_autocommit(migrated_db_dsn) as conn:
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        now = row[0]
        old = generate_trades(random.Random(24), now - timedelta(days=3), timedelta(days=1), count=1000)
        load_trades(conn, old)
        refresh(conn)
        # Trades after the last refresh's cutoff: no refresh has seen their buckets.
        recent = generate_trades(
            random.Random(25), now - timedelta(hours=30), timedelta(hours=29), count=1000, first_id=10**8
        )
        load_trades(conn, recent)
        conn.execute(
            "UPDATE tcpd_apache_candle_state SET materialized_before = time_bucket(width, %s::TIMESTAMPTZ)"
            " FROM candle_timeframes AS t WHERE t.timeframe = tcpd_apache_candle_state.timeframe",
            (now - timedelta(hours=31),),
        )
        assert_all_views(conn, old + recent)
        refresh(conn)
        assert_all_views(conn, old + recent)


@pytest.mark.tsl
def test_materialized_apache_views_equal_tsl_views_on_same_data(migrated_tsl_dsn: str) -> None:
    trades = generate_trades(random.Random(26), PAST_START, PAST_SPAN, count=1500)
    apache_sql = [(sql_dir() / name).read_bytes() for name in APACHE_CANDLE_FILES]
    with open_autocommit(migrated_tsl_dsn) as conn:
        load_trades(conn, trades)
        refresh_all(conn, PAST_START - timedelta(days=1), PAST_START + timedelta(days=3))
        row = conn.execute("SELECT current_setting('search_path')").fetchone()
        assert row is not None
        search_path = row[0]
        conn.execute("CREATE SCHEMA cdl_apache")
        try:
            conn.execute("SELECT set_config('search_path', 'cdl_apache, ' || %s, false)", (search_path,))
            for script in apache_sql:  # 0117 materializes the history at its end
                conn.execute(script)
            late = late_trades(trades, first_id=-(10**6))
            load_trades(conn, late)
            refresh_all(conn, PAST_START - timedelta(days=1), PAST_START + timedelta(days=3))
            conn.execute("SELECT set_config('search_path', %s, false)", (search_path,))
            for refreshed in (False, True):  # late trades live, then materialized
                if refreshed:
                    refresh(conn, "cdl_apache.")
                for tf in TIMEFRAMES:
                    with conn.transaction():
                        apache = fetch_view(conn, f"cdl_apache.candles_{tf}")
                        tsl = fetch_view(conn, f"candles_{tf}")
                    assert apache, tf
                    assert apache == tsl, f"candles_{tf} (refreshed: {refreshed}): apache differs from TSL"
            row = conn.execute("SELECT count(*) FROM cdl_apache.materialized_candles_1d").fetchone()
            assert row is not None
            assert row[0] > 0
        finally:
            conn.execute("SELECT set_config('search_path', %s, false)", (search_path,))
            conn.execute("DROP SCHEMA cdl_apache CASCADE")


@pytest.mark.db
def test_upgrade_from_0115_materializes_the_history_with_equal_candles(tmp_path: Path, db_dsn: str) -> None:
    migrate(db_dsn, sql_dir=sql_below(tmp_path / "sql", MATERIALIZED))
    trades = generate_trades(random.Random(27), PAST_START, PAST_SPAN, count=1500)
    with open_autocommit(db_dsn) as conn:
        load_trades(conn, trades)
        conn.execute(
            "INSERT INTO ingest_watermarks (exchange, symbol, committed_through)"
            " VALUES ('okx', 'ETH-USDT', %s)",
            (PAST_START + timedelta(hours=20),),
        )
        columns = view_columns(conn)
        before = {tf: fetch_view(conn, f"candles_{tf}") for tf in TIMEFRAMES}
    applied = migrate(db_dsn)
    assert [n for n in applied if n.startswith("0117")] == ["0117_candles_materialized.apache.sql"]
    with open_autocommit(db_dsn) as conn:
        assert view_columns(conn) == columns
        for tf in TIMEFRAMES:
            assert materialized(conn, tf) > 0, tf
            assert fetch_view(conn, f"candles_{tf}") == before[tf], tf
        conn.execute("DELETE FROM ingest_watermarks")
        assert_all_views(conn, trades)
        conn.execute("DELETE FROM raw_trades")  # the migration materialized them
        assert_all_views(conn, trades)
    assert migrate(db_dsn) == []
