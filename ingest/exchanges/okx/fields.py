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

The venue-neutral part (decimal, symbol, trade-id and time bounds) lives in
ingest.exchanges.fields_common, shared with the other venues.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from ingest.errors import FrameError

# The venue-neutral bounds and checks, re-exported: OKX code and tests import them from here.
from ingest.exchanges.fields_common import MAX_FRACTION_DIGITS as MAX_FRACTION_DIGITS
from ingest.exchanges.fields_common import MAX_INT_DIGITS as MAX_INT_DIGITS
from ingest.exchanges.fields_common import MAX_MS as MAX_MS
from ingest.exchanges.fields_common import MAX_NUMBER_CHARS as MAX_NUMBER_CHARS
from ingest.exchanges.fields_common import MAX_SYMBOL_CHARS as MAX_SYMBOL_CHARS
from ingest.exchanges.fields_common import MAX_TRADE_ID_CHARS as MAX_TRADE_ID_CHARS
from ingest.exchanges.fields_common import MIN_MS as MIN_MS
from ingest.exchanges.fields_common import PLAIN_DECIMAL as PLAIN_DECIMAL
from ingest.exchanges.fields_common import is_number as is_number
from ingest.exchanges.fields_common import is_positive as is_positive
from ingest.exchanges.fields_common import show as _show

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


def check_levels(where: str, levels: object) -> None:
    """Refuse `levels` unless it is a list of [price, size, ...] with exact decimal strings."""
    if type(levels) is not list:
        raise FrameError(f"{where} must be a list of [price, size, ...] levels")
    for i, level in enumerate(levels):
        if type(level) is not list or len(level) < 2:
            raise FrameError(f"{where}[{i}] must be a [price, size, ...] list")
        check_value(f"{where}[{i}] price", Kind.POSITIVE, level[0])
        check_value(f"{where}[{i}] size", Kind.NUMBER, level[1])
