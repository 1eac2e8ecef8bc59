"""GapFiller: fills holes in one exchange's trades from its REST history (docs/gaps.md).

One per exchange, shared by its collectors (one REST client, one pacer: the exchange's limits
are per IP). A collector's TradeContinuity finds a hole, holds the symbol's watermark at its
start and hands it over with submit(); the filler then, in this order:

1. records the gap in ingest_gaps (retried until the database takes it), so that a crash
   from here on leaves a row saying what is missing, which the next start tries again;
2. walks the REST history back from the first trade received live to the last one stored
   (HistoryReader), putting each page to the writer like live rows (the unique key makes an
   overlap harmless); REST failing is retried with backoff for `give_up_after` seconds, each
   failure noted on the gap row (attempts, last_error);
3. waits until the database holds every trade fetched (a count over the gap's range), then
   marks the gap filled (filled_at, rows_filled) and releases the hold: the candles over the
   hole show, complete.
What REST cannot give (older than its history, REST down too long) stays an open gap with its
reason, and the hold is released (a candle shows over a recorded gap, not over an unknown
one). Open gaps with trade ids are tried again every `retry_interval` seconds and at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import psycopg

from ingest.db.connection import connect, connect_sync
from ingest.dead_letters import dead_letter
from ingest.errors import TcpdError
from ingest.history.model import TradeHistorySource
from ingest.history.pacing import RequestPacer
from ingest.history.walk import HistoryReader, Walk
from ingest.redact import redact_text
from ingest.rows import Row, TradeRow
from ingest.storage.candle_refresh import refresh_candles
from ingest.storage.gaps import Gap, mark_filled, new_gap_id, note_attempt, record_gaps
from ingest.storage.watermarks import Hold

if TYPE_CHECKING:
    # Imported by start(): every `tcpd run` imports this module (collectors' TradeContinuity),
    # and the HTTP client (httpcore, ~1.5 MB) is not needed before the filler starts.
    from ingest.instruments.http import RestClient, RetryPolicy

logger = logging.getLogger(__name__)

USER_AGENT = "tcpd-ingest (trade history)"
DATA_TYPE = "trade"
# Why a hole exists (ingest_gaps.reason); the gaps with these reasons are retried.
REASON_RECONNECT = "connection lost: trades between the last received and the first after the reconnect"
REASON_RESTART = "service not running: trades between the last stored and the first after the start"
REASON_HANDOVER = "connection switch: the old connection closed before the new one had caught up"
RETRIED = (REASON_RECONNECT, REASON_RESTART, REASON_HANDOVER)
REASON_HORIZON = "older than the exchange's REST trade history keeps"
REASON_LAGGING = "not in the exchange's REST trade history when asked"
# Items of REST answers refused by the parser, kept as dead letters per fill at most.
DEAD_LETTERS_PER_FILL = 100
DB_CONNECTIONS = 2  # database connections one filler uses at most at a time
DB_RETRY_DELAY = 2.0
DB_RETRY_MAX_DELAY = 30.0
STOP_TIMEOUT = 5.0

LAST_STORED = b"""
SELECT trade_seq, fill_count, "timestamp" FROM raw_trades
WHERE exchange = %s AND symbol = %s AND "timestamp" <= %s AND trade_seq > 0 AND trade_seq < %s
ORDER BY "timestamp" DESC, trade_seq DESC LIMIT 1
"""
STORED_BETWEEN = b"""
SELECT count(*) FROM raw_trades
WHERE exchange = %s AND symbol = %s AND "timestamp" >= %s AND "timestamp" <= %s
    AND trade_seq > %s AND trade_seq < %s
"""
OPEN_GAPS = b"""
SELECT gap_id, from_ts, to_ts, after_trade_id, before_trade_id, reason FROM ingest_gaps
WHERE exchange = %s AND symbol = %s AND data_type = %s AND filled_at IS NULL
    AND after_trade_id IS NOT NULL AND before_trade_id IS NOT NULL AND reason = ANY(%s)
ORDER BY from_ts
"""

T = TypeVar("T")


class HistorySink(Protocol):
    """What the filler needs of the writer (CopyWriter)."""

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None: ...

    def hold(self, exchange: str, symbol: str, at: datetime | None) -> Hold: ...

    def release(self, hold: Hold) -> None: ...

    def replaying(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Point:
    """A trade as far as gaps are concerned: its last fill's sequence number and its time."""

    seq: int
    ts_ms: int


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(slots=True)
class FillStats:
    """What the filler did since the start (collector status, tcpd status)."""

    gaps_found: int = 0
    gaps_filled: int = 0
    gaps_left_open: int = 0
    gaps_filling: int = 0  # being filled right now
    trades_filled: int = 0
    rest_requests: int = 0
    last_error: str | None = None


