"""Cheap checks for OKX wire values, and precise reasons when a check fails.

Prices and sizes stay the exchange's exact decimal strings; a precompiled regex proves
they are finite, non-negative decimals without building a Decimal per value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from ingest.errors import FrameError

# Finite, non-negative decimals as OKX writes them ("63913.5", "0.00240857", "1e-8").
# No sign, no NaN/Infinity, no whitespace: anything else is a malformed frame. Digit counts
# are bounded so PostgreSQL's numeric always accepts the value and one absurd number can
# never make a COPY batch fail. ASCII only: `\d` would also take other scripts' digits,
# which numeric refuses.
NUMBER = re.compile(r"(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:[eE][+-]?\d{1,3})?", re.ASCII)

# Milliseconds since the epoch: at most 14 digits (year 5138), well inside timestamptz.
MAX_MS_DIGITS = 14

SIDES = frozenset({"buy", "sell"})


class Kind(Enum):
    """What a field must hold."""

    TEXT = "a non-empty string"
    NUMBER = "a finite non-negative decimal string"
    NUMBER_OR_EMPTY = "a decimal string or empty"
    MS = "integer milliseconds as a string of at most 14 digits"
    SIDE = "'buy' or 'sell'"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_number(value: str) -> bool:
    """A decimal as NUMBER defines it; the common plain form skips the regex (2x cheaper)."""
    return (len(value) <= 40 and value.replace(".", "", 1).isdigit() and value.isascii()) or (
        NUMBER.fullmatch(value) is not None
    )


def is_ms(value: object) -> bool:
    """True for a string of ASCII digits (OKX timestamps are ms strings)."""
    return type(value) is str and len(value) <= MAX_MS_DIGITS and value.isascii() and value.isdigit()


def value_problem(kind: Kind, value: object) -> str | None:
    """Why `value` is not of `kind`, or None when it is."""
    if type(value) is not str:
        return f"is not a string but {type(value).__name__} {_show(value)}"
    ok = {
        Kind.TEXT: bool(value),
        Kind.NUMBER: is_number(value),
        Kind.NUMBER_OR_EMPTY: not value or is_number(value),
        Kind.MS: is_ms(value),
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
