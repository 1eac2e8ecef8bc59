"""Backfill: load an exchange's REST trade history over [since, until) into the same tables
(`tcpd backfill`, docs/gaps.md).

The range to load is an open row of ingest_gaps (reason REASON_BACKFILL) from the start:
from_ts = since, to_ts and before_trade_id = what is still to load (it shrinks from the top as
pages commit). A run that stops (Ctrl-C, crash, REST down) leaves the row open, and the next
run with the same --since goes on below its before_trade_id: resumable, and idempotent (rows
already stored are skipped by the unique key). A complete run marks the row filled; history
that ends above `since` (older than the exchange keeps) leaves the row open with REASON_HORIZON
and the range not covered. The walk goes newest first (HistoryReader); `until` in the past is
found by a binary search over sequence numbers (a few dozen requests).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from ingest.db.connection import connect
from ingest.errors import TcpdError
from ingest.history.gapfill import REASON_HORIZON, utc
from ingest.history.model import TradeHistorySource
from ingest.history.walk import HistoryReader, Walk
from ingest.rows import TradeRow
from ingest.storage.gaps import Gap, mark_filled, new_gap_id, record_gaps
from ingest.storage.writer import CopyWriter

logger = logging.getLogger(__name__)

REASON_BACKFILL = "backfill requested (tcpd backfill): not loaded yet"
CHECKPOINT_INTERVAL = 5.0  # seconds between two progress records in ingest_gaps
FIND_BACKFILL = b"""
SELECT gap_id, to_ts, before_trade_id FROM ingest_gaps
WHERE exchange = %s AND symbol = %s AND data_type = 'trade' AND reason = %s AND filled_at IS NULL
    AND from_ts = %s AND to_ts <= %s
