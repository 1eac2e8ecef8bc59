"""Backpressure is not silence (issue 9, item 1): while a reader waits in the sink's put()
(a full writer queue with the spool off or full, a database outage), the health task does
not restart the collector, the keepalive does not drop the connection although the reader
reads nothing, and the health issues say "writer backpressure / database unreachable"
instead of "no data". Real simulator on loopback; the sink is held shut by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ingest.rows import Row
from tests.collector_support import MemorySink, collector_for, simulator, trade_keys, wait_for

HELD = 4.0  # seconds the sink keeps its door shut: longer than every limit below
QUIET = "ETH-USDT"  # accepted by the simulator, never streamed


class HeldSink(MemorySink):
    """A MemorySink whose put() waits while `door` is shut, like a full writer queue, and
    whose stats say the database is unreachable meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.door = asyncio.Event()
        self.door.set()
        self.waits = 0

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None:
        if not self.door.is_set():
            self.waits += 1
            await self.door.wait()
        await super().put(rows, since)

    def stats(self) -> dict[str, Any]:
        shut = not self.door.is_set()
        return {
            **super().stats(),
            "outage": shut,
            "outage_seconds": 3.0 if shut else 0.0,
            "last_error": "OperationalError: connection refused" if shut else None,
        }


async def test_a_reader_waiting_on_the_sink_is_neither_restarted_nor_dropped_and_loses_nothing() -> None:
    async with simulator(total=3000, rate=500.0) as sim:
        sink = HeldSink()
        collector = collector_for(
            sim,
            sink,
            max_silence=1.0,
            health_check_interval=0.1,
            ping_interval=0.3,
            pong_timeout=0.5,
        )
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) >= 200, within=15, what="the first trades")
            sink.door.clear()
            await wait_for(lambda: sink.waits == 1, within=5, what="the reader to wait")
            await asyncio.sleep(HELD)
            health = collector.get_health_status()
            status = collector.get_status()
            sink.door.set()
            await wait_for(lambda: len(sink.trades) == 3000, within=30, what="every trade")
        finally:
            await collector.stop()
    assert status["statistics"]["restarts"] == 0
    assert sim.counters["connections"] == 1  # the keepalive kept the connection
    assert sim.counters["pings"] >= 3  # and kept pinging the exchange meanwhile
    issues = " | ".join(health["issues"])
    assert "writer backpressure / database unreachable: a reader has waited" in issues
    assert "database writes failing for 3s (OperationalError: connection refused)" in issues
    assert "no data for" not in issues
    assert "no message or pong" not in issues
    assert trade_keys(sink.trades) == [tuple(t) for t in sim.sent_trades]


async def test_silence_with_nothing_held_up_still_restarts() -> None:
    # The other side of the rule: an exchange that goes quiet while the sink has room.
    async with simulator(total=0) as sim:
        collector = collector_for(sim, HeldSink(), symbol=QUIET, max_silence=0.5, health_check_interval=0.1)
        await collector.start()
        try:
            await wait_for(lambda: collector.get_status()["statistics"]["restarts"] >= 1, what="a restart")
        finally:
            await collector.stop()
