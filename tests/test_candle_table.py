"""`tcpd candles show`'s table at 80 columns and wider (cli/candle_table.py)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console

from cli.candle_table import candle_table, plain


def candle(minute: int) -> dict[str, Any]:
    return {
        "ts": datetime(2026, 12, 5, 2, minute, tzinfo=UTC),
        "open": Decimal("64096.90000000"),
        "high": Decimal("64120.12345678"),
        "low": Decimal("64001.5"),
        "close": Decimal("64100"),
        "volume": Decimal("123.456789010000"),
        "trade_count": 18234,
        "vwap": Decimal("64077.123456789123"),
    }


def render(width: int) -> tuple[str, list[str]]:
    out = io.StringIO()
    console = Console(file=out, width=width, highlight=False, color_system=None)
    table, left_out = candle_table(
        [candle(1), candle(2)], "okx BTC-USDT 1m (ts = interval end, UTC)", console
    )
    console.print(table)
    return out.getvalue(), left_out


def test_at_80_columns_the_time_and_every_digit_show_and_what_is_left_out_is_said() -> None:
    text, left_out = render(80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "…" not in text
    for shown in ("2026-12-05 02:01", "2026-12-05 02:02", "64096.9", "64120.12345678", "64001.5", "64100"):
        assert shown in text
    assert "123.45678901" in text
    assert left_out == ["trades", "vwap"]


def test_a_wide_terminal_shows_every_column() -> None:
    text, left_out = render(200)
    assert left_out == []
    assert "18234" in text
    assert "64077.12345679" in text  # vwap to 8 decimals, rounded


def test_plain_numbers_are_exact_without_trailing_zeros() -> None:
    assert plain(Decimal("64100.00000000")) == "64100"
    assert plain(Decimal("1E+2")) == "100"
    assert plain(Decimal("0.00001000")) == "0.00001"
    assert plain(None) == ""
