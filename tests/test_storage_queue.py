"""RowQueue: row-count bound, size-or-age batches, drain on close (no database needed)."""

from __future__ import annotations

import asyncio
import time

import pytest

from ingest.rows import DeadLetter
from ingest.storage.queue import QueueClosedError, RowQueue


def rows(n: int, start: int = 0) -> list[DeadLetter]:
    return [DeadLetter("x", i, "r", str(i)) for i in range(start, start + n)]


async def test_take_returns_a_full_batch_at_once_in_order() -> None:
    q = RowQueue(100)
    await q.put(rows(3))
    await q.put(rows(4, start=3))
    started = time.monotonic()
    batch = await q.take(5, max_delay=10)
    assert time.monotonic() - started < 5  # did not wait for the delay
    assert [r.received_ms for r in batch] == [0, 1, 2, 3, 4]
    assert q.queued == 2
    assert q.held == 7  # taken rows count until released


async def test_take_waits_for_the_delay_when_the_batch_is_not_full() -> None:
    q = RowQueue(100)
    await q.put(rows(2))
    started = time.monotonic()
    batch = await q.take(1000, max_delay=0.2)
    waited = time.monotonic() - started
    assert len(batch) == 2
    assert 0.15 <= waited < 5


async def test_put_waits_while_full_and_resumes_on_release() -> None:
    q = RowQueue(5)
    await q.put(rows(5))
    blocked = asyncio.create_task(q.put(rows(1, start=5)))
    await asyncio.sleep(0.1)
    assert not blocked.done()
    batch = await q.take(5, max_delay=0)
    await asyncio.sleep(0.1)
    assert not blocked.done(), "taking alone must not free room: rows are held until committed"
    q.release(len(batch))
    await asyncio.wait_for(blocked, 5)
    assert q.held == 1


async def test_close_drains_then_signals_the_end() -> None:
    q = RowQueue(10)
    await q.put(rows(3))
    q.close()
    with pytest.raises(QueueClosedError):
        await q.put(rows(1))
    assert len(await q.take(100, max_delay=60)) == 3
    assert await q.take(100, max_delay=60) == []


async def test_close_wakes_a_waiting_putter_with_an_error() -> None:
    q = RowQueue(1)
    await q.put(rows(1))
    blocked = asyncio.create_task(q.put(rows(1, start=1)))
    await asyncio.sleep(0.05)
    q.close()
    with pytest.raises(QueueClosedError):
        await asyncio.wait_for(blocked, 5)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RowQueue(0)


async def test_concurrent_takers_never_get_an_empty_batch_before_close() -> None:
    """The writer runs several workers on one queue; an empty take means "closed" to them,
    so a taker that loses the rows to another must keep waiting, not return []."""
    q = RowQueue(1000)
    got: list[tuple[str, int]] = []

    async def taker(name: str) -> None:
        while True:
            batch = await q.take(100, max_delay=0.05)
            if not batch:
                got.append((name, 0))
                return
            got.append((name, len(batch)))
            q.release(len(batch))

    workers = [asyncio.create_task(taker("a")), asyncio.create_task(taker("b"))]
    await asyncio.sleep(0.01)
    await q.put(rows(3))
    await asyncio.sleep(0.2)
    # Both takers waited for the same oldest row; one got the rows, the other waits on.
    assert sorted(n for _, n in got) == [3]
    assert [w.done() for w in workers] == [False, False]
    await q.put(rows(2, start=3))
    await asyncio.sleep(0.2)
    assert sorted(n for _, n in got) == [2, 3]
    q.close()
    await asyncio.wait_for(asyncio.gather(*workers), timeout=5)
    assert sorted(n for _, n in got) == [0, 0, 2, 3]  # the empty batch only after close


async def test_a_put_below_the_batch_size_does_not_end_the_wait_early() -> None:
    q = RowQueue(1000)
    await q.put(rows(1))
    started = time.monotonic()
    taking = asyncio.create_task(q.take(10, max_delay=0.3))
    for i in range(5):  # 6 rows in all: still below the batch size of 10
        await asyncio.sleep(0.02)
        await q.put(rows(1, start=i + 1))
    batch = await taking
    assert len(batch) == 6
    assert time.monotonic() - started >= 0.25  # waited for the delay, not the puts
    await q.put(rows(10, start=100))
    started = time.monotonic()
    assert len(await q.take(10, max_delay=10)) == 10
    assert time.monotonic() - started < 5  # a full batch returns at once


async def test_age_counts_from_since() -> None:
    # Rows that already waited (in the socket, while reading lingered) close their batch
    # that much sooner: the linger and the batch delay do not add up.
    q = RowQueue(100)
    await q.put(rows(2), since=time.monotonic() - 10)
    started = time.monotonic()
    assert len(await q.take(1000, max_delay=10)) == 2
    assert time.monotonic() - started < 5
    # A later put with an older `since` makes the queue older too.
    await q.put(rows(1))
    await q.put(rows(1, start=1), since=time.monotonic() - 10)
    started = time.monotonic()
    assert len(await q.take(1000, max_delay=10)) == 2
    assert time.monotonic() - started < 5


async def test_a_put_near_the_deadline_closes_the_batch_at_once() -> None:
    # In the last tenth of max_delay a put ends the wait: the wake-up that brought the
    # rows serves the writer too, instead of the timer waking the loop a moment later.
    q = RowQueue(1000)
    max_delay = 10.0
    await q.put(rows(1), since=time.monotonic() - 8.9)  # due for an early close in 0.1 s
    taking = asyncio.create_task(q.take(100, max_delay))
    await asyncio.sleep(0.3)
    assert not taking.done(), "nothing was put: the wait goes on until the deadline"
    await q.put(rows(1, start=1))
    batch = await asyncio.wait_for(taking, timeout=0.5)  # the deadline is ~0.8 s away
    assert len(batch) == 2
