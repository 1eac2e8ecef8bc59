"""A price-level book: price -> size per side, prices and sizes kept as the exact decimal
strings the venue sent.

Levels are keyed by their Decimal value, so "63913.5" and "63913.50" are one level; the
string kept is the last one the venue sent for it. A size that is zero deletes the level.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

Level = tuple[str, str]  # (price, size), exact decimal strings
_ZERO = Decimal(0)


class Book:
    """Both sides of one symbol's book."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[Decimal, Level] = {}
        self.asks: dict[Decimal, Level] = {}

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def apply(self, bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]]) -> None:
        """Apply levels [price, size, ...] (extra fields ignored); size 0 deletes the level."""
        _apply(self.bids, bids)
        _apply(self.asks, asks)

    def load(self, bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]]) -> None:
        """Replace the whole book with a snapshot's levels."""
        self.clear()
        self.apply(bids, asks)

    def top(self, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """(bids best first, asks best first), at most `depth` levels each (None: all)."""
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:depth]]
        asks = [self.asks[p] for p in sorted(self.asks)[:depth]]
        return bids, asks

    def canonical(self, depth: int | None = None) -> tuple[list[tuple[Decimal, Decimal]], ...]:
        """The book as Decimal pairs, best first: for comparing books value for value."""
        bids, asks = self.top(depth)
        return (
            [(Decimal(p), Decimal(s)) for p, s in bids],
            [(Decimal(p), Decimal(s)) for p, s in asks],
        )


def _apply(side: dict[Decimal, Level], levels: Iterable[Sequence[Any]]) -> None:
    for level in levels:
        price, size = str(level[0]), str(level[1])
        key = Decimal(price)
        if Decimal(size) == _ZERO:
            side.pop(key, None)
        else:
            side[key] = (price, size)
