"""Checks for Binance wire values; each returns the checked value or raises FrameError(reason).

Binance writes prices and sizes as decimal strings ("0.35280000": kept exactly as sent),
ids and times as JSON integers and flags as JSON booleans.

Timestamps: milliseconds by default, microseconds on a connection opened with
timeUnit=MICROSECOND. The unit is decided per value by magnitude, so one parser reads both
kinds of connection and needs no setting: from MIN_MS to MAX_MS (13 digits, 2010 to 2100)
it is milliseconds; the same range times 1000 (16 digits) is microseconds, truncated to
milliseconds. The two ranges do not overlap; anything else (seconds, nanoseconds, a
negative or fractional number) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.errors import FrameError
from ingest.exchanges.fields_common import (
    MAX_MS,
    MAX_SYMBOL_CHARS,
    MIN_MS,
    NUMBER_TEXT,
    POSITIVE_TEXT,
    is_number,
    is_positive,
    show,
)

MIN_US = MIN_MS * 1000
MAX_US = MAX_MS * 1000
MAX_ID = 2**63 - 1  # ids land in bigint columns (raw_trades.trade_seq)

MS_TEXT = "an integer time in milliseconds (or microseconds) since the epoch, from 2010-01-01 to 2100-01-01"
ID_TEXT = "a non-negative integer"
SYMBOL_TEXT = f"a string of 1 to {MAX_SYMBOL_CHARS} characters"


def ms_or_none(value: object) -> int | None:
    """Milliseconds of a Binance time value (ms or µs, see the module docstring), or None."""
    if type(value) is not int:  # not a bool, which is a subclass of int
        return None
    if MIN_MS <= value < MAX_MS:
        return value
    if MIN_US <= value < MAX_US:
        return value // 1000
    return None


def get(where: str, obj: Mapping[str, Any], name: str) -> Any:
    """obj[name]; FrameError naming the field when it is missing."""
    try:
        return obj[name]
    except KeyError:
        raise FrameError(f"{where}: missing field {name!r}") from None


def _bad(where: str, name: str, must: str, value: object) -> FrameError:
    kind = "" if value.__class__ is str else f"{type(value).__name__} "
    return FrameError(f"{where}: field {name!r} must be {must}, got {kind}{show(value)}")


def positive(where: str, obj: Mapping[str, Any], name: str) -> str:
    """A positive plain decimal string (prices, trade sizes)."""
    value = get(where, obj, name)
    if type(value) is not str or not is_positive(value):
        raise _bad(where, name, POSITIVE_TEXT, value)
    return value


def number(where: str, obj: Mapping[str, Any], name: str) -> str:
    """A non-negative plain decimal string (book sizes, volumes, an empty book side's 0)."""
    value = get(where, obj, name)
    if type(value) is not str or not is_number(value):
        raise _bad(where, name, NUMBER_TEXT, value)
    return value


def symbol(where: str, obj: Mapping[str, Any], name: str = "s") -> str:
    """Binance's uppercase symbol as the payload spells it ("BTCUSDT")."""
    value = get(where, obj, name)
    if type(value) is not str or not 0 < len(value) <= MAX_SYMBOL_CHARS:
        raise _bad(where, name, SYMBOL_TEXT, value)
    return value


def ms(where: str, obj: Mapping[str, Any], name: str) -> int:
    """A time field, in milliseconds."""
    value = get(where, obj, name)
    result = ms_or_none(value)
    if result is None:
        raise _bad(where, name, MS_TEXT, value)
    return result


def uint(where: str, obj: Mapping[str, Any], name: str) -> int:
    """An id or count: a JSON integer from 0 to 2^63-1."""
    value = get(where, obj, name)
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise _bad(where, name, ID_TEXT, value)
    return value


def flag(where: str, obj: Mapping[str, Any], name: str) -> bool:
    """A JSON boolean."""
    value = get(where, obj, name)
    if type(value) is not bool:
        raise _bad(where, name, "true or false", value)
    return value


def obj_of(where: str, value: object) -> dict[str, Any]:
    """`value` as a JSON object; FrameError otherwise."""
    if type(value) is not dict:
        raise FrameError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def levels(where: str, obj: Mapping[str, Any], name: str) -> None:
    """A book side: a list of [price, size] pairs, price positive, size non-negative."""
    value = get(where, obj, name)
    if type(value) is not list:
        raise FrameError(f"{where}: field {name!r} must be a list of [price, size] levels")
    for i, level in enumerate(value):
        if type(level) is not list or len(level) < 2:
            raise FrameError(f"{where}: {name}[{i}] must be a [price, size] list")
        price, size = level[0], level[1]
        if type(price) is not str or not is_positive(price):
            raise FrameError(f"{where}: {name}[{i}] price must be {POSITIVE_TEXT}, got {show(price)}")
        if type(size) is not str or not is_number(size):
            raise FrameError(f"{where}: {name}[{i}] size must be {NUMBER_TEXT}, got {show(size)}")
