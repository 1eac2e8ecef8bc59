"""A bounded queue of rows between collectors and the writer, with an optional disk spool.

Bounded by rows, not by put() calls: memory holds at most the capacity (queued plus
taken-but-not-yet-committed rows, plus one put's rows), and one spool segment being
replayed. Rows leave only through `take` and are released only after they are committed.

What happens when memory is full:

- Without a spool, `put` waits for room: a slow database slows intake.
- With a spool (ingest.storage.spool), `put` waits for room at most `spill_after` seconds
  (1 s by default): a database that commits, only slower than a burst comes in, makes
  room within that, and rows that skip the spool skip its encoding and decoding (at full
  speed, spooling cost the collector ~3 µs per row). After that the rows go to the spool,
  and so do all later rows (without waiting) until the spool has handed every segment
  back, so order holds:
  memory rows are older than spooled rows, and a segment being replayed is older than
  rows that reach memory after it. `take` returns, in this order, rows of the segment
  being replayed, memory rows, then the next segment (loaded when memory is empty). A
  segment is deleted once every row of it was released (committed). Only a full spool
  loses rows, counted and recorded (ingest.storage.spool_losses).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from ingest.errors import TcpdError
from ingest.rows import Row
from ingest.storage.spool import Pool, Segment, Spool

# Share of max_delay at the end of a take()'s wait in which the next put closes the batch.
EARLY_CLOSE = 0.1


class QueueClosedError(TcpdError):
    """put() was called after the writer stopped accepting rows."""


class RowQueue:
    """Row-bounded FIFO with size-or-age batching for one consumer side.

    Rows sit in one flat list (a put is an extend, a take one slice): per-row cost is
    what matters at 100k+ rows/s. Age is tracked for the oldest row only; after a take
    that leaves rows behind, their age is taken to be the old oldest's (conservative:
    a batch may close early, never later than max_delay).
    """

    def __init__(self, capacity: int, spool: Spool | None = None) -> None:
        if capacity < 1:
            raise ValueError("queue capacity must be at least 1 row")
        self.capacity = capacity
        self.spool = spool
        # Rows of the spool segment being replayed, and which segment each taken batch
        # of them came from (by the batch list's id, until release()).
        self._replay: list[Row] = []
        self._replaying: Segment | None = None
        self._from_segment: dict[int, Segment] = {}
        # Memory batches taken and not released, by id: spill() writes them to the spool.
        self._in_flight: dict[int, list[Row]] = {}
        self._loading = asyncio.Lock()
        self._rows: list[Row] = []
        self._oldest = 0.0  # monotonic time the oldest queued row arrived
        self._held = 0  # rows queued + taken but not yet released (committed)
        self._closed = False
        self._has_room = asyncio.Event()
        self._has_room.set()
        self._changed = asyncio.Event()
        # Rows a waiting take() needs before it returns early (0: it waits for the first
        # row). A put below that does not wake it: its timer ends the wait anyway, and at
        # a steady rate each needless wake-up of each writer worker costs CPU.
        self._wanted = 0
        # From this monotonic time on, a put ends a waiting take() (see take()).
        self._due = float("inf")

    @property
    def queued(self) -> int:
        """Rows waiting to be taken."""
        return len(self._rows)

    def queued_rows(self) -> list[Row]:
        """The memory rows waiting to be taken, oldest first (the live list: read, never change)."""
        return self._rows

    @property
    def held(self) -> int:
        """Memory rows queued or in flight (taken, not released): what counts against capacity.

        Rows replayed from the spool are not counted: their segment is still on disk.
        """
        return self._held

    @property
    def unwritten(self) -> int:
        """Rows accepted and neither committed nor kept in the spool: held plus spool losses."""
        return self._held + (self.spool.losses.rows_lost if self.spool is not None else 0)

    @property
    def closed(self) -> bool:
        """True once close() was called: no more puts."""
        return self._closed

    def has_room(self) -> bool:
        """True when put_nowait() may be called now (not while the spool holds rows: order)."""
        spool = self.spool
        return self._held < self.capacity and not self._closed and (spool is None or not spool.pending)

    def put_nowait(self, rows: Sequence[Row], since: float | None = None) -> None:
        """Queue `rows` without waiting; only call when has_room() (put() checks for you).

        `since`: the monotonic time the rows may have started waiting (None: now); their
        age, and so when their batch closes, counts from it.
        """
        arrived = time.monotonic() if since is None else since
        if not self._rows or arrived < self._oldest:
            self._oldest = arrived
        self._rows += rows
        self._held += len(rows)
        if not self._changed.is_set() and (len(self._rows) >= self._wanted or time.monotonic() >= self._due):
            self._changed.set()

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None:
        """Queue `rows` (see put_nowait). When memory is full: wait for room up to the
        spool's spill_after, then spool them; without a spool wait for room."""
        spool = self.spool
        if spool is not None and not self._closed:
            if rows:
                if not spool.pending and self._held >= self.capacity and spool.spill_after > 0:
                    await self._wait_for_room(spool.spill_after)
                    if self._closed:
                        raise QueueClosedError("the writer is stopping and accepts no more rows")
                if spool.pending or self._held >= self.capacity:
                    spool.append(list(rows))
                    if not self._changed.is_set() and not self._rows:
                        self._changed.set()  # a take waiting on an empty memory queue
                else:
                    self.put_nowait(rows, since)
            return
        await self._room()
        if self._closed:
            raise QueueClosedError("the writer is stopping and accepts no more rows")
        if rows:
            self.put_nowait(rows, since)

    async def _room(self) -> None:
        """Wait until memory has room or the queue closes."""
        while self._held >= self.capacity and not self._closed:
            self._has_room.clear()
            await self._has_room.wait()

    async def _wait_for_room(self, seconds: float) -> None:
        """_room(), for at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._room()

    def close(self) -> None:
        """Refuse further puts; waiting putters get QueueClosedError; takes drain what is left."""
        self._closed = True
        self._has_room.set()
        self._changed.set()

    def oldest_age(self) -> float:
        """Seconds the oldest queued row has waited (0 when empty)."""
        return time.monotonic() - self._oldest if self._rows else 0.0

    def _spooled(self) -> bool:
        return self.spool is not None and self.spool.pending

    async def _load_segment(self) -> None:
        """Bring the oldest spool segment into _replay (when memory and _replay are empty)."""
        assert self.spool is not None
        async with self._loading:
            if self._replay or self._rows or not self.spool.pending:
                return  # another taker loaded one meanwhile, or rows arrived
            got = await self.spool.take_segment()
            if got is not None:
                self._replaying, self._replay = got

    def _take_replayed(self, max_rows: int) -> list[Row]:
        batch = self._replay[:max_rows]
        del self._replay[:max_rows]
        assert self._replaying is not None
        self._from_segment[id(batch)] = self._replaying
        if not self._replay:
            self._replaying = None
        return batch

    async def take(self, max_rows: int, max_delay: float) -> list[Row]:
        """Return up to max_rows rows once max_rows are queued or the oldest waited max_delay.

        A put after the oldest row waited 90 % of max_delay (EARLY_CLOSE) ends the wait too.
        Spooled rows are ready at once. After close() the remaining rows (the spool's
        too) are returned at once; an empty list then means the queue is closed and drained.
        """
        while True:
            if self._replay:
                return self._take_replayed(max_rows)
            if not self._rows and self._spooled():
                await self._load_segment()
                continue
            if len(self._rows) >= max_rows or self._closed:
                break
            self._changed.clear()
            if not self._rows:
                self._wanted = 0
                self._due = float("inf")
                await self._changed.wait()
                continue
            self._wanted = max_rows
            deadline = self._oldest + max_delay
            # In the last tenth of the wait a put closes the batch: the wake-up that
            # brought the rows serves the writer too, instead of its own timer waking the
            # loop once more a moment later.
            self._due = deadline - max_delay * EARLY_CLOSE
            now = time.monotonic()
            if now >= self._due:
                break
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that
            # lands as the wait ends, which would leave a stopping writer running.
            # On timeout the loop looks again: another taker (the writer runs several) may
            # have taken the rows meanwhile, and an empty result means "closed" to callers.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - now):
                    await self._changed.wait()
        batch = self._rows[:max_rows]
        del self._rows[:max_rows]
        if self.spool is not None and batch:
            self._in_flight[id(batch)] = batch
        return batch

    def release(self, rows: int | list[Row]) -> None:
        """Give back what a taken batch held, now committed: pass the list take() returned
        (a count only for memory rows when there is no spool)."""
        if not isinstance(rows, int):
            segment = self._from_segment.pop(id(rows), None)
            if segment is not None:
                segment.left -= len(rows)
                if segment.left <= 0 and segment is not self._replaying:
                    assert self.spool is not None
                    self.spool.discard(segment)
                return
            self._in_flight.pop(id(rows), None)
            rows = len(rows)
        self._held -= rows
        if self._held < self.capacity:
            self._has_room.set()

    def spill(self) -> int:
        """Move every memory row not committed (queued and in flight) to the spool; how many.

        For a stop that could not flush (the database is down): what the spool takes is
        replayed by the next start instead of being lost. In-flight batches whose commit
        outcome is unknown may be in the database already: raw_trades skips them again by
        its unique key.
        """
        spool = self.spool
        if spool is None:
            return 0
        rows = [r for batch in self._in_flight.values() for r in batch] + self._rows
        self._in_flight.clear()
        self._rows = []
        self._held = 0
        if rows:
            spool.append(rows)
        return len(rows)

    def open_spool(self) -> None:
        """Open the spool: lock its directory, find what a crash left (replayed first)."""
        if self.spool is not None:
            self.spool.open()

    def start_spool(self, pool: Pool | None) -> None:
        """Start the spool's task (fsync; loss ranges recorded through `pool`)."""
        if self.spool is not None:
            self.spool.start(pool)

    async def close_spool(self) -> None:
        """Fsync and close the spool (its files stay for the next start)."""
        if self.spool is not None:
            await self.spool.close()

    def spool_stats(self) -> dict[str, Any]:
        """The spool's figures for status and health ({} without a spool)."""
        if self.spool is None:
            return {}
        return {"spool": {**self.spool.stats(), "replay_rows_queued": len(self._replay)}}
