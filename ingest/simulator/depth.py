"""A full-depth OKX `books` book for one instId: a snapshot at subscribe, then an update
per push with the seqId/prevSeqId chain, from a book this object keeps. Pure: no I/O and
no clock (the caller passes the time).

Test hooks, each for the next update push: `inject_gap()` (one update is made and applied
but never sent, so the next one's prevSeqId skips it, as when a message is lost),
`inject_reset()` (the seqId restarts lower, as after OKX maintenance) and
`inject_heartbeats(n)` (n empty pushes with seqId == prevSeqId). `book_at(ts_ms)` and
`book_at_seq(seq_id)` give the book as it was, for comparing with a rebuild.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from decimal import Decimal
from typing import Any

import orjson

from ingest.books.book import Book

DEPTH = 400
FIRST_SEQ_ID = 5_000_000
RESET_SEQ_ID = 100
HISTORY = 50_000  # book states kept for book_at (an hour and a half at 10 pushes a second)
_TICK = Decimal("0.1")
_SIZES = tuple(f"{u // 10**8}.{u % 10**8:08d}" for u in (k * 7_368_787 % 299_999_999 + 1 for k in range(97)))

_State = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


class DepthBook:
    """One instId's generated full-depth book and its seqId chain."""

    def __init__(self, inst_id: str, mid: str = "60000.0", depth: int = DEPTH, seed: int = 13) -> None:
        self.inst_id = inst_id
        self.depth = depth
        self._rng = random.Random(seed)
        best_bid = Decimal(mid)
        self._grid_bids = [best_bid - _TICK * i for i in range(depth)]
        self._grid_asks = [best_bid + _TICK * (i + 1) for i in range(depth)]
        self.bids: dict[Decimal, str] = {p: self._size() for p in self._grid_bids}
        self.asks: dict[Decimal, str] = {p: self._size() for p in self._grid_asks}
        self.seq = FIRST_SEQ_ID
        self.ts = 0
        self._gap = False
        self._reset = False
        self._heartbeats = 0
        self._resets = 0
        # (ts, seq, state) after each change, oldest first
        self._history: deque[tuple[int, int, _State]] = deque(maxlen=HISTORY)
        self.sent = 0  # update pushes made (heartbeats included)

    # -- hooks -------------------------------------------------------------------------------
    def inject_gap(self) -> None:
        self._gap = True

    def inject_reset(self) -> None:
        self._reset = True

    def inject_heartbeats(self, n: int) -> None:
        self._heartbeats += n

    # -- pushes ------------------------------------------------------------------------------
    def snapshot(self, now_ms: int) -> bytes:
        """The `snapshot` push a new subscription starts with (prevSeqId -1)."""
        self.ts = max(self.ts + 1, now_ms)
        if not self._history:
            self._history.append((self.ts, self.seq, self._state()))
        item = self._item(_levels(self.bids, True), _levels(self.asks, False), -1, self.seq)
        return self._frame("snapshot", item)

    def update(self, now_ms: int) -> bytes:
        """The next `update` push (or a heartbeat, or an update after an injected gap/reset)."""
        self.sent += 1
        self.ts = max(self.ts + 1, now_ms)
        if self._heartbeats:
            self._heartbeats -= 1
            return self._frame("update", self._item([], [], self.seq, self.seq))
        if self._gap:
            self._gap = False
            self._change()  # made and applied, never sent: the lost message
            self.ts += 1
        prev = self.seq
        if self._reset:
            self._reset = False
            self._resets += 1
            self.seq = RESET_SEQ_ID * self._resets
        bids, asks = self._change(advance=False)
        self.seq += self._rng.randint(1, 3)
        self._history.append((self.ts, self.seq, self._state()))
        return self._frame("update", self._item(bids, asks, prev, self.seq))

    # -- the book as it was ------------------------------------------------------------------
    def book_at(self, ts_ms: int) -> Book:
        """The book after the last change stamped at or before `ts_ms`."""
        stamps = [h[0] for h in self._history]
        i = bisect.bisect_right(stamps, ts_ms) - 1
        if i < 0:
            raise ValueError(f"no book state at or before {ts_ms} ms (first kept: {stamps[:1]})")
        return _book(self._history[i][2])

    def book_at_seq(self, seq_id: int) -> Book:
        """The book right after the change numbered `seq_id` (the latest such, after a reset)."""
        for _ts, seq, state in reversed(self._history):
            if seq == seq_id:
                return _book(state)
        raise ValueError(f"no kept book state with seqId {seq_id}")

    def current(self) -> Book:
        return _book(self._state())

    # -- internals ---------------------------------------------------------------------------
    def _change(self, advance: bool = True) -> tuple[list[list[str]], list[list[str]]]:
        bids: list[list[str]] = []
        asks: list[list[str]] = []
        for _ in range(self._rng.randint(1, 6)):
            is_bid = self._rng.random() < 0.5
            grid, side, out = (
                (self._grid_bids, self.bids, bids) if is_bid else (self._grid_asks, self.asks, asks)
            )
            price = grid[min(int(self._rng.expovariate(1 / 20)), self.depth - 1)]
            if price in side and self._rng.random() < 0.3:
                del side[price]
                size = "0"
            else:
                size = side[price] = self._size()
            out.append([str(price), size, "0", "0" if size == "0" else str(self._rng.randint(1, 9))])
        if advance:
            self.seq += self._rng.randint(1, 3)
            self._history.append((self.ts, self.seq, self._state()))
        return bids, asks

    def _size(self) -> str:
        return _SIZES[self._rng.randrange(len(_SIZES))]

    def _state(self) -> _State:
        return (
            tuple((str(p), self.bids[p]) for p in sorted(self.bids, reverse=True)),
            tuple((str(p), self.asks[p]) for p in sorted(self.asks)),
        )

    def _item(self, bids: list[list[str]], asks: list[list[str]], prev: int, seq: int) -> dict[str, Any]:
        return {
            "asks": asks,
            "bids": bids,
            "ts": str(self.ts),
            "checksum": 0,
            "prevSeqId": prev,
            "seqId": seq,
        }

    def _frame(self, action: str, item: dict[str, Any]) -> bytes:
        arg = {"channel": "books", "instId": self.inst_id}
        return orjson.dumps({"arg": arg, "action": action, "data": [item]})


def _levels(side: dict[Decimal, str], best_high: bool) -> list[list[str]]:
    return [[str(p), side[p], "0", "1"] for p in sorted(side, reverse=best_high)]


def _book(state: _State) -> Book:
    book = Book()
    book.load(state[0], state[1])
    return book
