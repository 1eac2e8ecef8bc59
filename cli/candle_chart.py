"""The chart `tcpd candles show --chart` prints: candlesticks above, volume bars below.

Drawn by plotext, which only this module imports (and only `--chart` imports this module).
plotext plots floats: the chart is for the eye, the table and `--json` keep prices exact.

The time axis is the candle's end time (`ts`), labelled here in UTC: plotext 5.3 reads date
strings as UTC but writes its own tick labels in the machine's local time, so the labels are
passed to it (`xticks`) rather than left to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import plotext as plt  # type: ignore[import-untyped]  # plotext ships no type hints

# plotext's date strings, in its own notation (strftime codes without "%"), and ours.
_PLOTEXT_FORM = "Y-m-d H:M:S"
_STRFTIME_FORM = "%Y-%m-%d %H:%M:%S"
VOLUME_SHARE = 3  # the volume panel takes a third of the height
MIN_VOLUME_HEIGHT = 6  # title, frame, two rows of bars, frame, time labels
TICK_SPACING = 18  # about one time label per this many columns
PRICE_TICKS = 5
VOLUME_TICKS = 3
BAR_WIDTH = 0.8  # of an interval


def tick_label(ts: datetime, width: timedelta) -> str:
    """A candle's end time in UTC, as short as its timeframe allows."""
    utc = ts.astimezone(UTC)
    return utc.strftime("%Y-%m-%d") if width >= timedelta(days=1) else utc.strftime("%m-%d %H:%M")


def tick_indices(count: int, columns: int) -> list[int]:
    """Indices of the candles that get a time label: the first, the last, evenly between."""
    wanted = max(2, columns // TICK_SPACING)
    if count <= wanted:
        return list(range(count))
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)})


def panel_heights(height: int) -> tuple[int, int]:
    """(candles, volume) lines for a chart `height` lines tall; volume 0 when it does not fit."""
    volume = height // VOLUME_SHARE
    if volume < MIN_VOLUME_HEIGHT:
        return height, 0
    return height - volume, volume


def axis_ticks(low: float, high: float, count: int) -> tuple[list[float], list[str]]:
    """`count` evenly spaced values from `low` to `high` and their labels, with as many decimals
    as the spacing needs (one value when low == high)."""
    if high <= low:
        return [low], [_number(low, 0 if low == int(low) else 2)]
    step = (high - low) / (count - 1)
    decimals = min(8, max(0, 1 - math.floor(math.log10(step))))
    values = [low + i * step for i in range(count - 1)] + [high]
    return values, [_number(v, decimals) for v in values]


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def candle_chart(
    candles: Sequence[dict[str, Any]],
    title: str,
    timeframe_width: timedelta,
    size: tuple[int, int],
    colour: bool,
) -> str:
    """The chart of `candles` (oldest first, at least one) in `size` = (columns, lines).

    Without `colour` the text has no escape codes (for pipes, files and NO_COLOR). No newline
    at the end.
    """
    width, height = size
    price_height, volume_height = panel_heights(height)
    first = candles[0]["ts"]
    # x: the end time, as plotext's date strings (candles) and as intervals since the first (volume)
    dates = [_date(c["ts"]) for c in candles]
    slots = [(c["ts"] - first) / timeframe_width for c in candles]
    ticks = tick_indices(len(candles), width)
    tick_labels = [tick_label(candles[i]["ts"], timeframe_width) for i in ticks]
    half = timeframe_width / 2
    price_ticks, price_labels = axis_ticks(
        min(float(c["low"]) for c in candles), max(float(c["high"]) for c in candles), PRICE_TICKS
    )
    volumes = [float(c["volume"]) for c in candles]
    volume_ticks, volume_labels = axis_ticks(0.0, max(volumes), VOLUME_TICKS)
    # the same label width on both panels, so that their plot areas line up column for column
    label_width = max(map(len, price_labels + volume_labels))

    _reset()
    plt.limit_size(False, False)  # the size is ours (COLUMNS/LINES or 80x25 off a terminal)
    plt.subplots(2 if volume_height else 1, 1)

    plt.subplot(1, 1)
    plt.plot_size(width, price_height)
    plt.theme("clear")
    plt.date_form(_PLOTEXT_FORM)
    plt.candlestick(dates, _ohlc(candles), colors=["green", "red"])  # rising, falling
    plt.xlim(_date(first - half), _date(candles[-1]["ts"] + half))
    plt.xticks([dates[i] for i in ticks], tick_labels)
    plt.yticks(price_ticks, [label.rjust(label_width) for label in price_labels])
    plt.title(title)

    if volume_height:
        plt.subplot(2, 1)
        plt.plot_size(width, volume_height)
        plt.theme("clear")
        # plotext's bar width is relative to the mean spacing of the bars, which gaps (intervals
        # without trades) widen: scaled back, every bar is BAR_WIDTH of one interval wide
        spacing = slots[-1] / (len(slots) - 1) if len(slots) > 1 else 1.0
        plt.bar(slots, volumes, width=BAR_WIDTH / spacing, reset_ticks=False)
        plt.xlim(-0.5, slots[-1] + 0.5)
        plt.xticks([slots[i] for i in ticks], tick_labels)
        plt.yticks(volume_ticks, [label.rjust(label_width) for label in volume_labels])
        plt.title("volume")

    text = str(plt.build()).rstrip("\n")
    _reset()
    return text if colour else str(plt.uncolorize(text))


def _reset() -> None:
    # plotext keeps one global figure: clear the whole of it, not only the active subplot
    plt.main()
    plt.clear_figure()


def _date(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime(_STRFTIME_FORM)


def _ohlc(candles: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    return {name: [float(c[name.lower()]) for c in candles] for name in ("Open", "High", "Low", "Close")}
