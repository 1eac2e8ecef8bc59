"""`kill -9` of `tcpd run` mid-stream at 5,000 trades/s, then a new start: everything the exchange
still has is stored, exactly once (docs/gaps.md). Real subprocess, real simulator publishing
live on 127.0.0.1 (it trades on while the service is dead), its REST history, native database,
a disk spool (the restart replays it before looking for the last stored trade).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from ingest.history.gapfill import REASON_RESTART
from tests.collector_support import simulator
from tests.service_support import Service, db_trades, query, sent_tuples_of, write_configs

RATE = 5000.0


async def wait_sql(dsn: str, sql: str, within: float, what: str, svc: Service) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (await query(dsn, sql))[0][0]:
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}; output:\n{svc.output()}")
        await asyncio.sleep(0.2)


async def test_kill_9_mid_stream_then_restart_stores_everything_once(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    dsn = migrated_db_dsn
    async with simulator(
        total=None,
        rate=RATE,
        live=True,
        trades_channel="trades-all",
        trades_per_message=10,
        chunk_trades=100,
        idle_timeout=3600.0,
    ) as sim:
        args = write_configs(
            tmp_path,
            sim,
            dsn,
            ["BTC-USDT"],
            channels={"trades": "trades-all"},
            database_extra={"spool": {"directory": str(tmp_path / "spool")}},
        )
        first = Service(tmp_path, args)
        await first.start()
        try:
            await wait_sql(
                dsn, "SELECT count(*) >= 20000 FROM raw_trades", 60, "the first run's trades", first
            )
        finally:
            first.kill()  # SIGKILL: no flush, no status, the memory queue is gone
        assert first.proc is not None
        assert await first.proc.wait() == -signal.SIGKILL
        killed_at = len(sim.published_trades("BTC-USDT"))
        await asyncio.sleep(2.0)  # dead for a while; the exchange trades on
        again = Service(tmp_path, args)
        await again.start()
        try:
            await wait_sql(
                dsn,
                "SELECT count(*) > 0 FROM ingest_gaps WHERE filled_at IS NOT NULL",
                120,
                "the restart gap filled",
                again,
            )
            resumed = len(sim.published_trades("BTC-USDT"))
            await wait_sql(
                dsn,
                f"SELECT max(trade_id::bigint) > {resumed + 5000} FROM raw_trades",
                60,
                "live again",
                again,
            )
            assert await again.terminate() == 0, again.output()
        finally:
            again.kill()
    rows = await query(dsn, "SELECT min(trade_id::bigint), max(trade_id::bigint) FROM raw_trades")
    lo, hi = int(rows[0][0]), int(rows[0][1])
    assert hi > killed_at + RATE * 2
    published = {int(t.trade_id): t for t in sim.published_trades("BTC-USDT")}
    expected = sent_tuples_of([published[i] for i in range(lo, hi + 1)])
    stored = await db_trades(dsn)
    assert len(stored) == len(expected), f"{len(expected) - len(stored)} trades missing"
    assert stored == expected  # every trade once, value for value
    gaps = await query(dsn, "SELECT reason, filled_at IS NOT NULL, rows_filled FROM ingest_gaps")
    assert [(g[0], g[1]) for g in gaps] == [(REASON_RESTART, True)], gaps
    assert gaps[0][2] >= RATE * 2  # at least the time it was dead came from REST
