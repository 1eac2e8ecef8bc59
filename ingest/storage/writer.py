"""CopyWriter: the bounded path from collectors' rows to committed rows in TimescaleDB.

    collectors --put()--> RowQueue --take()--> workers --COPY/INSERT/COMMIT--> database

- Batches close at batch_max_rows rows or when their oldest row waited batch_max_delay
  (counted from put()'s `since`, e.g. the start of the reader's linger).
- `concurrency` workers (default 2) each keep one pool connection (see _Lease), so the
  next batch is formatted and sent while the server still inserts the previous one.
- A failed batch is kept and retried with jittered exponential backoff until it commits:
  the queue behind it fills, then put() spools to disk (or, without a spool, waits:
  backpressure); nothing is dropped until the spool is full (docs/spool.md). Rows the
  database rejects as bad data are isolated by bisection and dead-lettered.
- stop(timeout) refuses new rows, drains the queue, closes the pool, and says loudly how
  many rows it could not write if the timeout ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest.config.database import (
    DEFAULT_POOL_TIMEOUT,
    WRITER_WORKERS,
    DatabaseSettings,
    TableNames,
    WriterSettings,
)
from ingest.config.spool import SpoolSettings
from ingest.db.connection import make_pool
from ingest.errors import DatabaseError, TcpdError
from ingest.redact import redact_text
from ingest.rows import Row
from ingest.storage.batch import Batch, Written, committed, end_abandoned, write_batch
from ingest.storage.queue import RowQueue
from ingest.storage.rejects import is_rejection, rejected
from ingest.storage.retry import Backoff, is_bad_data, is_conflict
from ingest.storage.spool import spool_from
from ingest.storage.statements import build_statements
from ingest.storage.status import CollectorStatusRow, upsert_status
from ingest.storage.watermarks import Hold, Watermarks
from ingest.storage.watermarks import flush as write_watermarks

logger = logging.getLogger(__name__)

# After a batch with duplicates, this many batches go straight to the staging path.
DEDUPE_AFTER_DUPLICATE = 10
# Seconds stop() gives cancelled workers to unwind.
CANCEL_GRACE = 2.0
# Seconds a worker keeps its pool connection before giving it back for the pool's checks.
LEASE_SECONDS = 60.0
# Seconds between two writes of the changed watermarks to ingest_watermarks (at least).
WATERMARK_INTERVAL = 1.0
# The wait between two is at least this many times what computing the last one took.
WATERMARK_COST_RATIO = 100

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


class _Lease:
    """A writer worker's pool connection, kept from one batch to the next.

    Taking a connection from the pool and giving it back costs more CPU than a small
    batch's COPY, so a worker keeps its connection while batches succeed; after an error,
    or after LEASE_SECONDS (or the pool's max_lifetime, if shorter), it goes back to the pool,
    which checks it (rolls back an open transaction, replaces a broken or expired
    connection). A worker waiting for rows when its lease ends gives the connection back
    then (`waiting`), not only at its next batch: a quiet writer must not keep a connection
    past pool_recycle.
    """

    def __init__(self, pool: Pool) -> None:
        self._seconds = min(LEASE_SECONDS, pool.max_lifetime)
        self._pool = pool
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._until = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._returning: set[asyncio.Task[None]] = set()

    def waiting(self) -> None:
        """The worker waits for its next batch: give the connection back when the lease ends."""
        if self._conn is not None and self._timer is None:
            delay = max(0.0, self._until - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._lease_ended)

    def working(self) -> None:
        """The worker has a batch: the connection is its own again until it waits."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _lease_ended(self) -> None:
        self._timer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            task = asyncio.get_running_loop().create_task(self._pool.putconn(conn))
            self._returning.add(task)
            task.add_done_callback(self._returning.discard)

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        """The kept connection, or a fresh one from the pool (waits during an outage)."""
        if self._conn is not None and time.monotonic() >= self._until:
            await self.give_back()
        if self._conn is None:
            self._conn = await self._pool.getconn()
            self._until = time.monotonic() + self._seconds
        return self._conn

    async def give_back(self) -> None:
        """Return the connection (if any) to the pool; the next connection() takes another."""
        self.working()
        if self._returning:
            await asyncio.wait(self._returning)
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            # As the pool's own connection() context does: roll back without a warning.
            with contextlib.suppress(psycopg.Error):
                await conn.rollback()
        await self._pool.putconn(conn)


class WriterStateError(TcpdError):
    """The writer was used before start() or after stop()."""


def _describe(exc: BaseException) -> str:
    text = redact_text(str(exc)).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CopyWriter:
    """Batched COPY writer with a bounded queue, retry through outages and a draining stop."""

    def __init__(
        self,
        conninfo: str,
        tables: TableNames,
        settings: WriterSettings,
        *,
        concurrency: int = WRITER_WORKERS,
        spool: SpoolSettings | None = None,
        pool: DatabaseSettings | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._conninfo = conninfo
        self._pool_settings = pool  # None: the smallest pool the workers need
        self._pool: Pool | None = None
        self._settings = settings
        self._concurrency = concurrency
        self._st = build_statements(tables)
        self._tables = tables
        # With a spool, put() waits at most spill_after; what memory cannot hold then goes
        # to disk (queue.py).
        self._queue = RowQueue(settings.queue_max_rows, spool_from(spool))
        self._workers: set[asyncio.Task[None]] = set()
        self._started = False
        self._stopped = False
        self._paused = asyncio.Event()
        self._paused.set()
        self._aborted = asyncio.Event()
        self._written = {tables.raw_trades: 0, tables.market_data: 0, tables.dead_letters: 0}
        self._duplicates = 0
        self._dedupe_left = 0  # batches still to send through staging, see _write
        self._rejected = 0
        self._batches = 0
        self._retries = 0
        self._outage_since: float | None = None
        self._last_error: str | None = None
        self._last_flush: datetime | None = None
        self.watermarks = Watermarks()
        self._watermark_task: asyncio.Task[None] | None = None
        self._recycler: asyncio.Task[None] | None = None
        # Called with each committed batch: its successful try's seconds and its rows (metrics).
        self.on_commit: Callable[[float, Sequence[Row]], None] | None = None
        self._watermark_cost = 0.0  # seconds the last computation of the watermarks took
        self._in_flight: dict[int, Sequence[Row]] = {}  # taken or waiting rows, by id (watermarks)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the pool (without waiting for the database) and start the workers."""
        if self._started:
            raise WriterStateError("CopyWriter.start() called twice")
        self._queue.open_spool()  # first: a spool it cannot use stops the start (SpoolError)
        p = self._pool_settings
        self._pool = make_pool(
            self._conninfo,
            min_size=p.pool_size if p else 1,
            max_size=max(p.max_connections if p else 0, self._concurrency + 1),
            # How long a worker or a status write waits for a connection: short, because
            # during an outage the retry loop, not the pool, decides when to try again, and
            # the first failed try is when the outage is noticed.
            timeout=p.pool_timeout if p else DEFAULT_POOL_TIMEOUT,
            max_lifetime=p.pool_recycle if p else 3600.0,
            name="tcpd-writer",
            # Transactions are explicit (ingest.storage.batch): a trades-only batch is
            # one COPY, committed by itself, without BEGIN and COMMIT round trips.
            autocommit=True,
        )
        # The pool's own reconnect backoff doubles up to reconnect_timeout (5 min by
        # default), which after a long outage would delay recovery by as long again.
        # Giving up sooner lets our retry loop's next getconn start a fresh attempt.
        self._pool.reconnect_timeout = max(5.0, self._settings.retry_max_delay)
        # Not waiting: a database that is down at start is an outage like any other.
        await self._pool.open(wait=False)
        self._queue.start_spool(self._pool)
        self._started = True
        for n in range(self._concurrency):
            task = asyncio.create_task(self._work(), name=f"tcpd-writer-{n}")
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        self._start_watermarks()
        self._recycler = asyncio.create_task(self._recycle_idle(self._pool), name="tcpd-writer-recycle")

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - the shared contract
        """Stop accepting rows, flush everything queued, close the pool (if ours).

        Returns when everything is committed or `timeout` seconds passed (or abort() was
        called); then the rows not written are counted and logged as an error.
        """
        if self._stopped:
            return
        self._stopped = True
        self._queue.close()
        self._paused.set()
        pending: set[asyncio.Future[Any]] = set(self._workers)
        started = time.monotonic()
        deadline = started + timeout
        aborted = asyncio.ensure_future(self._aborted.wait())
        try:
            while pending and not self._aborted.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                _, pending = await asyncio.wait(
                    pending | {aborted}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(aborted)
        finally:
            aborted.cancel()
        for task in pending:
            task.cancel()
        if pending:
            # Bounded: a worker must not be able to hold the process up by ignoring cancellation.
            _, stuck = await asyncio.wait(pending, timeout=CANCEL_GRACE)
            if stuck:
                logger.error("%d writer task(s) ignored cancellation", len(stuck))
        spilled = self._queue.spill()
        if spilled:
            logger.warning("%d rows not written yet kept in the spool for the next start", spilled)
        lost = self._queue.unwritten
        if lost:
            logger.error(
                "writer stopped after %.1f s with %d rows NOT written (database: %s)",
                time.monotonic() - started,
                lost,
                self._last_error or "no error seen",
            )
        await self._stop_watermarks()
        await self._queue.close_spool()
        recycler, self._recycler = self._recycler, None
        if recycler is not None:
            recycler.cancel()
            await asyncio.wait({recycler})
        if self._pool is not None:
            await self._pool.close()

    def abort(self) -> None:
        """Make a running (or the next) stop() give up waiting for the flush at once.

        For a forced shutdown: rows not committed yet are counted and logged as not written.
        """
        self._aborted.set()

    @property
    def unwritten(self) -> int:
        """Rows accepted by put() and neither committed nor spooled (after stop: rows lost)."""
        return self._queue.unwritten

    # -- intake --------------------------------------------------------------------------

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None:
        """Queue rows for writing; beyond queue_max_rows they are spooled (no spool: it waits).

        `since` (time.monotonic) is when the rows may have started waiting (e.g. in the
        socket while reading lingered): batch_max_delay counts from it. None: now.
        """
        if not self._started:
            raise WriterStateError("CopyWriter.put() before start()")
        # Types are not checked per row here (that would cost as much as the queueing):
        # Batch.build finds anything else and the worker dead-letters it.
        queue = self._queue
        if queue.has_room():  # the common case, without a second coroutine
            queue.put_nowait(rows, since)
        else:
            # Waiting for room: pending for the watermarks (accepted, in no queue yet).
            waiting = self._in_flight
            waiting[id(rows)] = rows
            try:
                await queue.put(rows, since)
            finally:
                waiting.pop(id(rows), None)

    def pause(self) -> None:
        """Hold the workers before their next batch (maintenance and tests); put() still queues."""
        self._paused.clear()

    def resume(self) -> None:
        """Let paused workers continue."""
        self._paused.set()

    # -- watermarks (ingest.storage.watermarks, docs/candles.md) ----------------------------

    def hold(self, exchange: str, symbol: str, at: datetime | None) -> Hold:
        """Keep (exchange, symbol)'s watermark at or below `at` (an open gap) until release();
        None: do not write it at all until then."""
        return self.watermarks.hold(exchange, symbol, at)

    def replaying(self) -> bool:
        """True while rows spooled by an earlier run are not all committed: until then the
        newest stored trade of a symbol may be older than the newest one received."""
        spool = self._queue.spool
        return spool is not None and bool(spool.stats()["segments"])

    def release(self, hold: Hold) -> None:
        """End a hold() (the gap is filled, or recorded as unfillable)."""
        self.watermarks.release(hold)

    def _committed(self, rows: list[Row]) -> None:
        """A taken batch committed: it moves its keys' watermarks and is pending no more."""
        self.watermarks.committed(rows)
        self._in_flight.pop(id(rows), None)

    @staticmethod
    async def _recycle_idle(pool: Pool) -> None:
        """psycopg_pool replaces a connection past max_lifetime (pool_recycle) when it comes
        back to the pool; one idle in the pool, never taken, only on a check(). So check:
        no connection outlives pool_recycle by more than a quarter of it (at most 60 s)."""
        every = min(max(pool.max_lifetime / 4, 0.5), 60.0)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(psycopg.Error, OSError):
                await pool.check()

    def _start_watermarks(self) -> None:
        self._watermark_task = asyncio.create_task(self._watermark_loop(), name="tcpd-watermarks")

    async def _stop_watermarks(self) -> None:
        """Stop the periodic flush, then write what the drain committed (once, if it can)."""
        task, self._watermark_task = self._watermark_task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if not self._aborted.is_set() and self._outage_since is None:  # (not a wait in an outage)
            await self.flush_watermarks()

    async def _watermark_loop(self) -> None:
        while True:
            # Looking at the rows held costs ~0.1 µs a row (200,000 queued: 20 ms): a writer
            # far behind flushes less often, so the look stays under 1 % of the time.
            await asyncio.sleep(max(WATERMARK_INTERVAL, self._watermark_cost * WATERMARK_COST_RATIO))
            await self.flush_watermarks()

    async def flush_watermarks(self) -> None:
        """Write the changed watermarks; a failure waits for the next turn.

        Not while the spool holds rows: rows a previous run spooled were never noted by this
        one (their keys and times are unknown until replayed and committed), so nothing may
        pass them.
        """
        if self._pool is None or self.replaying():
            return
        started = time.perf_counter()
        # True when computed; still true when written later (committed rows stay committed).
        due = self.watermarks.due([self._queue.queued_rows(), *self._in_flight.values()])
        self._watermark_cost = time.perf_counter() - started
        if not due:
            return
        try:
            async with asyncio.timeout(self._settings.batch_deadline):
                async with self._pool.connection() as conn:
                    await write_watermarks(conn, self.watermarks, due)
        except (psycopg.Error, TimeoutError, OSError) as exc:
            logger.debug("watermarks not written (next try in %g s): %s", WATERMARK_INTERVAL, _describe(exc))

    # -- workers -------------------------------------------------------------------------

    async def _work(self) -> None:
        s = self._settings
        assert self._pool is not None
        lease = _Lease(self._pool)
        try:
            while True:
                await self._paused.wait()
                lease.waiting()
                rows = await self._queue.take(s.batch_max_rows, s.batch_max_delay)
                lease.working()
                if not rows:
                    return
                # Cancelled (stop() ran out of time): the rows stay counted as held, so
                # stop() reports them as not written, and stay pending for the watermarks.
                self._in_flight[id(rows)] = rows
                await self._write(rows, lease)
                self._committed(rows)
                self._queue.release(rows)
        finally:
            await lease.give_back()

    async def _write(self, rows: list[Row], lease: _Lease) -> None:
        """Commit `rows`, retrying through outages; bad rows end up as dead letters."""
        batch = Batch.build(rows)
        if batch.refused:
            logger.error("%d rows cannot be stored as given; dead-lettered", len(batch.refused))
            self._rejected += len(batch.refused)
            await self._write(list[Row](batch.refused), lease)
        if self._dedupe_left > 0:
            # Duplicates came recently (a replay, a reconnect overlap): skip the direct
            # COPY that would likely fail, go through staging at once.
            self._dedupe_left -= 1
            batch.dedupe = True
        backoff = Backoff(self._settings.retry_initial_delay, self._settings.retry_max_delay)
        deadline = self._settings.batch_deadline
        loop = asyncio.get_running_loop()
        stale_retry = True
        abandoned: tuple[int, datetime] | None = None  # (server pid, try began) given up on
        while True:
            conn: psycopg.AsyncConnection[Any] | None = None
            attempt_started = time.monotonic()
            attempt_wall = datetime.now(UTC)
            # Reported at the deadline itself: the cancellation below may take psycopg a few
            # more seconds (it asks the server to cancel, then closes the connection).
            overdue = loop.call_later(deadline, self._overdue, len(rows), attempt_started)
            try:
                async with asyncio.timeout(deadline):
                    conn = await lease.connection()
                    pid = conn.info.backend_pid
                    if abandoned is not None:
                        if await end_abandoned(conn, *abandoned):
                            logger.warning("ended the server session %d of the batch given up", abandoned[0])
                        abandoned = None
                    if batch.xid is not None:
                        done = await committed(conn, batch.xid)
                        if done is None:
                            raise TcpdError("the previous try of this batch is still running")
                        if done:
                            logger.info("batch of %d rows had committed before the error", len(rows))
                            c = batch.counts
                            self._count(Written(c["trades"], c["market"], c["dead_letters"], 0))
                            if self.on_commit is not None:
                                self.on_commit(time.monotonic() - attempt_started, rows)
                            return
                        batch.xid = None
                    written = await write_batch(conn, self._st, batch)
                self._count(written)
                if self.on_commit is not None:
                    self.on_commit(time.monotonic() - attempt_started, rows)
                return
            except TimeoutError:
                # Hung (a half-open connection, a stuck proxy): never reuse that connection.
                # The retry's transaction-id check or raw_trades' unique key keeps it exactly once.
                if conn is not None:
                    abandoned = (pid, attempt_wall)
                    if not conn.closed:
                        await conn.close()
                await lease.give_back()
                self._retrying(self._deadline_error(), attempt_started)
            except Exception as exc:
                # Whatever failed, the pool checks the connection (and replaces a broken one).
                await lease.give_back()
                if is_bad_data(exc):
                    batch.xid = None  # the server aborted that transaction
                    await self._isolate(rows, exc, lease)
                    return
                if is_conflict(exc):
                    self._retries += 1
                    logger.info("batch conflicted with another transaction, retrying: %s", _describe(exc))
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if stale_retry and conn is not None and conn.closed:
                    # A pooled connection the server cut while it sat idle (restart,
                    # idle timeout): not an outage yet, try once more straight away.
                    stale_retry = False
                    self._retries += 1
                    logger.debug("stale pooled connection, retrying: %s", _describe(exc))
                    continue
                self._retrying(exc, attempt_started)
            finally:
                overdue.cancel()
            await asyncio.sleep(backoff.next_delay())

    async def _isolate(self, rows: list[Row], exc: Exception, lease: _Lease) -> None:
        """Split a batch the database refused until the bad rows are found; dead-letter them."""
        reason = _describe(exc)
        if len(rows) == 1:
            row = rows[0]
            self._rejected += 1
            if is_rejection(row):
                logger.error("dropping a dead letter the database refused: %s", reason)
                return
            logger.warning("row refused by the database, dead-lettered: %s", reason)
            await self._write([rejected(row, f"refused by the database: {reason}")], lease)
            return
        half = len(rows) // 2
        await self._write(rows[:half], lease)
        await self._write(rows[half:], lease)

    def _count(self, written: Written) -> None:
        if written.duplicates:
            self._dedupe_left = DEDUPE_AFTER_DUPLICATE
        t = self._tables
        self._written[t.raw_trades] += written.raw_trades
        self._written[t.market_data] += written.market_data
        self._written[t.dead_letters] += written.dead_letters
        self._duplicates += written.duplicates
        self._batches += 1
        self._last_flush = datetime.now(UTC)
        if self._outage_since is not None:
            logger.warning(
                "database writes are back after %.1f s of outage; %d rows waiting",
                time.monotonic() - self._outage_since,
                self._queue.held,
            )
            self._outage_since = None

    def _deadline_error(self) -> TcpdError:
        return TcpdError(
            f"batch not committed within writer.batch_deadline ({self._settings.batch_deadline:g} s); "
            "connection dropped, retrying on a new one"
        )

    def _overdue(self, rows: int, since: float) -> None:
        """The try that began at `since` passed its deadline: report the outage now."""
        logger.warning(
            "batch of %d rows not committed within writer.batch_deadline (%g s): "
            "cancelling it, dropping its connection, retrying on a new one",
            rows,
            self._settings.batch_deadline,
        )
        self._outage(self._deadline_error(), since)

    def _retrying(self, exc: BaseException, since: float) -> None:
        self._retries += 1
        self._outage(exc, since)

    def _outage(self, exc: BaseException, since: float) -> None:
        self._last_error = _describe(exc)
        if self._outage_since is None:
            # From the start of the failed try: waiting for a connection is part of it.
            self._outage_since = since
            logger.error(
                "database writes failing, keeping %d rows and retrying: %s",
                self._queue.held,
                self._last_error,
            )

    # -- status and health ---------------------------------------------------------------

    async def write_status(self, rows: Sequence[CollectorStatusRow]) -> None:
        """Upsert collector_status rows (one per collector) in one transaction.

        Raises DatabaseError when the database is unreachable: status is refreshed
        periodically, so the caller logs and tries again next time.
        """
        if not rows:
            return
        if self._pool is None or not self._started:
            raise WriterStateError("CopyWriter.write_status() before start()")
        try:
            async with self._pool.connection() as conn:
                await upsert_status(conn, self._st.upsert_status, rows)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot write collector status: {_describe(exc)}") from None

    async def database_reachable(self, timeout: float) -> bool:  # noqa: ASYNC109 - a probe's bound
        """True if a pool connection answers SELECT 1 within `timeout` seconds (readiness)."""
        if self._pool is None:
            return False
        try:
            async with asyncio.timeout(timeout), self._pool.connection(timeout=timeout) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, OSError, TimeoutError, PoolTimeout):
            return False
        return True

    def stats(self) -> dict[str, Any]:
        """Counters and fill level for health reporting (no secrets: errors are redacted)."""
        held = self._queue.held
        capacity = self._queue.capacity
        return {
            "rows_written": dict(self._written),
            "duplicates_skipped": self._duplicates,
            "rows_rejected": self._rejected,
            "batches": self._batches,
            "retries": self._retries,
            "queue_rows": held,
            "queue_capacity": capacity,
            "queue_fill": held / capacity,
            "oldest_row_age": self._queue.oldest_age(),
            "outage": self._outage_since is not None,
            "outage_seconds": 0.0 if self._outage_since is None else time.monotonic() - self._outage_since,
            "last_error": self._last_error,
            "last_flush_time": self._last_flush.isoformat() if self._last_flush else None,
            **self._queue.spool_stats(),
        }
