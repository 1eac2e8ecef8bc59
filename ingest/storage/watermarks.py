"""Per-(exchange, symbol) watermarks: the exchange time up to which everything is committed.

The candle views (sql/0115) show a candle only when its end is at or below its symbol's
watermark in `ingest_watermarks`, so a candle whose trades are still queued, spooled or in a
batch that has not committed yet stays hidden until they are in (docs/candles.md).

    batch commits  -> committed(rows)   the key's newest committed exchange time grows
    once a second  -> due(pending)      what to write to ingest_watermarks (see flush())

The watermark of a key is the smallest of
- the newest exchange time committed for it (trades and market_data rows alike: a quiet
  symbol advances by its tickers and books),
- one millisecond before the oldest of its rows still pending: accepted by put() and not
  committed (the writer passes its queued rows and its batches in flight; with two workers,
  batches commit out of order, so a later batch committing first never moves the watermark
  past an earlier one),
- every hold on it (see hold()).

Pending rows are looked at only when the watermarks are computed (once a second, over the
rows held then), and a committed batch costs a few passes in C (see _newest): bookkeeping
per put() cost the writer about 0.5 µs of CPU per row, this about 0.05 µs
(benchmarks/watermarks_cost.py, docs/performance.md).

Times are integer milliseconds since the Unix epoch, as rows carry them (ingest.rows).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
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

_KEY = itemgetter(0, 1)  # (exchange, symbol) of a TradeRow or a MarketRow
_SYMBOL = itemgetter(1)
_TIME = {
    TradeRow: itemgetter(TradeRow._fields.index("ts_ms")),
    MarketRow: itemgetter(MarketRow._fields.index("ts_ms")),
}


@dataclass(frozen=True, slots=True)
class Hold:
    """A hold on one key's watermark, as hold() returns it; pass it to release()."""

    exchange: str
    symbol: str
    at_ms: int | None  # None: frozen (the watermark is not written at all)
    id: int


def _runs(rows: Iterable[Row]) -> Iterator[tuple[Key, Iterator[int]]]:
    """(key, exchange times) per run of consecutive trade or market rows of one key (a put's
    rows are consecutive); dead letters have no symbol and are skipped."""
    for kind, same_kind in itertools.groupby(rows, type):
        time_of = _TIME.get(kind)
        if time_of is None:
            continue
        for key, run in itertools.groupby(same_kind, _KEY):
            yield key, map(time_of, run)


def _newest(rows: Sequence[Row]) -> Iterator[tuple[Key, int]]:
    """A committed batch's newest exchange time per key, in C passes (this runs per batch):
    the time of each symbol's last row (a dict keeps the last value). Never above the newest:
    when a symbol's rows in the batch are out of time order, or the same symbol comes from two
    exchanges (one of them is left out), a key only stays a little lower until its next batch."""
    kinds = set(map(type, rows))
    for kind in kinds:
        time_of = _TIME.get(kind)
        if time_of is None:
            continue  # dead letters
        same = rows if len(kinds) == 1 else [r for r in rows if type(r) is kind]
        for symbol, row in dict(zip(map(_SYMBOL, same), same, strict=True)).items():
            yield (row[0], symbol), time_of(row)


# Pending rows of one list (the queue, mostly) beyond which their oldest time bounds every key
# (one C pass) instead of each key its own (a pass per run of equal keys).
EXACT_ROWS = 10_000
EVERY_KEY: Key = ("", "")  # in oldest()'s result: a bound for every key


def _oldest_runs(rows: Sequence[Row]) -> Iterator[tuple[Key, int]]:
    """(key, oldest exchange time) of `rows`. A long list of one kind (a queue the writer is
    behind on) gives one bound for EVERY_KEY: all its rows were received within the writer's
    lag, so holding every key below its oldest delays candles by about that lag, and it costs
    one C pass instead of a Python step per run of equal keys."""
    if len(rows) > EXACT_ROWS:
        kinds = set(map(type, rows))
        if len(kinds) == 1:
            time_of = _TIME.get(kinds.pop())
            if time_of is not None:
                yield EVERY_KEY, min(map(time_of, rows))
            return
    for key, times in _runs(rows):
        yield key, min(times)


def oldest(batches: Iterable[Sequence[Row]]) -> dict[Key, int]:
    """The oldest exchange time per key over `batches` (EVERY_KEY: a bound for all keys)."""
    found: dict[Key, int] = {}
    for rows in batches:
        for key, first in _oldest_runs(rows):
            if found.get(key, first + 1) > first:
                found[key] = first
    return found


class Watermarks:
    """What is committed and what is held, per (exchange, symbol); pending rows are passed in."""

    def __init__(self) -> None:
        self._committed: dict[Key, int] = {}  # key -> newest exchange ms committed
        self._holds: dict[Key, dict[int, int | None]] = {}  # key -> hold id -> at ms (None: frozen)
        self._ids = itertools.count(1)
        self._written: dict[Key, int] = {}  # what the table was last told, per key

    def committed(self, rows: Sequence[Row]) -> None:
        """Rows of a batch that committed (or that the database refused and dead-lettered:
        they will never be stored, so they must not hold the watermark back)."""
        newest = self._committed
        for key, last in _newest(rows):
            if newest.get(key, last - 1) < last:
                newest[key] = last

    # -- holds (gap filling) -----------------------------------------------------------

    def hold(self, exchange: str, symbol: str, at: datetime | None) -> Hold:
        """Keep the watermark of (exchange, symbol) at or below `at` until release().

        For an open gap: hold at the gap's start until it is filled or recorded as unfillable,
        so no candle over the gap shows. Holds stack: the lowest one wins. A hold below the
        watermark already written moves it back at the next flush. `at` None freezes the key:
        its watermark is not written until the hold is released (at start-up, before the last
        stored trade is known, no time to hold at is known either).
        """
        at_ms = None if at is None else int(at.timestamp() * 1000)
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

    def marks(self, pending: Iterable[Sequence[Row]] = ()) -> dict[Key, int]:
        """Every key's watermark (ms), given the rows still `pending`; keys with nothing
        committed yet, and frozen keys, have none."""
        waiting = oldest(pending)
        floor = waiting.pop(EVERY_KEY, None)
        out: dict[Key, int] = {}
        for key, mark in self._committed.items():
            first = waiting.get(key)
            if first is not None:
                mark = min(mark, first - 1)
            if floor is not None:
                mark = min(mark, floor - 1)
            holds = self._holds.get(key)
            if holds:
                if None in holds.values():
                    continue  # frozen
                mark = min(mark, min(h for h in holds.values() if h is not None))
            out[key] = mark
        return out

    def due(self, pending: Iterable[Sequence[Row]] = ()) -> dict[Key, int]:
        """Watermarks that changed since the last mark_written()."""
        changed: dict[Key, int] = {}
        for key, mark in self.marks(pending).items():
            if self._written.get(key) != mark:
                if not _storable(*key):
                    self._forget(key)
                    continue
                changed[key] = mark
        return changed

    def mark_written(self, marks: dict[Key, int]) -> None:
        """`marks` (from due()) are in the table now."""
        self._written.update(marks)

    def _forget(self, key: Key) -> None:
        """Drop a key whose rows cannot be stored (dead-lettered): it has nothing to mark."""
        for table in (self._committed, self._holds, self._written):
            table.pop(key, None)


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


async def flush(conn: psycopg.AsyncConnection[Any], marks: Watermarks, due: dict[Key, int]) -> int:
    """Write `due` (from marks.due()) in one statement, its own transaction on an autocommit
    connection; how many."""
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
