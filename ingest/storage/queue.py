"""A bounded queue of rows between collectors and the writer.

Bounded by rows, not by put() calls: `put` waits while the rows held (queued plus
taken-but-not-yet-committed) reach the capacity, so a slow database slows intake and
memory stays bounded (at most capacity plus one put's rows). Nothing is ever dropped:
rows leave only through `take` and are released only after they are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from ingest.errors import TcpdError
from ingest.rows import Row

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

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("queue capacity must be at least 1 row")
        self.capacity = capacity
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

    @property
    def held(self) -> int:
        """Rows queued or in flight (taken, not released): what counts against capacity."""
        return self._held

    @property
    def closed(self) -> bool:
        """True once close() was called: no more puts."""
        return self._closed

    def has_room(self) -> bool:
        """True when put_nowait() may be called now."""
        return self._held < self.capacity and not self._closed

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
        """Queue `rows` (see put_nowait), first waiting while the queue is at capacity."""
        while self._held >= self.capacity and not self._closed:
            self._has_room.clear()
            await self._has_room.wait()
        if self._closed:
            raise QueueClosedError("the writer is stopping and accepts no more rows")
        if rows:
            self.put_nowait(rows, since)

    def close(self) -> None:
        """Refuse further puts; waiting putters get QueueClosedError; takes drain what is left."""
        self._closed = True
        self._has_room.set()
        self._changed.set()

    def oldest_age(self) -> float:
        """Seconds the oldest queued row has waited (0 when empty)."""
        return time.monotonic() - self._oldest if self._rows else 0.0

    async def take(self, max_rows: int, max_delay: float) -> list[Row]:
        """Return up to max_rows rows once max_rows are queued or the oldest waited max_delay.

        A put after the oldest row waited 90 % of max_delay (EARLY_CLOSE) ends the wait too.
        After close() the remaining rows are returned at once; an empty list then means
        the queue is closed and drained.
        """
        while len(self._rows) < max_rows and not self._closed:
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
        return batch

    def release(self, rows: int) -> None:
        """Give back capacity for `rows` taken rows that are now committed."""
        self._held -= rows
        if self._held < self.capacity:
            self._has_room.set()
