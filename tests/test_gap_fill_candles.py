"""A candle over a gap (TSL edition): absent from the view while the gap is open, even once the
wall clock passed its end; after the REST fill, present and equal to an independent reference
computed from everything the exchange published in that minute. Real simulator (live), real
collector, gap filler and writer, TSL engine."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest

from tests.candles_support import (
    TIMEFRAMES,
    Trade,
    assert_matches,
    fetch_view,
    open_autocommit,
    reference_candles,
)
from tests.collector_support import simulator, wait_for
from tests.storage_support import make_writer
from tests.test_gap_fill import collecting, refuse_connections_for

pytestmark = pytest.mark.tsl

RATE = 200.0


def minute_of(ms: int) -> datetime:
    ts = datetime.fromtimestamp(ms / 1000, UTC)
    return ts.replace(second=0, microsecond=0)


async def test_the_candle_over_a_gap_shows_only_once_filled_and_then_exact(migrated_tsl_dsn: str) -> None:
    dsn = migrated_tsl_dsn
    async with simulator(
        total=None, rate=RATE, live=True, trades_channel="trades-all", idle_timeout=3600.0
    ) as sim:
        writer = make_writer(dsn)
        await writer.start()
        try:
            async with collecting(sim, dsn, writer, give_up_after=120.0) as (collector, filler):
                # The outage starts a few seconds before a minute ends and lasts past it.
                # The whole gap minute after the stream is under way: trades published before
                # the collector subscribed are in no candle it could complete.
                await wait_for(lambda: collector.stats.rows_received > 100, what="the stream under way")
                under_way = minute_of(int(time.time() * 1000))
                await wait_for(
                    lambda: (
                        50 <= datetime.now(UTC).second < 55 and minute_of(int(time.time() * 1000)) > under_way
                    ),
                    within=125,
                    what="second 50 of a minute begun after the stream",
                )
                sim.history.fail_next(10_000, HTTPStatus.SERVICE_UNAVAILABLE)  # REST down for now
                begin_outage = refuse_connections_for(collector, 12.0)
                begin_outage()
                await sim.disconnect_all()
                gap_minute = minute_of(int(time.time() * 1000))
                await wait_for(lambda: filler.stats.gaps_found == 1, within=40, what="the gap found")
                await wait_for(
                    lambda: datetime.now(UTC) > gap_minute + timedelta(minutes=1, seconds=3),
                    within=90,
                    what="the gap's minute over",
                )
                await writer.flush_watermarks()
                with open_autocommit(dsn) as conn:
                    shown = fetch_view(conn, "candles_1m")
                assert ("okx", "BTC-USDT", gap_minute) not in shown, "a candle over an open gap showed"
                sim.history.heal()  # REST is back
                await wait_for(lambda: filler.stats.gaps_filled == 1, within=90, what="the gap filled")
                await wait_for(
                    lambda: (
                        (writer.watermarks.marks().get(("okx", "BTC-USDT"), 0) or 0)
                        >= int((gap_minute + timedelta(minutes=1)).timestamp() * 1000)
                    ),
                    within=30,
                    what="the watermark past the gap's minute",
                )
                await writer.flush_watermarks()
        finally:
            await writer.stop(30)
    published = [
        Trade(
            int(t.trade_id),
            "okx",
            t.inst_id,
            t.trade_id,
            Decimal(t.price),
            Decimal(t.size),
            datetime.fromtimestamp(t.ts_ms / 1000, UTC),
            1,
            int(t.trade_id),
        )
        for t in sim.published_trades("BTC-USDT")
        if minute_of(t.ts_ms) == gap_minute
    ]
    with open_autocommit(dsn) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        expected = reference_candles(published, TIMEFRAMES["1m"], now)
        key = ("okx", "BTC-USDT", gap_minute)
        assert key in expected
        shown = fetch_view(conn, "candles_1m")
    assert_matches({key: shown[key]}, {key: expected[key]}, "candles_1m over the filled gap")
