"""Gap filling and backfill against the simulator (docs/gaps.md, results in docs/performance.md).

1. reconnect -> "gap filled": a collector with gap filling reads a live simulator; its
   connection is refused for --outage seconds `--reps` times; each time the seconds from the
   reconnect (the outage's end) to the GapFiller reporting the gap filled (stored and confirmed).
2. backfill: `tcpd backfill --json` (a separate process) over --backfill-trades of history;
   trades/s stored, requests/s, and the CPU seconds of that process per 1,000 trades.

Both run at OKX's documented REST limits (the client paces itself to 80 % of them), so the
rates are what a user gets from OKX, not what the machine could do. Medians of one run.

    .venv/bin/python benchmarks/gap_fill.py --dsn postgresql://postgres@127.0.0.1:55450/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest_db import fresh_database

from ingest.collector import ExchangeFactory
from ingest.collector.continuity import TradeContinuity
from ingest.collector.link_pool import pool_for_loop
from ingest.collector.websocket_collector import WebSocketCollector
from ingest.config import TableNames, WriterSettings
from ingest.exchanges.okx.history import OkxTradeHistory
from ingest.history.gapfill import GapFiller
from ingest.model import DataType, ExchangeCollectorConfig
from ingest.simulator import OkxSimulator, SimulatorSettings
from ingest.storage import CopyWriter

TCPD = Path(sys.executable).parent / "tcpd"


async def poll(done: Callable[[], bool]) -> None:
    while not done():  # noqa: ASYNC110 - the simulator and the filler offer counters, not events
        await asyncio.sleep(0.01)


async def reconnect_to_filled(dsn: str, rate: float, outage: float, reps: int) -> dict[str, Any]:
    settings = SimulatorSettings(
        total=None, rate=rate, live=True, trades_channel="trades-all", idle_timeout=3600
    )
    async with OkxSimulator(settings) as sim:
        writer = CopyWriter(dsn, TableNames(), WriterSettings())
        await writer.start()
        filler = GapFiller(
            "okx",
            OkxTradeHistory(),
            conninfo=dsn,
            sink=writer,
            base_url=sim.rest_url,
            store_raw_data=False,
            timeout=5.0,
            give_up_after=120.0,
            retry_interval=3600.0,
        )
        await filler.start()
        config = ExchangeCollectorConfig(
            exchange="okx",
            symbol="BTC-USDT",
            data_types=[DataType.TRADE],
            custom_params={
                "urls": sim.urls,
                "channels": {"trades": "trades-all"},
                "reconnect_delay": 0.05,
                "max_reconnect_delay": 0.2,
            },
        )
        continuity = TradeContinuity(filler, writer, "okx", "BTC-USDT")
        collector = ExchangeFactory.create_collector(config, writer, continuity)
        assert isinstance(collector, WebSocketCollector)
        pool = pool_for_loop()
        connect = pool.dial
        refuse_until = [0.0]

        async def refusing(url: str, **options: Any) -> Any:
            if time.monotonic() < refuse_until[0]:
                raise ConnectionRefusedError("benchmark outage")
            return await connect(url, **options)

        pool.dial = refusing
        await collector.start()
        seconds, trades = [], []
        try:
            await asyncio.sleep(2.0)
            for rep in range(reps):
                refuse_until[0] = time.monotonic() + outage
                await sim.disconnect_all()
                await asyncio.sleep(outage)
                back = time.monotonic()
                before = filler.stats.trades_filled
                await poll(lambda: filler.stats.gaps_filled >= rep + 1)  # noqa: B023 - awaited here
                seconds.append(time.monotonic() - back)
                trades.append(filler.stats.trades_filled - before)
                await asyncio.sleep(1.0)
        finally:
            await collector.stop()
            await filler.stop()
            await writer.stop(30)
    return {
        "outage_s": outage,
        "rate": rate,
        "reps": reps,
        "median_reconnect_to_filled_s": statistics.median(seconds),
        "max_reconnect_to_filled_s": max(seconds),
        "median_trades_per_gap": statistics.median(trades),
        "rest_requests": filler.stats.rest_requests,
    }


async def backfill(dsn: str, history: int) -> dict[str, Any]:
    # The stream goes on while the backfill walks (slower, at OKX's REST limits): the history
    # keeps everything, so the walk never falls off its far end.
    settings = SimulatorSettings(
        total=None, rate=2000.0, live=True, trades_channel="trades-all", history_trades=10**9
    )
    async with OkxSimulator(settings) as sim:
        await poll(lambda: len(sim.published_trades("BTC-USDT")) >= history)
        tape = sim.published_trades("BTC-USDT")
        since = datetime.fromtimestamp(tape[0].ts_ms / 1000, UTC)
        until = datetime.fromtimestamp(tape[history - 1].ts_ms / 1000 + 0.001, UTC)
        with tempfile.TemporaryDirectory() as tmp:
            okx = Path(tmp) / "okx.json"
            okx.write_text(
                json.dumps(
                    {
                        "exchange": "okx",
                        "connection": {"public_ws_url": sim.url, "business_ws_url": sim.business_url},
                        "data_collection": {"store_raw_data": False},
                        "trading_pairs": [{"symbol": "BTC-USDT", "data_types": ["trade"]}],
                    }
                )
            )
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                str(TCPD),
                "backfill",
                "--config",
                str(okx),
                "--database-url",
                dsn,
                "--symbol",
                "BTC-USDT",
                "--since",
                since.isoformat(),
                "--until",
                until.isoformat(),
                "--json",
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await proc.communicate()
            wall = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(out)
    if proc.returncode != 0 or not result["complete"]:
        raise SystemExit(f"backfill failed: exit {proc.returncode}, {result}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "trades": result["trades"],
        "wall_s": wall,
        "trades_per_s": result["trades"] / wall,
        "requests_per_s": result["requests"] / wall,
        "cpu_s_per_1000_trades": cpu / result["trades"] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="admin DSN of a native PostgreSQL + TimescaleDB")
    parser.add_argument("--rate", type=float, default=1000.0, help="live trades/s for the reconnect runs")
    parser.add_argument("--outage", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--backfill-trades", type=int, default=30_000)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with fresh_database(args.dsn, "gapfill") as dsn:
        results["reconnect"] = asyncio.run(reconnect_to_filled(dsn, args.rate, args.outage, args.reps))
    with fresh_database(args.dsn, "backfill") as dsn:
        results["backfill"] = asyncio.run(backfill(dsn, args.backfill_trades))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
