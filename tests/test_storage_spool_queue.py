"""RowQueue with a spool: put() waits at most spill_after for room, then spools without
waiting; order holds, segments go only after commit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ingest.rows import Row
from ingest.storage.queue import RowQueue
from ingest.storage.spool import Spool
from tests.storage_support import (
    count,
    expected_trades,
    make_writer,
    read_trades,
    trade,
    wait_until,
)

SEG = 64 * 1024


def spooled_queue(
    path: Path, capacity: int = 50, max_bytes: int = 1 << 22, spill_after: float = 0.0
) -> RowQueue:
    q = RowQueue(capacity, Spool(path, max_bytes, SEG, fsync_interval=0.05, spill_after=spill_after))
    q.open_spool()
    return q


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("*.jsonl"))


async def take_all(q: RowQueue, max_rows: int = 40) -> list[Row]:
    """Take and release batches until the (closed) queue is drained."""
    out: list[Row] = []
    while batch := await q.take(max_rows, 0.01):
        out += batch
        q.release(batch)
    return out


async def test_a_full_queue_that_drains_within_spill_after_keeps_its_rows_out_of_the_spool(
    tmp_path: Path,
) -> None:
    # A database slower than a burst, but committing: the put waits for room, no spooling.
    q = spooled_queue(tmp_path, capacity=10, spill_after=30.0)
    first = [trade(i) for i in range(10)]
    await q.put(first)
    waiting = asyncio.create_task(q.put([trade(10), trade(11)]))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # memory is full: it waits instead of spooling
    batch = await q.take(10, 0.01)
    q.release(batch)  # committed: room
    async with asyncio.timeout(5):
        await waiting
    assert q.spool is not None
    assert q.spool.stats()["rows_spooled"] == 0
    q.close()
    assert batch + await take_all(q) == [*first, trade(10), trade(11)]
    await q.close_spool()


async def test_a_full_queue_that_does_not_drain_spools_after_spill_after_then_without_waiting(
    tmp_path: Path,
) -> None:
    q = spooled_queue(tmp_path, capacity=10, spill_after=0.2)
    await q.put([trade(i) for i in range(10)])
    waiting = asyncio.create_task(q.put([trade(10)]))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    async with asyncio.timeout(5):
        await waiting  # spill_after passed without room: spooled
    assert q.spool is not None
    assert q.spool.stats()["rows_spooled"] == 1
    async with asyncio.timeout(0.1):  # the spool holds rows: later puts follow at once
        await q.put([trade(11)])
    assert q.spool.stats()["rows_spooled"] == 2
    q.close()
    assert await take_all(q) == [trade(i) for i in range(12)]
    await q.close_spool()


async def test_put_never_waits_when_memory_is_full_and_order_holds(tmp_path: Path) -> None:
    q = spooled_queue(tmp_path)
    rows = [trade(i) for i in range(5000)]
    for i in range(0, len(rows), 7):
        async with asyncio.timeout(1):  # it must not wait for a take
            await q.put(rows[i : i + 7])
    assert q.held == 56  # memory: up to capacity plus one put
    assert q.spool is not None
    assert q.spool.stats()["rows_spooled"] == 5000 - 56
    q.close()
    assert await take_all(q) == rows
    assert segments(tmp_path) == []
    assert q.unwritten == 0
    await q.close_spool()


async def test_rows_put_while_the_spool_drains_follow_it(tmp_path: Path) -> None:
    q = spooled_queue(tmp_path, capacity=10)
    first = [trade(i) for i in range(400)]
    for i in range(0, 400, 20):
        await q.put(first[i : i + 20])
    out: list[Row] = []
    later: list[Row] = []
    n = 400
    # Interleave: every take is followed by a new put, as live rows keep coming.
    while len(out) < 400 + len(later) or n < 700:
        if n < 700:
            chunk = [trade(i) for i in range(n, n + 5)]
            later += chunk
            n += 5
            await q.put(chunk)
        batch = await q.take(30, 0.01)
        out += batch
        q.release(batch)
    assert out == first + later
    await q.close_spool()


async def test_a_segment_is_deleted_only_after_all_its_rows_are_released(tmp_path: Path) -> None:
    q = spooled_queue(tmp_path, capacity=1)
    await q.put([trade(0)])  # memory
    rows = [trade(i) for i in range(1, 301)]
    await q.put(rows)  # spool: one segment
    assert (await q.take(10, 0.01)) == [trade(0)]
    a = await q.take(100, 0.01)  # two workers hold batches of the same segment
    b = await q.take(100, 0.01)
    c = await q.take(200, 0.01)
    assert a + b + c == rows
    (segment,) = segments(tmp_path)
    q.release(c)
    q.release(a)  # out of order, as two writer workers commit
    assert segment.exists()
    q.release(b)
    assert not segment.exists()
    await q.close_spool()


async def test_spooled_rows_are_replayed_after_a_restart(tmp_path: Path) -> None:
    q = spooled_queue(tmp_path, capacity=5)
    rows = [trade(i) for i in range(100)]
    await q.put(rows)  # memory: 100 (one put over capacity)
    more = [trade(i) for i in range(100, 300)]
    await q.put(more)  # spooled
    taken = await q.take(30, 0.01)  # in flight, never committed
    q.close()
    assert q.spill() == 100  # the stop could not flush: memory rows go to the spool too
    assert q.unwritten == 0
    await q.close_spool()
    again = spooled_queue(tmp_path)
    again.close()
    # Spilled rows come after the ones spooled before them (the stop found them later).
    assert await take_all(again) == more + taken + rows[30:]
    await again.close_spool()


async def test_without_a_spool_put_still_waits(tmp_path: Path) -> None:
    q = RowQueue(5)
    await q.put([trade(i) for i in range(5)])
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await q.put([trade(5)])


async def test_writer_keeps_accepting_through_an_outage_and_stores_everything_once(
    tmp_path: Path, migrated_db_dsn: str, native_engine: Any
) -> None:
    """The database stops; put() waits once, spill_after, then never, though the queue is
    tiny; all rows land once."""
    from ingest.config.spool import SpoolSettings

    writer = make_writer(migrated_db_dsn, queue_max_rows=500, batch_max_rows=200, retry_max_delay=0.3)
    writer = type(writer)(
        migrated_db_dsn,
        writer._tables,
        writer._settings,
        spool=SpoolSettings(directory=str(tmp_path / "spool"), max_bytes=1 << 24, segment_bytes=1 << 20),
    )
    await writer.start()
    sent = []
    put_seconds = []
    try:
        for i in range(50):
            sent.append(trade(i))
        await writer.put(sent[:50])
        await wait_until(lambda: count(migrated_db_dsn, "raw_trades") == 50, 20, "first rows")
        await asyncio.to_thread(native_engine.stop)
        loop = asyncio.get_running_loop()
        for i in range(50, 20_050, 100):
            chunk = [trade(j) for j in range(i, i + 100)]
            sent += chunk
            t0 = loop.time()
            await writer.put(chunk)
            put_seconds.append(loop.time() - t0)
            await asyncio.sleep(0.001)
        await wait_until(lambda: writer.stats()["outage"], 30, "the writer to see the outage")
        stats = writer.stats()
        assert stats["spool"]["bytes"] > 0
        assert stats["spool"]["oldest_row_time"] is not None
        assert stats["spool"]["rows_spooled"] >= 20_000 - 500 - 100
        await asyncio.to_thread(native_engine.start)
        await wait_until(lambda: count(migrated_db_dsn, "raw_trades") == len(sent), 60, "all rows")
    finally:
        await writer.stop(60)
    # One put waited spill_after (1 s) for room, the rest are file appends.
    waits = sorted(put_seconds, reverse=True)
    assert 0.9 < waits[0] < 2.0
    assert waits[1] < 0.5
    assert writer.unwritten == 0
    assert read_trades(migrated_db_dsn) == expected_trades(sent)
    assert list((tmp_path / "spool").glob("*.jsonl")) == []
    assert writer.stats()["spool"]["bytes"] == 0
