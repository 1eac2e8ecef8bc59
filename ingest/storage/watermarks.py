"""Per-(exchange, symbol) watermarks: the exchange time up to which everything is committed.

The candle views (sql/0110) show a candle only when its end is at or below its symbol's
watermark in `ingest_watermarks`, so a candle whose trades are still queued, spooled or in a
batch that has not committed yet stays hidden until they are in (docs/candles.md).

    put(rows)      -> note()       every row's exchange time becomes "pending" for its key
    batch commits  -> committed()  its rows leave "pending"; the key's newest committed time grows
    periodically   -> due()        what to write to ingest_watermarks (see flush())

The watermark of a key is the smallest of
- the newest exchange time committed for it (trades and market_data rows alike: a quiet
  symbol advances by its tickers and books),
- one millisecond before its oldest pending row (with two writer workers, batches commit out
  of order: a later batch committing first never moves the watermark past an earlier one),
- every hold on it (see hold()).

Times are integer milliseconds since the Unix epoch, as rows carry them (ingest.rows).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from ingest.rows import MarketRow, Row, TradeRow

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (exchange, symbol)

TABLE = "ingest_watermarks"

# One statement for every key that changed: last writer wins (a hold may move a key back).
UPSERT = (
    sql.SQL(
        "INSERT INTO {} (exchange, symbol, committed_through, updated_at) "
        "SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[]) "
        "ON CONFLICT (exchange, symbol) DO UPDATE SET committed_through = EXCLUDED.committed_through, "
        "updated_at = EXCLUDED.updated_at"
    )
    .format(sql.Identifier(TABLE))
    .as_bytes()
)


@dataclass(frozen=True, slots=True)
class Hold:
    """A hold on one key's watermark, as hold() returns it; pass it to release()."""

    exchange: str
    symbol: str
    at_ms: int
    id: int


def _entries(rows: Iterable[Row]) -> Iterable[tuple[Key, int]]:
    """(key, exchange time) of every trade and market row; dead letters have no symbol."""
    for r in rows:
        if type(r) is TradeRow or type(r) is MarketRow:
            yield (r.exchange, r.symbol), r.ts_ms


class Watermarks:
    """What is committed, what is pending and what is held, per (exchange, symbol)."""

    def __init__(self) -> None:
        self._pending: dict[Key, dict[int, int]] = {}  # key -> exchange ms -> rows pending
        self._committed: dict[Key, int] = {}  # key -> newest exchange ms committed
        self._holds: dict[Key, dict[int, int]] = {}  # key -> hold id -> at ms
        self._ids = itertools.count(1)
        self._written: dict[Key, int] = {}  # what the table was last told, per key

    # -- the writer's hooks ------------------------------------------------------------

    def note(self, rows: Sequence[Row]) -> None:
        """Rows accepted by put(): pending until committed()."""
        pending = self._pending
        for key, ms in _entries(rows):
            times = pending.get(key)
            if times is None:
                pending[key] = {ms: 1}
            else:
                times[ms] = times.get(ms, 0) + 1

    def committed(self, rows: Sequence[Row]) -> None:
        """Rows of a batch that committed (or that the database refused and dead-lettered:
        they will never be stored, so they must not hold the watermark back forever)."""
        pending = self._pending
        newest = self._committed
        for key, ms in _entries(rows):
            if newest.get(key, ms - 1) < ms:
                newest[key] = ms
            times = pending.get(key)
            if times is None:
                continue  # replayed from a previous run's spool: never noted here
            left = times.get(ms, 0) - 1
            if left > 0:
                times[ms] = left
            else:
                times.pop(ms, None)
                if not times:
                    del pending[key]

    # -- holds (gap filling) -----------------------------------------------------------

    def hold(self, exchange: str, symbol: str, at: datetime) -> Hold:
        """Keep the watermark of (exchange, symbol) at or below `at` until release().

        For an open gap: hold at the gap's start until it is filled or recorded as unfillable,
        so no candle over the gap shows. Holds stack: the lowest one wins. A hold below the
        watermark already written moves it back at the next flush.
        """
        at_ms = int(at.timestamp() * 1000)
        hold = Hold(exchange, symbol, at_ms, next(self._ids))
        self._holds.setdefault((exchange, symbol), {})[hold.id] = at_ms
        return hold

    def release(self, hold: Hold) -> None:
        """End `hold` (releasing one twice is harmless)."""
        key = (hold.exchange, hold.symbol)
        holds = self._holds.get(key)
        if holds is not None:
            holds.pop(hold.id, None)
            if not holds:
                del self._holds[key]

    # -- reading -----------------------------------------------------------------------

    def watermark_ms(self, exchange: str, symbol: str) -> int | None:
        """The key's watermark (ms), None while nothing of it was committed."""
        key = (exchange, symbol)
        mark = self._committed.get(key)
        if mark is None:
            return None
        times = self._pending.get(key)
        if times:
            mark = min(mark, min(times) - 1)
        holds = self._holds.get(key)
        if holds:
            mark = min(mark, min(holds.values()))
        return mark

    def due(self) -> dict[Key, int]:
        """Watermarks that changed since the last mark_written()."""
        changed: dict[Key, int] = {}
        for exchange, symbol in list(self._committed):
            mark = self.watermark_ms(exchange, symbol)
            if mark is not None and self._written.get((exchange, symbol)) != mark:
                if not _storable(exchange, symbol):
                    self._forget((exchange, symbol))
                    continue
                changed[exchange, symbol] = mark
        return changed

    def _forget(self, key: Key) -> None:
        """Drop a key whose rows cannot be stored (dead-lettered): it has nothing to mark."""
        for table in (self._pending, self._committed, self._holds, self._written):
            table.pop(key, None)

    def mark_written(self, marks: dict[Key, int]) -> None:
        """`marks` (from due()) are in the table now."""
        self._written.update(marks)


def _storable(*texts: str) -> bool:
    """Text PostgreSQL can hold (rows with lone surrogates or NUL are dead-lettered instead)."""
    try:
        for text in texts:
            text.encode()
    except UnicodeEncodeError:
        return False
    return all("\x00" not in text for text in texts)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def flush(conn: psycopg.AsyncConnection[Any], marks: Watermarks) -> int:
    """Write the watermarks that changed (one statement, its own transaction); how many."""
    due = marks.due()
    if not due:
        return 0
    keys = sorted(due)  # key order: two services upserting the same keys do not deadlock
    now = datetime.now(UTC)
    params = (
        [k[0] for k in keys],
        [k[1] for k in keys],
        [_utc(due[k]) for k in keys],
        [now] * len(keys),
    )
    async with conn.cursor() as cur:
        await cur.execute(UPSERT, params)
    marks.mark_written(due)
    return len(keys)
