"""ingest/storage/candle_refresh.py: the service's refresh loop (Apache edition; it ends at once
on TSL), refresh_candles() for a touched range on both editions (TSL: within what retention
keeps), and the candles.refresh_interval setting."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pydantic
import pytest

from ingest.config import DatabaseFile
from ingest.service import IngestService
from ingest.storage.candle_refresh import CandleRefresher, Window, refresh_candles, tsl_windows
from tests.candles_support import (
    PAST_SPAN,
    PAST_START,
    TIMEFRAMES,
    assert_all_views,
    assert_matches,
    db_now,
    fetch_view,
    generate_trades,
    load_trades,
    open_autocommit,
    reference_candles,
)
from tests.collector_support import btc_trades_config, simulator, wait_for

TFS = [
    ("1m", timedelta(minutes=1), "candles_1m_agg", None),
    ("5m", timedelta(minutes=5), "candles_5m_agg", "candles_1m_agg"),
    ("1d", timedelta(days=1), "candles_1d_agg", "candles_5m_agg"),
]


def count(conn: psycopg.Connection[Any], relation: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {relation}").fetchone()
    assert row is not None
    return int(row[0])


def test_tsl_windows_are_whole_intervals_cut_at_now_and_at_what_retention_keeps() -> None:
    now = datetime(2026, 6, 10, 12, 34, 56, tzinfo=UTC)
    start, end = datetime(2026, 6, 1, 10, 0, 30, tzinfo=UTC), datetime(2026, 6, 10, 12, 33, 10, tzinfo=UTC)
    assert tsl_windows(start, end, now, TFS, {}) == [
        Window(
            "candles_1m_agg",
            datetime(2026, 6, 1, 10, 0, tzinfo=UTC),
            datetime(2026, 6, 10, 12, 34, tzinfo=UTC),
        ),
        Window(
            "candles_5m_agg",
            datetime(2026, 6, 1, 10, 0, tzinfo=UTC),
            datetime(2026, 6, 10, 12, 30, tzinfo=UTC),
        ),
        Window("candles_1d_agg", datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 10, tzinfo=UTC)),
    ]
    # raw_trades keeps 5 days: 1m starts after now - 5 days + the one-day margin; 5m and 1d read
    # the 1m and 5m candles, which have no retention.
    kept = tsl_windows(start, end, now, TFS, {"raw_trades": timedelta(days=5)})
    assert kept[0] == Window(
        "candles_1m_agg", datetime(2026, 6, 6, 12, 35, tzinfo=UTC), datetime(2026, 6, 10, 12, 34, tzinfo=UTC)
    )
    assert kept[1:] == tsl_windows(start, end, now, TFS, {})[1:]
    # All of the range older than the retention: nothing to refresh for that timeframe.
    assert (
        tsl_windows(start, end, now, TFS, {"raw_trades": timedelta(days=1)})[0].aggregate == "candles_5m_agg"
    )


def test_refresh_interval_must_be_at_least_a_second() -> None:
    assert DatabaseFile.model_validate({"database": {"url": "host=x"}}).candles.refresh_interval == 10.0
    with pytest.raises(pydantic.ValidationError, match=r"candles\.refresh_interval"):
        DatabaseFile.model_validate({"database": {"url": "host=x"}, "candles": {"refresh_interval": 0.5}})


@pytest.mark.db
def test_refresh_candles_on_apache_rebuilds_the_range(migrated_db_dsn: str) -> None:
    trades = generate_trades(random.Random(31), PAST_START, PAST_SPAN, count=1500)
    with open_autocommit(migrated_db_dsn) as conn:
        load_trades(conn, trades)
        written = refresh_candles(conn)
        assert isinstance(written, dict)
        assert written["1m"] == count(conn, "materialized_candles_1m") > 0
        # Half the history deleted by hand: only a range refresh notices.
        cut = PAST_START + timedelta(hours=25)
        conn.execute('DELETE FROM raw_trades WHERE "timestamp" >= %s', (cut,))
        refresh_candles(conn, cut, PAST_START + PAST_SPAN)
        assert_all_views(conn, [t for t in trades if t.ts < cut])


@pytest.mark.tsl
def test_refresh_candles_on_tsl_materializes_the_aggregates(migrated_tsl_dsn: str) -> None:
    trades = generate_trades(random.Random(32), PAST_START, PAST_SPAN, count=1500)
    with open_autocommit(migrated_tsl_dsn) as conn:
        load_trades(conn, trades)
        tables = {
            str(view): f"{schema}.{name}"
            for view, schema, name in conn.execute(
                "SELECT view_name, materialization_hypertable_schema, materialization_hypertable_name"
                " FROM timescaledb_information.continuous_aggregates"
            ).fetchall()
        }
        assert count(conn, tables["candles_1d_agg"]) == 0
        windows = refresh_candles(conn, PAST_START, PAST_START + PAST_SPAN)
        assert [w.aggregate for w in windows if isinstance(w, Window)] == [
            f"candles_{tf}_agg" for tf in TIMEFRAMES
        ]
        for tf in TIMEFRAMES:
            assert count(conn, tables[f"candles_{tf}_agg"]) > 0, tf
        assert_all_views(conn, trades)


@pytest.mark.tsl
async def test_the_refresh_loop_ends_at_once_on_tsl(migrated_tsl_dsn: str) -> None:
    refresher = CandleRefresher(migrated_tsl_dsn, interval=1)
    async with asyncio.timeout(10):
        await refresher.run(asyncio.Event())
    assert refresher.tsl
    assert refresher.runs == 0


@pytest.mark.db
async def test_the_service_materializes_candles_every_interval(migrated_db_dsn: str) -> None:
    trades = generate_trades(random.Random(33), PAST_START, PAST_SPAN, count=1500)
    with open_autocommit(migrated_db_dsn) as conn:
        load_trades(conn, trades)
    async with simulator(total=10) as sim:
        database = DatabaseFile.model_validate(
            {
                "database": {"url": migrated_db_dsn},
                "candles": {"refresh_interval": 1},
                "http": {"listen": None},
            }
        )
        service = IngestService(database, [btc_trades_config(sim)])
        await service.start()
        try:
            await wait_for(lambda: service.candle_refresher.runs >= 1, what="the first candle refresh")
            with open_autocommit(migrated_db_dsn) as conn:
                assert count(conn, "materialized_candles_1d") > 0
                late = generate_trades(random.Random(34), PAST_START, PAST_SPAN, count=200, first_id=10**7)
                load_trades(conn, late)
                runs = service.candle_refresher.runs
                await wait_for(lambda: service.candle_refresher.runs >= runs + 2, what="two more refreshes")
                # The late trades are in the tables: with the old raw trades deleted, the views
                # still have them (the simulator's trades of today are left out of the comparison).
                conn.execute('DELETE FROM raw_trades WHERE "timestamp" < %s', (PAST_START + PAST_SPAN,))
                with conn.transaction():
                    now = db_now(conn)
                    for tf, width in TIMEFRAMES.items():
                        got = fetch_view(conn, f"candles_{tf}")
                        old = {k: c for k, c in got.items() if k[2] < PAST_START + PAST_SPAN}
                        assert_matches(old, reference_candles(trades + late, width, now), f"candles_{tf}")
        finally:
            assert await service.stop()