class GapFiller:
    """Fills one exchange's trade gaps; start() and stop() bracket its REST client and tasks."""

    def __init__(
        self,
        exchange: str,
        source: TradeHistorySource,
        *,
        conninfo: str,
        sink: HistorySink,
        base_url: str | None,
        store_raw_data: bool,
        timeout: float,
        give_up_after: float,
        retry_interval: float,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.exchange = exchange
        self.source = source
        self._conninfo = conninfo
        self._sink = sink
        self._base_url = base_url or source.default_base_url
        self._store_raw = store_raw_data
        self._timeout = timeout
        self._give_up_after = give_up_after
        self._retry_interval = retry_interval
        self._retry = retry  # None: RetryPolicy()'s defaults, chosen by start()
        self._pacer = RequestPacer(source.rate_limits)
        self._client: RestClient | None = None
        self._reader: HistoryReader | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._filling: set[str] = set()  # gap ids being filled now
        self._symbols: set[str] = set()  # symbols whose open gaps are retried
        self._stopping = asyncio.Event()
        self._db_slots = asyncio.Semaphore(DB_CONNECTIONS)
        self._rng = random.Random()
        self.stats = FillStats()

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        from ingest.instruments.http import RestClient, RetryPolicy

        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        self._client = RestClient(self._base_url, timeout=self._timeout, headers=headers)
        await self._client.__aenter__()
        retry = self._retry or RetryPolicy()
        self._reader = HistoryReader(
            self._client, self.source, self._pacer, retry, store_raw_data=self._store_raw
        )
        self._spawn(self._retry_loop(), f"tcpd-gap-retry-{self.exchange}")

    async def stop(self) -> None:
        """Cancel fills in progress (their gaps stay recorded and open: the next start goes on)."""
        self._stopping.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            if pending:
                logger.error("%s gap filler: %d task(s) ignored cancellation", self.exchange, len(pending))
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what collectors call --------------------------------------------------------------

    def watch(self, symbol: str) -> None:
        """Retry `symbol`'s open gaps now (holding the watermark at each while it is tried:
        an earlier run found them) and every retry_interval (without)."""
        self._symbols.add(symbol)
        self._spawn(self._retry_open(symbol, hold=True), f"tcpd-gap-open-{self.exchange}-{symbol}")

    def submit(self, symbol: str, after: Point, before: Point, reason: str, hold: Hold | None) -> None:
        """Fill the trades strictly between `after` and `before`; the hold is released when
        the gap is filled or recorded as not fillable."""
        gap = Gap(
            gap_id=new_gap_id(),
            exchange=self.exchange,
            symbol=symbol,
            data_type=DATA_TYPE,
            from_ts=utc(after.ts_ms),
            to_ts=utc(max(after.ts_ms, before.ts_ms)),
            reason=reason,
            after_trade_id=str(after.seq),
            before_trade_id=str(before.seq),
        )
        self.stats.gaps_found += 1
        logger.warning(
            "%s %s: trades %d..%d (%s to %s) missing (%s); filling from REST history",
            self.exchange,
            symbol,
            after.seq + 1,
            before.seq - 1,
            gap.from_ts.isoformat(),
            gap.to_ts.isoformat(),
            reason,
        )
        self._spawn(self._fill(gap, hold, record=True), f"tcpd-gap-fill-{self.exchange}-{symbol}")

    async def last_stored(self, symbol: str, below: Point | None) -> Point | None:
        """The newest stored trade of `symbol` before `below` (the first received live), or
        None when none is stored. Waits for the database (and for a spool replay)."""
        while self._sink.replaying():
            await self._sleep(1.0)
        bound_ts = datetime.max.replace(tzinfo=UTC) if below is None else utc(below.ts_ms)
        bound_seq = 2**63 - 1 if below is None else below.seq

        async def query(conn: psycopg.AsyncConnection[Any]) -> Point | None:
            cur = await conn.execute(LAST_STORED, (self.exchange, symbol, bound_ts, bound_seq))
            row = await cur.fetchone()
            if row is None:
                return None
            return Point(int(row[0]), int(row[2].timestamp() * 1000))

        return await self._db(query, f"reading the last stored {symbol} trade")

    # -- filling ---------------------------------------------------------------------------

    async def _fill(self, gap: Gap, hold: Hold | None, *, record: bool) -> None:
        """Fill `gap`; the hold is released once the gap is filled or recorded as open, not
        when the service stops meanwhile (the last watermark written stays below the hole)."""
        self._filling.add(gap.gap_id)
        self.stats.gaps_filling = len(self._filling)
        try:
            if record:
                await self._db(lambda conn: record_gaps(conn, [gap]), "recording a gap")
            await self._fill_recorded(gap)
        finally:
            self._filling.discard(gap.gap_id)
            self.stats.gaps_filling = len(self._filling)
        if hold is not None:
            self._sink.release(hold)

    async def _fill_recorded(self, gap: Gap) -> None:
        walked = await self._walk(gap)
        if walked is None:
            self.stats.gaps_left_open += 1
            return
        fetched, walk = walked
        await self._confirm_stored(gap, fetched)
        self.stats.trades_filled += fetched
        if fetched:
            await asyncio.to_thread(self._refresh_candles, gap)
        if walk.complete:
            await self._db(lambda conn: mark_filled(conn, gap.gap_id, fetched), "marking a gap filled")
            self.stats.gaps_filled += 1
            logger.info("%s %s: gap %s filled with %d trades", gap.exchange, gap.symbol, gap.gap_id, fetched)
            return
        remainder = self._remainder(gap, walk, fetched)
        await self._db(lambda conn: record_gaps(conn, remainder), "recording what REST could not fill")
        self.stats.gaps_left_open += len(remainder)
        for left in remainder:
            logger.warning(
                "%s %s: trades after %s and before %s (%s to %s) not fillable: %s",
                left.exchange,
                left.symbol,
                left.after_trade_id,
                left.before_trade_id,
                left.from_ts.isoformat(),
                left.to_ts.isoformat(),
                left.reason,
            )

    async def _walk(self, gap: Gap) -> tuple[int, Walk] | None:
        """Walk the gap's history into the writer, retrying REST failures for give_up_after
        seconds (each attempt goes on below what the last one stored); (trades put, the last
        walk), or None when REST failed for too long (noted on the gap row)."""
        reader = self._reader
        if reader is None:
            raise TcpdError("the gap filler is not started")
        after, top = int(gap.after_trade_id or 0), int(gap.before_trade_id or 0)
        started = time.monotonic()
        fetched = failures = 0
        while True:
            walk = Walk()
            try:
                async for rows in reader.between(gap.symbol, after, top, walk):
                    await self._sink.put(rows)
                    await self._dead_letters(walk)
                return fetched + walk.trades, walk
            except TcpdError as exc:
                error = redact_text(f"REST trade history: {exc}")
            finally:
                self.stats.rest_requests += walk.requests
            fetched += walk.trades
            if walk.lowest is not None:
                top = min(top, walk.lowest)  # everything from there up is put already
            failures += 1
            self.stats.last_error = error
            await self._db(partial(note_attempt, gap_id=gap.gap_id, error=error), "noting a fill attempt")
            if time.monotonic() - started >= self._give_up_after:
                logger.warning(
                    "%s %s: gap %s not filled within %.0f s (%s); kept open, next try in %.0f s",
                    gap.exchange,
                    gap.symbol,
                    gap.gap_id,
                    self._give_up_after,
                    error,
                    self._retry_interval,
                )
                return None
            await self._sleep(min(DB_RETRY_MAX_DELAY, DB_RETRY_DELAY * 2 ** min(failures, 5)))

    @staticmethod
    def _remainder(gap: Gap, walk: Walk, fetched: int) -> list[Gap]:
        """The open gaps left of `gap` (the first keeps its gap_id, so the row is updated)."""
        lowest_ms, newest_ms = walk.lowest_ms, walk.newest_ms
        out = []
        for index, (lo, hi) in enumerate(walk.missing):
            below = hi != int(gap.before_trade_id or 0)  # the part under what was fetched
            reason = REASON_HORIZON if below else REASON_LAGGING
            from_ts = gap.from_ts
            to_ts = gap.to_ts
            if below and lowest_ms is not None:
                to_ts = max(from_ts, min(to_ts, utc(lowest_ms)))
            if not below and newest_ms is not None:
                from_ts = min(to_ts, max(from_ts, utc(newest_ms)))
            out.append(
                replace(
                    gap,
                    gap_id=gap.gap_id if index == 0 else new_gap_id(),
                    from_ts=from_ts,
                    to_ts=to_ts,
                    after_trade_id=str(lo),
                    before_trade_id=str(hi),
                    reason=f"{reason} ({fetched} trades of the gap filled)",
                )
            )
        return out

    async def _confirm_stored(self, gap: Gap, fetched: int) -> None:
        """Wait until the database holds at least `fetched` trades of the gap: the rows went
        through the writer's queue (and maybe its spool) and commit later than put()."""
        params = (
            gap.exchange,
            gap.symbol,
            gap.from_ts,
            gap.to_ts,
            int(gap.after_trade_id or 0),
            int(gap.before_trade_id or 0),
        )

        async def stored(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute(STORED_BETWEEN, params)
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        while (count := await self._db(stored, "counting filled trades")) < fetched:
            logger.debug("%s %s: %d of %d filled trades stored", gap.exchange, gap.symbol, count, fetched)
            await self._sleep(1.0)

    def _refresh_candles(self, gap: Gap) -> None:
        """Candles over the filled range: the TSL refresh policies only look back a day or so,
        a gap may be older (a long outage); the Apache refresh finds late rows itself, this
        makes it immediate. A failure is logged: the candles are then refreshed by the next
        policy run that covers them, or by `tcpd candles refresh`."""
        try:
            with connect_sync(self._conninfo, autocommit=True) as conn:
                refresh_candles(conn, gap.from_ts, gap.to_ts + timedelta(milliseconds=1))
        except (TcpdError, psycopg.Error) as exc:
            logger.warning(
                "%s %s: candles over the filled gap not refreshed: %s", gap.exchange, gap.symbol, exc
            )

    async def _dead_letters(self, walk: Walk) -> None:
        if not walk.rejected:
            return
        refused, walk.rejected = walk.rejected, []
        letters = [dead_letter(self.exchange, raw, f"REST history: {why}") for raw, why in refused]
        await self._sink.put(letters[:DEAD_LETTERS_PER_FILL])

    # -- retrying open gaps ------------------------------------------------------------------

    async def _retry_loop(self) -> None:
        while not self._stopping.is_set():
            await self._sleep(self._retry_interval)
            for symbol in sorted(self._symbols):
                await self._retry_open(symbol, hold=False)

    async def _retry_open(self, symbol: str, *, hold: bool) -> None:
        async def query(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(OPEN_GAPS, (self.exchange, symbol, DATA_TYPE, list(RETRIED)))
            return list(await cur.fetchall())

        gaps = []
        for gap_id, from_ts, to_ts, after_id, before_id, reason in await self._db(query, "reading open gaps"):
            if gap_id in self._filling or not (after_id.isdigit() and before_id.isdigit()):
                continue
            gap = Gap(gap_id, self.exchange, symbol, DATA_TYPE, from_ts, to_ts, reason, after_id, before_id)
            gaps.append((gap, self._sink.hold(self.exchange, symbol, from_ts) if hold else None))
        for gap, held in gaps:
            logger.info("%s %s: trying open gap %s again", self.exchange, symbol, gap.gap_id)
            await self._fill(gap, held, record=False)

    # -- helpers -----------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        if self._stopping.is_set():
            raise asyncio.CancelledError

    async def _db(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]], what: str) -> T:
        """Run `work` on a fresh autocommit connection, retried until the database answers;
        at most DB_CONNECTIONS at once, however many symbols ask (600 collectors starting
        together would otherwise take every connection the server allows)."""
        delay = DB_RETRY_DELAY
        while True:
            try:
                async with self._db_slots:
                    conn = await connect(self._conninfo, autocommit=True)
                    try:
                        return await work(conn)
                    finally:
                        await conn.close()
            except (TcpdError, psycopg.Error, OSError) as exc:
                logger.warning(
                    "%s gap filler: %s failed (%s); retrying in %.0f s",
                    self.exchange,
                    what,
                    redact_text(str(exc)),
                    delay,
                )
            await self._sleep(delay * (0.5 + self._rng.random() / 2))
            delay = min(DB_RETRY_MAX_DELAY, delay * 2)


def span_point(source: TradeHistorySource, row: TradeRow, first: bool) -> Point | None:
    """The Point of a row's first (or last) fill, per the venue's numbering."""
    span = source.span(row)
    if span is None:
        return None
    return Point(span[0] if first else span[1], row.ts_ms)
