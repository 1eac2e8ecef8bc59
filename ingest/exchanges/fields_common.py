"""Venue-neutral bounds and checks for wire values, shared by every exchange adapter.

- Prices and sizes are exact plain decimals as exchanges write them ("63913.5",
  "0.00240857"): ASCII digits with at most one point ("5." and ".5" too, which numeric
  reads exactly); at most MAX_INT_DIGITS before the point and MAX_FRACTION_DIGITS after it.
  No sign, exponent, NaN, Infinity or whitespace: a bounded plain decimal is what a reader
  of raw_trades expects, and one absurd value can never make a COPY batch fail.
- Symbols have 1 to MAX_SYMBOL_CHARS characters and trade ids 1 to MAX_TRADE_ID_CHARS,
  the widths of their columns (varchar(50), varchar(100)).
- Timestamps are milliseconds since the epoch from MIN_MS (2010-01-01) to before MAX_MS
  (2100-01-01): fixed bounds, so parsing stays a pure function of the frame.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MAX_INT_DIGITS = 20  # 10^20: beyond any price or size in any unit
MAX_FRACTION_DIGITS = 20  # beyond the 18 decimals of the finest token units
MAX_NUMBER_CHARS = MAX_INT_DIGITS + 1 + MAX_FRACTION_DIGITS
PLAIN_DECIMAL = re.compile(
    rf"\d{{1,{MAX_INT_DIGITS}}}(?:\.\d{{0,{MAX_FRACTION_DIGITS}}})?|\.\d{{1,{MAX_FRACTION_DIGITS}}}", re.ASCII
)

MAX_SYMBOL_CHARS = 50  # raw_trades.symbol, market_data.symbol: varchar(50)
MAX_TRADE_ID_CHARS = 100  # raw_trades.trade_id: varchar(100)

MIN_MS = 1_262_304_000_000  # 2010-01-01T00:00:00Z
MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z, excluded

POSITIVE_TEXT = f"a positive plain decimal string (at most {MAX_INT_DIGITS}.{MAX_FRACTION_DIGITS} digits)"
NUMBER_TEXT = f"a non-negative plain decimal string (at most {MAX_INT_DIGITS}.{MAX_FRACTION_DIGITS} digits)"


def show(value: Any) -> str:
    """`value` as a reason quotes it: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_number(value: str) -> bool:
    """A bounded, non-negative plain decimal; the common short form skips the regex (2x cheaper)."""
    # At most MAX_INT_DIGITS characters: then neither part can be too long.
    if len(value) <= MAX_INT_DIGITS and value.replace(".", "", 1).isdigit() and value.isascii():
        return True
    return len(value) <= MAX_NUMBER_CHARS and PLAIN_DECIMAL.fullmatch(value) is not None


def is_positive(value: str) -> bool:
    """A number as is_number defines it, and not zero (the hot path: one call per value)."""
    if len(value) <= MAX_INT_DIGITS and value.replace(".", "", 1).isdigit() and value.isascii():
        # "." sorts before "0": a value starting with 1-9 is positive without the strip.
        return value[0] > "0" or value.strip("0.") != ""
    return (
        len(value) <= MAX_NUMBER_CHARS
        and PLAIN_DECIMAL.fullmatch(value) is not None
        and value.strip("0.") != ""
    )


def json_object(frame: bytes) -> dict[str, Any] | None:
    """The frame as a JSON object, or None when it is not one (routing's slow path)."""
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    return msg if type(msg) is dict else None
