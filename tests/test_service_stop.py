"""The stop path of `tcpd run` is bounded: no SIGTERM leaves the process running.

The in-process test replays, deterministically, the race that once left `tcpd run`
looping after SIGTERM: the stop cancels the status loop in the very loop turn a status
write finishes (Python 3.11's asyncio.wait_for then swallowed the cancellation). The
subprocess tests send real signals to `tcpd run` while its database is unreachable: a
second signal ends the stop at once (rows counted as lost); a database back within the
stop's 60 s still gets everything.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ingest import service as service_module
from ingest.config import DatabaseFile, TableNames, WriterSettings
from ingest.rows import Row, TradeRow
from ingest.service import IngestService
from ingest.simulator import OkxSimulator
from ingest.storage import CollectorStatusRow, CopyWriter
from ingest.storage.watermarks import Hold
from tests.collector_support import (
    MemorySink,
    btc_trades_config,
    collector_for,
    simulator,
    trade_keys,
    wait_for,
)
from tests.service_support import Service, db_trades, sent_tuples, wait_rows, write_configs

UNREACHABLE_DSN = "postgresql://nobody@127.0.0.1:1/unused"


class StatusRaceWriter:
    """A writer stand-in that starts the service's stop as a status write returns.

    Everything else is what the service needs from a CopyWriter: rows put are kept.
    """

    def __init__(self, *_args: object) -> None:
        self.rows: list[Row] = []
        self.status_writes = 0
        self.stopped_with: float | None = None
        self.race: IngestService | None = None  # whose stop() to start from a status write
        self.stop_task: asyncio.Task[bool] | None = None

    async def start(self) -> None:
        pass

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None:
        self.rows.extend(rows)

    async def write_status(self, rows: Sequence[CollectorStatusRow]) -> None:
        self.status_writes += 1
        if self.race is not None and self.stop_task is None:
            # No await before returning: this write finishes in the same loop turn as
            # the stop task's first step, which cancels the status loop.
            self.stop_task = asyncio.create_task(self.race.stop())

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - CopyWriter's signature
        self.stopped_with = timeout

    def abort(self) -> None:
        pass

    @property
    def unwritten(self) -> int:
        return 0

    # Watermark holds (gap filling): nothing is written here, so nothing to hold.
    def hold(self, exchange: str, symbol: str, at: datetime | None) -> Hold:
        return Hold(exchange, symbol, None, 0)

    def release(self, hold: Hold) -> None:
        pass

    def replaying(self) -> bool:
        return False

    def stats(self) -> dict[str, Any]:
        return {
            "rows_written": {},
            "duplicates_skipped": 0,
            "queue_rows": 0,
            "queue_capacity": 100,
            "queue_fill": 0.0,
        }


async def test_stop_racing_a_status_write_still_finishes(monkeypatch: pytest.MonkeyPatch) -> None:
    writer = StatusRaceWriter()
    monkeypatch.setattr(service_module, "CopyWriter", lambda *args, **kwargs: writer)
    async with simulator(total=200) as sim:
        database = DatabaseFile.model_validate(
            {
                "database": {"url": UNREACHABLE_DSN},
                "writer": {"status_interval": 0.05},
                "http": {"listen": None},
            }
        )
        exchange = btc_trades_config(sim)
        service = IngestService(database, [exchange])
        await service.start()
        try:
            await wait_for(lambda: len(writer.rows) >= 200, within=20, what="200 trades")
            await wait_for(lambda: writer.status_writes >= 2, what="periodic status writes")
            writer.race = service
            await wait_for(lambda: writer.stop_task is not None, what="the stop to begin")
            assert writer.stop_task is not None
            # Before the fix the status loop swallowed the cancel and stop() never returned.
            done, _ = await asyncio.wait({writer.stop_task}, timeout=15)
            assert writer.stop_task in done, "stop() did not return within 15 s"
            assert writer.stop_task.result() is True
        finally:
            if writer.stop_task is None or not writer.stop_task.done():
                if writer.stop_task is not None:
                    writer.stop_task.cancel()
                for collector in service.manager.collectors():
                    await collector.stop(force=True)
    assert writer.stopped_with == service_module.WRITER_STOP_TIMEOUT
    trades = [r for r in writer.rows if isinstance(r, TradeRow)]
    assert trade_keys(trades) == [tuple(t) for t in sim.sent_trades]
    assert not service.manager.collectors()[0].is_running


async def _running_with_unwritten_rows(
    tmp_path: Path, sim: OkxSimulator, dsn: str, *, spool: bool = True
) -> Service:
    args = write_configs(tmp_path, sim, dsn, ["BTC-USDT"])
    if not spool:  # rows the stop cannot write are lost, not kept for the next start
        database = json.loads((tmp_path / "database.json").read_text())
        (tmp_path / "database.json").write_text(json.dumps({**database, "spool": {"enabled": False}}))
    svc = Service(tmp_path, args)
    await svc.start()
    try:
        deadline = time.monotonic() + 30
        while "database writes failing" not in svc.output():
            assert time.monotonic() < deadline, svc.output()
            await asyncio.sleep(0.1)
        await wait_for(lambda: len(sim.sent_trades) == 300, within=30, what="300 trades sent")
    except BaseException:
        svc.kill()
        raise
    return svc


async def test_second_sigterm_exits_at_once_and_counts_the_rows_lost(tmp_path: Path) -> None:
    async with simulator(total=300, rate=1000.0) as sim:
        svc = await _running_with_unwritten_rows(tmp_path, sim, UNREACHABLE_DSN, spool=False)
        try:
            await asyncio.sleep(0.5)  # every trade received: the writer holds 300 rows
            svc.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            await asyncio.sleep(1.0)
            assert svc.proc.returncode is None, "exited before the second signal"  # type: ignore[union-attr]
            # The first SIGTERM alone would wait WRITER_STOP_TIMEOUT (60 s) for the database.
            assert await svc.terminate(within=15) == 1, svc.output()
        finally:
            svc.kill()
    out = svc.output()
    assert "second stop signal" in out
    assert "300 rows NOT written" in out
    assert "not written 300" in out


async def test_sigterm_while_the_database_is_down_flushes_once_it_is_back(
    tmp_path: Path, migrated_db_dsn: str, native_engine: Any
) -> None:
    dsn = migrated_db_dsn
    async with simulator(total=300, rate=1000.0) as sim:
        await asyncio.to_thread(native_engine.stop)
        try:
            svc = await _running_with_unwritten_rows(tmp_path, sim, dsn)
            await asyncio.sleep(0.5)
            svc.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            await asyncio.sleep(2.0)
            assert svc.proc.returncode is None, svc.output()  # type: ignore[union-attr]
        finally:
            await asyncio.to_thread(native_engine.start)
        try:
            # The stop keeps retrying within its 60 s and commits everything once it can.
            assert svc.proc is not None
            assert await asyncio.wait_for(svc.proc.wait(), 60) == 0, svc.output()
        finally:
            svc.kill()
    await wait_rows(dsn, "raw_trades", 300, within=5)
    assert await db_trades(dsn) == sent_tuples(sim)
    assert "not written 0" in svc.output()


async def test_writer_abort_ends_a_stop_that_waits_for_the_database() -> None:
    settings = WriterSettings(retry_initial_delay=0.1, retry_max_delay=0.5)
    writer = CopyWriter(UNREACHABLE_DSN, TableNames(), settings)
    await writer.start()
    await writer.put(
        [
            TradeRow("okx", "BTC-USDT", str(i), "64000.5", "0.01", "buy", 1786538760218 + i, "")
            for i in range(7)
        ]
    )
    stopping = asyncio.create_task(writer.stop(60.0))
    await asyncio.sleep(1.0)
    assert not stopping.done(), "stop() should still be retrying the unreachable database"
    started = time.monotonic()
    writer.abort()
    await asyncio.wait_for(stopping, 15)
    assert time.monotonic() - started < 10
    assert writer.unwritten == 7
    assert writer.stats()["rows_written"] == {"raw_trades": 0, "market_data": 0, "dead_letters": 0}


async def test_stop_during_reconnect_backoff_returns_at_once() -> None:
    async with simulator(total=50) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink, reconnect_delay=30.0, max_reconnect_delay=30.0)
        assert await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) == 50, what="50 trades")
            await sim.stop()  # the connection drops and every reconnect is refused
            await wait_for(lambda: collector.stats.reconnect_attempts >= 1, what="a reconnect backoff")
        finally:
            started = time.monotonic()
            await collector.stop()
            took = time.monotonic() - started
    # Waiting out the 15-30 s backoff (or a drain timeout) would take far longer.
    assert took < 2.0
    assert not collector.is_running
    assert trade_keys(sink.trades) == [tuple(t) for t in sim.sent_trades]
