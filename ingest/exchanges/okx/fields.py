"""Cheap checks for OKX wire values, and precise reasons when a check fails.

Accepted ranges (docs/collector.md, "Bad input"):

- Prices and sizes are exact plain decimals as OKX writes them ("63913.5", "0.00240857"):
  ASCII digits with at most one point ("5." and ".5" too, which numeric reads exactly);
  at most MAX_INT_DIGITS before the point and MAX_FRACTION_DIGITS after it.
  No sign, exponent, NaN, Infinity or
  whitespace. PostgreSQL's numeric would take "1e309" (and store 1 followed by 309 zeros),
  but no market has such a price: a bounded plain decimal is what a reader of raw_trades
  expects, and one absurd value can never make a COPY batch fail.
- A trade's price and size must be positive: a fill at price 0 or of size 0 is no trade
  (it would add a fill to a candle's trade_count and nothing to its volume). Book levels,
  ticker and candle numbers may be 0 (an empty level, a candle without volume).
- Instrument ids have 1 to MAX_SYMBOL_CHARS characters and trade ids 1 to
  MAX_TRADE_ID_CHARS, the widths of their columns (varchar(50), varchar(100)): a longer
  one would make the database refuse the row and the writer bisect its batch to find it.
- Timestamps are integer milliseconds since the epoch from MIN_MS (2010-01-01) to before
  MAX_MS (2100-01-01). Seconds sent as milliseconds land in 1970, microseconds or
  nanoseconds after 2100: both are refused. Fixed bounds, not ones relative to the
  receipt time, so parsing stays a pure function of the frame (recordings and replays keep
  their stamps) and a wrong local clock cannot dead-letter a healthy stream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from ingest.errors import FrameError

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
MS_DIGITS = 13  # every millisecond stamp in [MIN_MS, MAX_MS) has 13 digits

SIDES = frozenset({"buy", "sell"})


class Kind(Enum):
    """What a field must hold."""

    SYMBOL = f"a string of 1 to {MAX_SYMBOL_CHARS} characters"
    TRADE_ID = f"a string of 1 to {MAX_TRADE_ID_CHARS} characters"
    POSITIVE = f"a positive plain decimal string (at most {MAX_INT_DIGITS}.{MAX_FRACTION_DIGITS} digits)"
    NUMBER = f"a non-negative plain decimal string (at most {MAX_INT_DIGITS}.{MAX_FRACTION_DIGITS} digits)"
    NUMBER_OR_EMPTY = "a plain decimal string or empty"
    MS = "milliseconds since the epoch as a string, from 2010-01-01 to 2100-01-01"
    SIDE = "'buy' or 'sell'"


def _show(value: Any) -> str:
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


def ms_or_none(value: object) -> int | None:
    """The milliseconds a valid OKX timestamp string holds, or None."""
    if type(value) is not str or len(value) != MS_DIGITS or not (value.isdigit() and value.isascii()):
        return None
    ms = int(value)
    return ms if MIN_MS <= ms < MAX_MS else None


def value_problem(kind: Kind, value: object) -> str | None:
    """Why `value` is not of `kind`, or None when it is."""
    if type(value) is not str:
        return f"is not a string but {type(value).__name__} {_show(value)}"
    ok = {
        Kind.SYMBOL: 0 < len(value) <= MAX_SYMBOL_CHARS,
        Kind.TRADE_ID: 0 < len(value) <= MAX_TRADE_ID_CHARS,
        Kind.POSITIVE: is_positive(value),
        Kind.NUMBER: is_number(value),
        Kind.NUMBER_OR_EMPTY: not value or is_number(value),
        Kind.MS: ms_or_none(value) is not None,
        Kind.SIDE: value in SIDES,
    }[kind]
    return None if ok else f"must be {kind.value}, got {_show(value)}"


def check_object(where: str, obj: object, spec: Mapping[str, Kind]) -> Mapping[str, Any]:
    """Return `obj` as a mapping after checking every field in `spec`; FrameError otherwise."""
    if type(obj) is not dict:
        raise FrameError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for name, kind in spec.items():
        if name not in obj:
            raise FrameError(f"{where}: missing field {name!r}")
        problem = value_problem(kind, obj[name])
        if problem is not None:
            raise FrameError(f"{where}: field {name!r} {problem}")
    return obj


def check_value(where: str, kind: Kind, value: object) -> str:
    """Return `value` as a string after checking it is of `kind`; FrameError otherwise."""
    problem = value_problem(kind, value)
    if problem is not None:
        raise FrameError(f"{where} {problem}")
    assert type(value) is str  # value_problem rejects non-strings
    return value