ORDER BY to_ts LIMIT 1
"""


@dataclass(slots=True)
class Progress:
    """What a backfill did so far (for the progress bar and --json)."""

    trades: int = 0
    requests: int = 0
    started: float = field(default_factory=time.monotonic)
    oldest_ms: int | None = None  # exchange time reached, going back from `until`
    resumed_from: datetime | None = None  # where an earlier run stopped

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.trades / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    complete: bool
    gap: Gap  # the backfill's row as it stands (open when incomplete)
    progress: Progress


class Backfill:
    """One (exchange, symbol) over [since, until): run() once."""

    def __init__(
        self,
        reader: HistoryReader,
        source: TradeHistorySource,
        writer: CopyWriter,
        conninfo: str,
        *,
        exchange: str,
        symbol: str,
        since: datetime,
        until: datetime,
    ) -> None:
        self._reader = reader
        self._source = source
        self._writer = writer
        self._conninfo = conninfo
        self.exchange = exchange
        self.symbol = symbol
        self.since = since
        self.until = until
        self.progress = Progress()

    async def run(self, on_page: Callable[[Progress], None] = lambda _p: None) -> Outcome:
        gap = await self._resume_or_start()
        before = int(gap.before_trade_id or 0)
        walk = Walk()
        last_checkpoint = time.monotonic()
        since_ms = int(self.since.timestamp() * 1000)
        located = self.progress.requests  # spent finding `until`
        async for rows in self._reader.between(self.symbol, 0, before, walk, since_ms=since_ms):
            await self._writer.put(rows)
            self.progress.trades = walk.trades
            self.progress.requests = located + walk.requests
            self.progress.oldest_ms = walk.lowest_ms
            on_page(self.progress)
            if time.monotonic() - last_checkpoint >= CHECKPOINT_INTERVAL:
                gap = await self._checkpoint(gap, walk)
                last_checkpoint = time.monotonic()
        self.progress.requests = located + walk.requests
        await self._committed()
        if walk.complete:
            await self._db(lambda conn: mark_filled(conn, gap.gap_id, walk.trades))
            return Outcome(True, gap, self.progress)
        # The history ends above `since`: what is left stays open, saying why.
        left = Gap(
            gap.gap_id,
            self.exchange,
            self.symbol,
            "trade",
            self.since,
            max(self.since, utc(walk.lowest_ms)) if walk.lowest_ms is not None else gap.to_ts,
            f"{REASON_HORIZON} (tcpd backfill)",
            None,
            str(walk.lowest) if walk.lowest is not None else gap.before_trade_id,
        )
        await self._db(lambda conn: record_gaps(conn, [left]))
        return Outcome(False, left, self.progress)

    async def _resume_or_start(self) -> Gap:
        async def find(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, ...] | None:
            cur = await conn.execute(
                FIND_BACKFILL, (self.exchange, self.symbol, REASON_BACKFILL, self.since, self.until)
            )
            return await cur.fetchone()

        found = await self._db(find)
        if found is not None:
            gap_id, to_ts, before_id = found
            self.progress.resumed_from = to_ts
            logger.info("resuming the backfill of %s below %s", self.symbol, to_ts.isoformat())
            return self._gap(gap_id, to_ts, str(before_id))
        before = await self._first_at_or_after(int(self.until.timestamp() * 1000))
        gap = self._gap(new_gap_id(), self.until, str(before))
        await self._db(lambda conn: record_gaps(conn, [gap]))
        return gap

    def _gap(self, gap_id: str, to_ts: datetime, before: str) -> Gap:
        return Gap(
            gap_id, self.exchange, self.symbol, "trade", self.since, to_ts, REASON_BACKFILL, None, before
        )

    def _timed_spans(self, rows: list[Any]) -> list[tuple[tuple[int, int], int]]:
        """((first, last), exchange ms) of the trades in `rows` that carry sequence numbers."""
        span = self._source.span
        return [(s, r.ts_ms) for r in rows if isinstance(r, TradeRow) and (s := span(r)) is not None]

    async def _first_at_or_after(self, until_ms: int) -> int:
        """The sequence number of the first trade at or after `until_ms` (newest + 1 when none):
        trades below it are older than `until`."""
        walk = Walk()
        page = await self._reader.page(self.symbol, self._source.newest(self.symbol), walk)
        spans = self._timed_spans(page.rows)
        if not spans:
            raise TcpdError(f"{self.exchange} has no trade of {self.symbol} over REST")
        newest = max(s[1] for s, _ts in spans)
        if all(ts < until_ms for _s, ts in spans):
            return newest + 1
        lo, hi = 1, newest + 1  # the answer is in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            page = await self._reader.page(self.symbol, self._source.older_than(self.symbol, mid + 1), walk)
            below = self._timed_spans(page.rows)
            if not below:  # older than the history keeps: everything there is before `until`
                lo = mid + 1
                continue
            (first, _last), ts = max(below, key=lambda item: item[0][1])
            if ts >= until_ms:
                hi = max(lo, first)
            else:  # the newest trade up to mid is older: so is every one below it
                lo = mid + 1
        self.progress.requests += walk.requests
        return lo

    async def _checkpoint(self, gap: Gap, walk: Walk) -> Gap:
        """Record what is committed: the row's range then starts below the oldest page put."""
        if walk.lowest is None or walk.lowest_ms is None:
            return gap
        lowest, lowest_ms = walk.lowest, walk.lowest_ms
        await self._committed()
        moved = self._gap(gap.gap_id, max(self.since, utc(lowest_ms)), str(lowest))
        await self._db(lambda conn: record_gaps(conn, [moved]))
        return moved

    async def _committed(self) -> None:
        """Wait until every row put is committed (the writer runs without a spool here)."""
        while self._writer.unwritten:  # noqa: ASYNC110 - the writer has no event for it
            await asyncio.sleep(0.05)

    async def _db(self, work: Callable[[psycopg.AsyncConnection[Any]], Any]) -> Any:
        conn = await connect(self._conninfo, autocommit=True)
        try:
            return await work(conn)
        finally:
            await conn.close()
