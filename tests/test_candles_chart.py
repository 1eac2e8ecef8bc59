"""`tcpd candles show --chart`: a candlestick chart with volume, in the terminal (cli/candle_chart.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.candle_chart import candle_chart, panel_heights, tick_indices
from cli.main import app
from tests.candles_support import Trade, load_trades, open_autocommit

runner = CliRunner()
START = datetime(2025, 3, 8, 21, 0, tzinfo=UTC)
MINUTES = 12
HIGH = Decimal("30500")  # minute 7's high, the highest of all
LOW = Decimal("30100")  # minute 3's low, the lowest of all


def minute_trades(minute: int, first_id: int) -> list[Trade]:
    """open, high, low, close of one minute: rising on even minutes, falling on odd ones."""
    base = Decimal(30200 + 20 * minute)
    high = HIGH if minute == 7 else base + 30
    low = LOW if minute == 3 else base - 30
    close = base + 10 if minute % 2 == 0 else base - 10
    at = START + timedelta(minutes=minute)
    size = Decimal(minute + 1)
    return [
        Trade(first_id + n, "okx", "BTC-USDT", f"t{first_id + n}", price, size, at + timedelta(seconds=n))
        for n, price in enumerate([base, high, low, close])
    ]


def show(dsn: str, *extra: str, symbol: str = "BTC-USDT", env: dict[str, str] | None = None) -> Any:
    args = ["candles", "show", "--exchange", "okx", "--symbol", symbol, "--timeframe", "1m"]
    return runner.invoke(app, [*args, "--database-url", dsn, *extra], env=env)


@pytest.fixture
def candles_dsn(migrated_db_dsn: str) -> str:
    trades = [t for m in range(MINUTES) for t in minute_trades(m, 1 + 4 * m)]
    with open_autocommit(migrated_db_dsn) as conn:
        load_trades(conn, trades)
    return migrated_db_dsn


def test_chart_draws_the_candles_the_table_shows_in_80_columns(candles_dsn: str) -> None:
    result = show(candles_dsn, "--limit", "50", "--chart", env={"COLUMNS": "80", "LINES": "24"})
    assert result.exit_code == 0, result.output
    text = result.output
    lines = text.splitlines()
    assert "okx BTC-USDT 1m (ts = interval end, UTC)" in lines[0]
    assert "\x1b[" not in text  # not a terminal: no colour codes
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert len(lines) <= 23  # LINES=24, one line left for the prompt
    # the price axis runs from the lowest low to the highest high, as plotext rounds them
    axis = [line.split("┤")[0].strip() for line in lines if "┤" in line]
    assert str(HIGH) in axis
    assert str(LOW) in axis
    # candle bodies and wicks, and the frame
    assert "█" in text
    assert "│" in text
    assert "┌" in text
    # time on x: the first and last candles' end times, in UTC
    assert "03-08 21:01" in text
    assert f"03-08 21:{MINUTES:02d}" in text
    # the volume panel below the candles: sizes are minute + 1, so the largest volume is 4 * 12
    volume_at = next(i for i, line in enumerate(lines) if line.strip() == "volume")
    assert volume_at > 10
    assert any(line.split("┤")[0].strip() == "48" for line in lines[volume_at:] if "┤" in line)


def test_chart_follows_the_terminal_width_and_says_when_there_is_nothing(candles_dsn: str) -> None:
    narrow = show(candles_dsn, "--chart", env={"COLUMNS": "60", "LINES": "30"})
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.output.splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert max(len(line) for line in lines) >= 55  # it uses the width it has
    assert len(lines) <= 29

    empty = show(candles_dsn, "--chart", symbol="NOPE")
    assert empty.exit_code == 0, empty.output
    assert empty.output.strip() == "No closed 1m candles for okx NOPE."

    both = show(candles_dsn, "--chart", "--json")
    assert both.exit_code == 2
    assert "--chart and --json" in both.output


@pytest.fixture
def tokyo_time() -> Iterator[None]:
    """The process in UTC+9, where plotext's own date labels would be 9 hours off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        yield
    time.tzset()


def candle(minute: int, price: str) -> dict[str, Any]:
    value = Decimal(price)
    return {
        "ts": START + timedelta(minutes=minute + 1),
        "open": value,
        "high": value + 5,
        "low": value - 5,
        "close": value + 1,
        "volume": Decimal("2.5"),
    }


@pytest.mark.usefixtures("tokyo_time")
def test_time_labels_are_utc_whatever_the_local_time_zone() -> None:
    candles = [candle(m, "100") for m in range(5)]
    text = candle_chart(candles, "t", timedelta(minutes=1), (80, 24), colour=False)
    assert "03-08 21:01" in text
    assert "03-08 21:05" in text
    assert "03-09 06:0" not in text  # the same times in Tokyo


def test_colour_only_when_asked_and_day_candles_are_labelled_by_date() -> None:
    candles = [candle(m * 1440, "100") for m in range(3)]
    coloured = candle_chart(candles, "t", timedelta(days=1), (80, 24), colour=True)
    plain = candle_chart(candles, "t", timedelta(days=1), (80, 24), colour=False)
    assert "\x1b[" in coloured
    assert "\x1b[" not in plain
    assert "2025-03-09" in plain  # 21:01 on the 8th plus a day, as a date
    assert "21:01" not in plain
    assert 20 <= len(plain.splitlines()) <= 24
    # plotext keeps one global figure: a chart is drawn afresh, not into the last one's panels
    small = candle_chart(candles, "t", timedelta(days=1), (80, 12), colour=False)
    assert candle_chart(candles, "t", timedelta(days=1), (80, 24), colour=False) == plain
    assert candle_chart(candles, "t", timedelta(days=1), (80, 12), colour=False) == small


def test_the_volume_panel_takes_a_third_when_it_has_room_for_two_rows_of_bars() -> None:
    assert panel_heights(23) == (16, 7)
    assert panel_heights(18) == (12, 6)
    assert panel_heights(17) == (17, 0)


def test_time_labels_start_and_end_at_the_first_and_last_candle() -> None:
    assert tick_indices(3, 80) == [0, 1, 2]
    assert tick_indices(100, 80) == [0, 33, 66, 99]
    assert tick_indices(100, 20) == [0, 99]
