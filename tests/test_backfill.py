"""`tcpd backfill` as users run it (a subprocess) against the simulator's REST history (live
tape, OKX pagination and rate limit) and a native database: exactly the trades of the range,
once; a second run after an interruption goes on where the first stopped; history that ends
above --since is recorded as a gap (exit 1); bad arguments exit 2."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app
from ingest.history.gapfill import REASON_HORIZON
from ingest.simulator import OkxSimulator
from tests.collector_support import simulator, wait_for
from tests.service_support import db_trades, query, sent_tuples_of, write_configs

TCPD = Path(sys.executable).parent / "tcpd"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


async def backfill(tmp_path: Path, sim: OkxSimulator, dsn: str, *args: str) -> asyncio.subprocess.Process:
    run_args = write_configs(tmp_path, sim, dsn, ["BTC-USDT"], channels={"trades": "trades-all"})
    okx, database = run_args[2], run_args[4]
    return await asyncio.create_subprocess_exec(
        str(TCPD),
        "backfill",
        "--config",
        okx,
        "--database-config",
        database,
        "--symbol",
        "BTC-USDT",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def finished(proc: asyncio.subprocess.Process, within: float = 120) -> tuple[int, Any, str]:
    out, err = await asyncio.wait_for(proc.communicate(), within)
    assert proc.returncode is not None
    text = out.decode()
    return proc.returncode, json.loads(text) if text.strip().startswith("{") else text, err.decode()


def expected_between(sim: OkxSimulator, since_ms: int, until_ms: int) -> list[Any]:
    return sent_tuples_of([t for t in sim.published_trades("BTC-USDT") if since_ms <= t.ts_ms < until_ms])


async def recorded_progress(dsn: str, since_ms: int, until_ms: int, share: float, within: float) -> None:
    """Wait until the backfill's ingest_gaps row starts `share` of the range below `until`."""
    deadline = time.monotonic() + within
    mark_ms = until_ms - share * (until_ms - since_ms)
    while True:
        rows = await query(dsn, "SELECT (extract(epoch FROM to_ts) * 1000)::bigint FROM ingest_gaps")
        if rows and rows[0][0] is not None and rows[0][0] <= mark_ms:
            return
        assert time.monotonic() < deadline, f"no progress record past {share:.0%} of the range: {rows}"
        await asyncio.sleep(0.2)


async def test_backfill_loads_exactly_the_range_and_a_second_run_resumes(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    dsn = migrated_db_dsn
    async with simulator(total=None, rate=2000.0, live=True, trades_channel="trades-all") as sim:
        await wait_for(lambda: len(sim.published_trades("BTC-USDT")) >= 24_000, within=30, what="history")
        tape = sim.published_trades("BTC-USDT")
        since_ms, until_ms = tape[1000].ts_ms, tape[21_000].ts_ms
        args = ("--since", iso(since_ms), "--until", iso(until_ms), "--json")
        first = await backfill(tmp_path, sim, dsn, *args)
        # Stopped once a progress record (every 5 s) covers a fifth of the range or more: a
        # fixed sleep stopped it before any useful record on a loaded machine.
        await recorded_progress(dsn, since_ms, until_ms, share=0.2, within=90)
        first.send_signal(signal.SIGINT)
        code, _out, err = await finished(first)
        assert code != 0, err
        partial = len(await db_trades(dsn))
        assert 0 < partial < 20_000
        requests_before = len(sim.history.requests)
        second = await backfill(tmp_path, sim, dsn, *args)
        code, result, err = await finished(second)
        assert code == 0, err
        assert result["complete"] is True
        assert result["resumed_from"] is not None
        assert len(sim.history.requests) - requests_before < 200 * 0.9  # not all over again
        assert await db_trades(dsn) == expected_between(sim, since_ms, until_ms)  # each once
        rows = await query(dsn, "SELECT filled_at IS NOT NULL, from_ts FROM ingest_gaps")
        assert len(rows) == 1
        assert rows[0][0] is True
        assert result["candles_refreshed"], "candles over the range refreshed"
        again = await backfill(tmp_path, sim, dsn, *args)  # idempotent: nothing added
        code, result, err = await finished(again)
        assert code == 0, err
        assert await db_trades(dsn) == expected_between(sim, since_ms, until_ms)
        # Back-to-back processes each pace themselves from zero: the exchange may answer 429 at
        # the switch, which get_json waits out (the runs above completed all the same).


async def test_history_ending_above_since_is_recorded_and_exits_1(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    dsn = migrated_db_dsn
    async with simulator(
        total=None, rate=500.0, live=True, trades_channel="trades-all", history_trades=2500
    ) as sim:
        # Past the horizon (it keeps the newest 2,500): the oldest trades are gone from REST.
        await wait_for(lambda: len(sim.published_trades("BTC-USDT")) >= 4000, within=30, what="a horizon")
        since_ms = sim.published_trades("BTC-USDT")[0].ts_ms - 3_600_000  # older than it keeps
        proc = await backfill(tmp_path, sim, dsn, "--since", iso(since_ms), "--json")
        code, result, err = await finished(proc)
        assert code == 1, err
        assert result["complete"] is False
        assert result["open_gap"]["reason"].startswith(REASON_HORIZON)
        stored = await db_trades(dsn)
        ids = sorted(int(t[1]) for t in stored)
        # Everything the history still had when the walk got there: from its end up, no hole.
        # (the horizon moves up at 500 trades/s while the walk goes down at OKX's pace)
        assert len(stored) >= 500
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        gaps = await query(dsn, "SELECT from_ts, to_ts, filled_at FROM ingest_gaps")
        assert len(gaps) == 1
        from_ts, to_ts, filled_at = gaps[0]
        assert filled_at is None
        assert int(from_ts.timestamp() * 1000) == since_ms
        assert int(to_ts.timestamp() * 1000) == min(t[5] for t in stored)
        listed = CliRunner().invoke(app, ["gaps", "--database-url", dsn, "--json"])
        assert listed.exit_code == 0, listed.output
        assert [g["reason"] for g in json.loads(listed.output)] == [result["open_gap"]["reason"]]


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    okx = tmp_path / "okx.json"
    okx.write_text(
        json.dumps(
            {
                "exchange": "okx",
                "connection": {"public_ws_url": "ws://127.0.0.1:1/ws/v5/public"},
                "trading_pairs": [{"symbol": "BTC-USDT", "data_types": ["trade"]}],
            }
        )
    )
    base = ["backfill", "--config", str(okx), "--database-url", "postgresql://nobody@127.0.0.1:1/x"]
    cases = {
        ("--symbol", "BTC-USDT", "--since", "yesterday"): "is not an ISO 8601 time",
        ("--symbol", "BTC-USDT", "--since", "2026-11-01T00:00"): "has no time zone",
        (
            "--symbol",
            "BTC-USDT",
            "--since",
            "2026-11-02T00:00Z",
            "--until",
            "2026-11-01T00:00Z",
        ): "must be before",
        ("--symbol", "DOGE-USDT", "--since", "2026-11-01T00:00Z"): "is not in trading_pairs",
    }
    for args, message in cases.items():
        result = CliRunner().invoke(app, [*base, *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
