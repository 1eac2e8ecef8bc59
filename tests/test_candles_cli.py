"""`tcpd candles` against real engines: show (table and JSON), refresh, policy show."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from typer.testing import CliRunner

from cli.candles import Timeframe, refresh_windows
from cli.main import app
from tests.candles_support import (
    PAST_SPAN,
    PAST_START,
    Trade,
    assert_all_views,
    db_now,
    fetch_view,
    generate_trades,
    load_trades,
    open_autocommit,
    refresh_all,
)

runner = CliRunner()


def test_refresh_windows_cover_whole_intervals_and_stop_before_the_open_one() -> None:
    now = datetime(2025, 5, 1, 10, 7, 30, tzinfo=UTC)
    start = datetime(2025, 5, 1, 9, 58, 10, tzinfo=UTC)
    windows = refresh_windows(start, now + timedelta(days=1), now, list(Timeframe))
    assert [(tf.value, lo, hi) for tf, lo, hi in windows] == [
        ("1m", datetime(2025, 5, 1, 9, 58, tzinfo=UTC), datetime(2025, 5, 1, 10, 7, tzinfo=UTC)),
        ("5m", datetime(2025, 5, 1, 9, 55, tzinfo=UTC), datetime(2025, 5, 1, 10, 5, tzinfo=UTC)),
        ("15m", datetime(2025, 5, 1, 9, 45, tzinfo=UTC), datetime(2025, 5, 1, 10, 0, tzinfo=UTC)),
        ("1h", datetime(2025, 5, 1, 9, 0, tzinfo=UTC), datetime(2025, 5, 1, 10, 0, tzinfo=UTC)),
    ]  # 4h and 1d: the interval holding `start` is still open, nothing to refresh
    closed = refresh_windows(start, start + timedelta(seconds=1), now, [Timeframe.M5])
    assert [(lo, hi) for _, lo, hi in closed] == [
        (datetime(2025, 5, 1, 9, 55, tzinfo=UTC), datetime(2025, 5, 1, 10, 0, tzinfo=UTC))
    ]


@pytest.mark.tsl
def test_show_prints_the_latest_closed_candles_as_table_and_json(migrated_tsl_dsn: str) -> None:
    trades = generate_trades(random.Random(31), PAST_START, PAST_SPAN, count=600)
    with open_autocommit(migrated_tsl_dsn) as conn:
        load_trades(conn, trades)
        view = fetch_view(conn, "candles_5m")
    mine = sorted((k, v) for k, v in view.items() if k[:2] == ("okx", "ETH-USDT"))
    args = ["candles", "show", "--exchange", "okx", "--symbol", "ETH-USDT", "--timeframe", "5m"]
    args += ["--database-url", migrated_tsl_dsn]
    result = runner.invoke(app, [*args, "--limit", "3", "--json"])
    assert result.exit_code == 0, result.output
    got = orjson.loads(result.output)
    assert [row["ts"] for row in got] == [v["ts"].strftime("%Y-%m-%dT%H:%M:%SZ") for _, v in mine[-3:]]
    for row, (_, want) in zip(got, mine[-3:], strict=True):
        assert Decimal(row["open"]) == want["open"]
        assert Decimal(row["close"]) == want["close"]
        assert Decimal(row["quote_volume"]) == want["quote_volume"]
        assert Decimal(row["base_volume"]) == want["base_volume"]
        assert row["trade_count"] == want["trade_count"]
    table = runner.invoke(app, [*args, "--limit", "2"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    last = mine[-1][1]
    assert last["ts"].strftime("%Y-%m-%d %H:%M") in table.output
    assert str(last["close"]) in table.output
    # An 80-column terminal: the time is whole, what does not fit is named.
    narrow = runner.invoke(app, [*args, "--limit", "2"], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    assert last["ts"].strftime("%Y-%m-%d %H:%M") in narrow.output
    assert "…" not in narrow.output
    assert all(len(line) <= 80 for line in narrow.output.splitlines())
    empty = runner.invoke(app, [*args[:5], "NOPE", *args[6:]])
    assert empty.exit_code == 0
    assert "No closed 5m candles" in empty.output


@pytest.mark.tsl
def test_refresh_after_backfill_and_its_guards(migrated_tsl_dsn: str) -> None:
    trades = generate_trades(random.Random(32), PAST_START, PAST_SPAN, count=600)
    base = ["--database-url", migrated_tsl_dsn]
    with open_autocommit(migrated_tsl_dsn) as conn:
        now = db_now(conn)
        # Recent enough to be inside the raw retention, older than every policy window.
        day = (now - timedelta(days=60)).replace(hour=0, minute=0, second=0, microsecond=0)
        shift = day - PAST_START.replace(hour=0)
        trades = [replace(t, ts=t.ts + shift) for t in trades]
        start = PAST_START + shift
        load_trades(conn, trades)
        refresh_all(conn, start - timedelta(days=1), start + timedelta(days=4))
        backfill = [
            Trade(10**7 + n, t.exchange, t.symbol, f"bf{n}", t.price + 1, t.size, t.ts)
            for n, t in enumerate(trades[::7])
        ]
        load_trades(conn, backfill)
        with pytest.raises(AssertionError):  # materialized: the backfill is not visible yet
            assert_all_views(conn, [*trades, *backfill])
        window = [
            "--from",
            (start - timedelta(hours=1)).isoformat(),
            "--to",
            (start + PAST_SPAN + timedelta(hours=1)).isoformat(),
        ]
        result = runner.invoke(app, ["candles", "refresh", *window, *base])
        assert result.exit_code == 0, result.output
        assert "refreshed candles_1d" in result.output
        assert_all_views(conn, [*trades, *backfill])

        too_old = ["--from", "2001-01-01", "--to", "2001-01-02"]
        refused = runner.invoke(app, ["candles", "refresh", *too_old, *base])
        assert refused.exit_code == 1
        assert "would delete those candles" in refused.output
        bad = runner.invoke(app, ["candles", "refresh", "--from", "yesterday", "--to", "now", *base])
        assert bad.exit_code == 1
        assert "not an ISO 8601 time" in bad.output
        policies = runner.invoke(app, ["candles", "policy", "show", *base], env={"COLUMNS": "200"})
        assert policies.exit_code == 0, policies.output
        assert "candles_1m_agg" in policies.output
        assert "730 days" in policies.output

        policy = ["candles", "policy"]
        short = runner.invoke(app, [*policy, "raw-retention", "20 days", *base])
        assert short.exit_code == 1
        assert "inside the 1d refresh window" in short.output
        assert "hint: keep raw data at least start_offset + 7 days" in short.output
        for command in (
            ["raw-retention", "3 years"],
            ["compress-after", "never"],
            ["candle-retention", "1d", "5 years"],
            ["refresh", "1h", "--start-offset", "10 days", "--end-offset", "2 hours", "--schedule", "1 hour"],
        ):
            done = runner.invoke(app, [*policy, *command, *base])
            assert done.exit_code == 0, done.output
        rows = conn.execute(
            "SELECT kind, relation, start_offset, end_offset, drop_after FROM tcpd_candle_policies"
            " WHERE kind <> 'refresh' OR timeframe = '1h' ORDER BY kind, relation"
        ).fetchall()
        assert rows == [
            ("refresh", "candles_1h_agg", timedelta(days=10), timedelta(hours=2), None),
            ("retention", "candles_1d_agg", None, None, timedelta(days=1825)),
            ("retention", "market_data", None, None, timedelta(days=1095)),
            ("retention", "raw_trades", None, None, timedelta(days=1095)),
        ]


@pytest.mark.db
def test_refresh_and_policies_on_the_apache_edition(migrated_db_dsn: str) -> None:
    base = ["--database-url", migrated_db_dsn]
    result = runner.invoke(app, ["candles", "refresh", "--from", "2025-01-01", "--to", "2025-01-02", *base])
    assert result.exit_code == 0, result.output
    assert "materialized candles rebuilt" in result.output
    policies = runner.invoke(app, ["candles", "policy", "show", *base])
    assert policies.exit_code == 0, policies.output
    assert "No policies" in policies.output
    refused = runner.invoke(app, ["candles", "policy", "raw-retention", "3 years", *base])
    assert refused.exit_code == 1
    assert "Apache edition has no policies" in refused.output


def test_refresh_refuses_windows_whose_source_candles_a_retention_dropped(migrated_tsl_dsn: str) -> None:
    base = ["--database-url", migrated_tsl_dsn]
    with open_autocommit(migrated_tsl_dsn) as conn:
        now = db_now(conn)
        conn.execute("SELECT tcpd_set_candle_retention('1m', INTERVAL '90 days')")
    window = [
        "--from",
        (now - timedelta(days=100)).isoformat(),
        "--to",
        (now - timedelta(days=99)).isoformat(),
    ]
    # 5m and coarser are rebuilt from candles_1m, whose rows older than 90 days are dropped:
    # the raw trades are still there (730 days), but the 5m refresh would read no 1m candles.
    refused = runner.invoke(app, ["candles", "refresh", *window, *base], env={"COLUMNS": "300"})
    assert refused.exit_code == 1, refused.output
    text = " ".join(refused.output.split())
    assert "reaches candles_1m candles the retention policy drops (older than 90 days" in text
    assert "refreshing candles_5m there would delete those candles" in text
    assert "tcpd candles policy candle-retention 1m never" in text
    # Inside both retentions the same refresh runs.
    recent = [
        "--from",
        (now - timedelta(days=80)).isoformat(),
        "--to",
        (now - timedelta(days=79)).isoformat(),
    ]
    allowed = runner.invoke(app, ["candles", "refresh", *recent, *base])
    assert allowed.exit_code == 0, allowed.output
    assert "refreshed candles_5m" in allowed.output
