"""The table `tcpd candles show` prints: readable at any terminal width, 80 columns included.

The time is never cut and no digit is lost: numbers are printed exactly, without trailing
zeros, and when the terminal is too narrow for every column the rightmost optional columns
(vwap, then trades, then volume) are left out, with a line saying which and how to see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

# The first five columns (ts and the prices) always show.
_ALWAYS = 5


def plain(value: Decimal | None) -> str:
    """`value` exactly, in positional notation, without trailing zeros ("" for None)."""
    if value is None:
        return ""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _cells(candle: dict[str, Any]) -> list[str]:
    vwap = candle["vwap"]
    return [
        candle["ts"].astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        plain(candle["open"]),
        plain(candle["high"]),
        plain(candle["low"]),
        plain(candle["close"]),
        plain(candle["volume"]),
        str(candle["trade_count"]),
        "" if vwap is None else plain(vwap.quantize(Decimal("1e-8"))),
    ]


HEADERS = ("ts", "open", "high", "low", "close", "volume", "trades", "vwap")


def candle_table(candles: Sequence[dict[str, Any]], title: str, console: Console) -> tuple[Table, list[str]]:
    """The table of `candles` for `console`'s width, and the headers left out."""
    rows = [_cells(c) for c in candles]
    shown = len(HEADERS)
    table = _table(rows, title, shown)
    unbounded = console.options.update_width(10_000)  # the width the table wants, not what it gets
    while shown > _ALWAYS and console.measure(table, options=unbounded).maximum > console.width:
        shown -= 1
        table = _table(rows, title, shown)
    return table, list(HEADERS[shown:])


def _table(rows: list[list[str]], title: str, shown: int) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for i, name in enumerate(HEADERS[:shown]):
        if i == 0:
            table.add_column(name, justify="left", no_wrap=True)
        else:
            table.add_column(name, justify="right", overflow="fold")
    for row in rows:
        table.add_row(*row[:shown])
    return table
