"""Unequal trade rates: a few symbols busy, most quiet, as on a real venue.

`--skew zipf:S` gives the k-th symbol (from 1, in the order of --symbols) a weight of 1/k^S;
each symbol trades at rate * weight / sum(weights). S = 0 is an even split. Pure: no I/O, no
clock. Both simulators' publishing loops hand out their allowance of trades through a
WeightedShares, which keeps each symbol's fractional remainder for the next step, so even a
symbol due 0.01 trades a step trades at its rate.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

from ingest.errors import ConfigError

K = TypeVar("K", bound=Hashable)


def parse_skew(spec: str, count: int) -> tuple[float, ...]:
    """The weights of `count` symbols for a --skew value such as "zipf:1.2"."""
    kind, _, value = spec.partition(":")
    try:
        exponent = float(value)
    except ValueError:
        exponent = -1.0
    if kind != "zipf" or not 0 <= exponent <= 10:
        raise ConfigError(f"--skew is {spec!r}; use zipf:S with 0 <= S <= 10, e.g. zipf:1.2")
    return tuple(1.0 / k**exponent for k in range(1, count + 1))


class WeightedShares(Generic[K]):
    """Splits an allowance of trades between keys in proportion to their weights.

    split() credits each key its part of the allowance and returns the whole trades due now;
    spend() takes off what was really sent (a publisher may round up, e.g. to a whole Binance
    aggregate). A credit never grows past `cap`, so a key that could not send (no subscriber,
    exhausted) does not burst later.
    """

    def __init__(self, weights: dict[K, float], cap: float) -> None:
        if not weights or min(weights.values()) <= 0:
            raise ConfigError("skew weights must be positive")
        self._weights = weights
        self._credit: dict[K, float] = dict.fromkeys(weights, 0.0)
        self._cap = cap

    def split(self, allowance: int, keys: Sequence[K]) -> list[int]:
        """Credit `allowance` trades over `keys` by weight; the whole trades each may send now."""
        weights, credit, cap = self._weights, self._credit, self._cap
        total = sum(weights[k] for k in keys)
        out = []
        for k in keys:
            c = min(cap, credit[k] + allowance * weights[k] / total)
            credit[k] = c
            out.append(int(c) if c >= 1 else 0)
        return out

    def spend(self, key: K, sent: int) -> None:
        """`sent` trades of `key` went out."""
        self._credit[key] -= sent


def rate_of(weights: Sequence[float], index: int, rate: float) -> float:
    """The trade rate of symbol `index` when `rate` is split by `weights`."""
    return rate * weights[index] / sum(weights)
