"""The book of one symbol at a time T, rebuilt from market_data's `orderbook` rows.

What the collector stores for an incremental book (docs/books.md): the venue's snapshot
and update pushes as delivered (`"action": "snapshot" | "update"`, seqId, prevSeqId),
`gap` markers where the sequence broke, and every book_snapshot_interval a full snapshot
of the book it keeps (`"source": "collector"`). The rebuild reads the last snapshot at or
before T, then applies the updates after it up to T in storage order (timestamp, then
the row id the database gave at insert, which keeps the order the collector received
them in). Each update's prevSeqId must be the seqId before it; a gap marker or a broken
chain between the snapshot and T means the book at T is not known: BookError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ingest.books.book import Book
from ingest.errors import BookError, DatabaseError
from ingest.model import DataType
from ingest.redact import redact_text

_SNAPSHOT = """
SELECT id, "timestamp", data FROM market_data
WHERE exchange = %s AND symbol = %s AND data_type = %s AND "timestamp" <= %s
  AND data ->> 'action' = 'snapshot'
ORDER BY "timestamp" DESC, id DESC LIMIT 1
"""
_AFTER = """
SELECT id, "timestamp", data FROM market_data
WHERE exchange = %s AND symbol = %s AND data_type = %s AND "timestamp" >= %s AND "timestamp" <= %s
  AND data ->> 'action' IN ('update', 'gap')
ORDER BY "timestamp", id
"""


@dataclass(frozen=True, slots=True)
class RebuiltBook:
    """A book as it was at `at`: from the snapshot stored at `snapshot_time` and
    `updates` updates after it; `seq_id` is the venue's sequence number of its last change."""

    exchange: str
    symbol: str
    at: datetime
    snapshot_time: datetime
    updates: int
    seq_id: int
    book: Book


def rebuild_book(conn: psycopg.Connection[Any], exchange: str, symbol: str, at: datetime) -> RebuiltBook:
    """The book of `exchange`/`symbol` at `at` (timezone-aware); BookError when it cannot
    be known, DatabaseError when the database cannot be read."""
    key = (exchange, symbol, DataType.ORDERBOOK.value)
    try:
        found = conn.execute(_SNAPSHOT, (*key, at)).fetchone()
        if found is None:
            raise BookError(
                f"no full order book snapshot of {exchange} {symbol} is stored at or before "
                f"{at.isoformat()}: pick a later time, or check that the pair collects an "
                "incremental book (channels.orderbook, e.g. OKX 'books')"
            )
        snap_id, snap_time, snap = found
        rows = conn.execute(_AFTER, (*key, snap_time, at)).fetchall()
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read market_data: {redact_text(str(exc)).strip()}") from None
    book = Book()
    book.load(snap["bids"], snap["asks"])
    last = int(snap["seqId"])
    applied = 0
    for row_id, ts, data in rows:
        if (ts, row_id) <= (snap_time, snap_id):
            continue
        if data["action"] == "gap":
            raise BookError(
                f"the book of {exchange} {symbol} at {at.isoformat()} is not known: a sequence "
                f"gap at {ts.isoformat()} (the pushes lost are not stored); pick a time after "
                "the fresh snapshot that follows it"
            )
        if int(data["prevSeqId"]) != last:
            raise BookError(
                f"the stored updates of {exchange} {symbol} do not chain at {ts.isoformat()}: "
                f"prevSeqId {data['prevSeqId']} after seqId {last}; pick a time after the next snapshot"
            )
        book.apply(data["bids"], data["asks"])
        last = int(data["seqId"])
        applied += 1
    return RebuiltBook(exchange, symbol, at, snap_time, applied, last, book)
