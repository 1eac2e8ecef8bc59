"""OKX `books` (400 levels, 100 ms): the seqId/prevSeqId chain of each instId, checked.

OKX's rules (v5 docs, "Order book channel", seqId and prevSeqId):
- A subscription starts with an `action: "snapshot"` push (prevSeqId -1), then `update`
  pushes; each update's prevSeqId is the seqId of the push before it.
- An update whose prevSeqId is not the previous seqId is a gap: a push was lost, the book
  is no longer known. We ask for a fresh snapshot (Control RESYNC: the collector
  resubscribes the pair), store a `gap` marker row, and drop the updates that arrive
  before the new snapshot (counted): they would be applied to a book that is wrong.
- An update without levels whose seqId equals its prevSeqId is a heartbeat (no change):
  nothing is stored.
- After a maintenance OKX may reset the sequence: an update whose seqId is LOWER than its
  prevSeqId (which still names the previous seqId). That is no gap: the chain goes on.
- `checksum` is deprecated (0 on every push since June 2026) and is not looked at.

The sequencer also keeps each instId's book (ingest.books.book, venue-neutral) and, every
`snapshot_interval_ms` of exchange time, adds a full snapshot of it (`"source":
"collector"`), so rebuilding the book at a time T never replays more than that interval
of updates (ingest.books.rebuild). Pure: no I/O, no clock; tested on frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.books.book import Book
from ingest.exchanges.base import Control, ControlKind
from ingest.exchanges.okx.channels import EXCHANGE
from ingest.model import DataType
from ingest.rows import DataRow, MarketRow

DEFAULT_SNAPSHOT_INTERVAL_MS = 60_000


@dataclass(frozen=True, slots=True)
class BookPush:
    """One validated item of a `books` push."""

    symbol: str
    action: str  # "snapshot" or "update"
    ts_ms: int
    seq_id: int
    prev_seq_id: int
    bids: list[list[Any]]
    asks: list[list[Any]]
    item: dict[str, Any]  # as delivered


@dataclass(slots=True)
class _Chain:
    last_seq: int | None = None  # None: no snapshot yet, or waiting for a fresh one
    resync_asked: bool = False
    book: Book = field(default_factory=Book)
    last_snapshot_ms: int = 0
    last_ts_ms: int = 0  # of the last push applied


@dataclass(slots=True)
class BookCounters:
    """What the sequencer saw, since it was made."""

    gaps: int = 0
    dropped: int = 0  # updates not stored: after a gap, before the fresh snapshot
    heartbeats: int = 0
    resets: int = 0


class BookSequencer:
    """Checks the chain of every instId's `books` pushes and turns them into rows."""

    def __init__(self, snapshot_interval_ms: int = DEFAULT_SNAPSHOT_INTERVAL_MS) -> None:
        self.snapshot_interval_ms = snapshot_interval_ms
        self._chains: dict[str, _Chain] = {}
        self.counters = BookCounters()
        # Controls (RESYNC) raised since the adapter last took them (take_controls).
        self._controls: list[Control] = []
        self._dropped_since = 0

    def book(self, symbol: str) -> Book | None:
        """The book kept for `symbol` (None before its first snapshot)."""
        chain = self._chains.get(symbol)
        return None if chain is None or chain.last_seq is None else chain.book

    def take_controls(self) -> list[Control]:
        controls, self._controls = self._controls, []
        return controls

    def take_dropped(self) -> int:
        dropped, self._dropped_since = self._dropped_since, 0
        return dropped

    def broken(self, symbol: str, why: str, rows: list[DataRow]) -> None:
        """An item of the chain could not be read (dead-lettered): the book is unknown from
        the last push applied on (its gap marker is stamped with that push's time)."""
        chain = self._chains.setdefault(symbol, _Chain())
        if chain.last_seq is None:
            return  # already unknown (and a fresh snapshot asked for, or on its way)
        push = BookPush(symbol, "update", chain.last_ts_ms, chain.last_seq, chain.last_seq, [], [], {})
        self._gap(chain, symbol, f"an unreadable push ({why})", push, rows)

    def accept(self, push: BookPush, rows: list[DataRow]) -> None:
        """Apply one push to its chain; append the rows to store."""
        chain = self._chains.get(push.symbol)
        if chain is None:
            chain = self._chains[push.symbol] = _Chain()
        if push.action == "snapshot":
            chain.book.load(push.bids, push.asks)
            chain.last_seq = push.seq_id
            chain.resync_asked = False
            chain.last_snapshot_ms = chain.last_ts_ms = push.ts_ms
            rows.append(_row(push, {"action": "snapshot", **push.item}))
            return
        if chain.last_seq is None:
            self.counters.dropped += 1
            self._dropped_since += 1
            if not chain.resync_asked:
                self._gap(chain, push.symbol, "an update before any snapshot", push, rows)
            return
        if push.prev_seq_id != chain.last_seq:
            why = f"prevSeqId {push.prev_seq_id} after seqId {chain.last_seq}"
            self.counters.dropped += 1
            self._dropped_since += 1
            self._gap(chain, push.symbol, why, push, rows)
            return
        if push.seq_id == push.prev_seq_id and not push.bids and not push.asks:
            self.counters.heartbeats += 1
            return
        if push.seq_id < push.prev_seq_id:
            self.counters.resets += 1
        chain.book.apply(push.bids, push.asks)
        chain.last_seq = push.seq_id
        chain.last_ts_ms = push.ts_ms
        rows.append(_row(push, {"action": "update", **push.item}))
        if push.ts_ms - chain.last_snapshot_ms >= self.snapshot_interval_ms:
            chain.last_snapshot_ms = push.ts_ms
            bids, asks = chain.book.top()
            snapshot = {
                "action": "snapshot",
                "source": "collector",
                "ts": str(push.ts_ms),
                "seqId": push.seq_id,
                "bids": bids,
                "asks": asks,
            }
            rows.append(_row(push, snapshot))

    def _gap(self, chain: _Chain, symbol: str, why: str, push: BookPush | None, rows: list[DataRow]) -> None:
        self.counters.gaps += 1
        expected = chain.last_seq
        chain.last_seq = None
        chain.resync_asked = True
        self._controls.append(Control(ControlKind.RESYNC, f"books {symbol}: sequence gap, {why}"))
        if push is not None:
            marker = {
                "action": "gap",
                "ts": str(push.ts_ms),
                "seqId": push.seq_id,
                "prevSeqId": push.prev_seq_id,
                "expectedPrevSeqId": expected,
            }
            rows.append(_row(push, marker))


def _row(push: BookPush, data: dict[str, Any]) -> MarketRow:
    return MarketRow(EXCHANGE, push.symbol, DataType.ORDERBOOK, push.ts_ms, orjson.dumps(data).decode())
