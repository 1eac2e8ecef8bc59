"""Run `tcpd run` as a subprocess against the simulator and a real database, and read back."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from ingest.simulator import OkxSimulator, SentTrade
from tests.collector_support import wait_for

TCPD = Path(sys.executable).parent / "tcpd"
TradeTuple = tuple[str, str, Decimal, Decimal, str, int]


def write_configs(
    tmp_path: Path,
    sim: OkxSimulator,
    dsn: str | None,
    symbols: list[str],
    *,
    store_raw_data: bool = False,
    level: str = "INFO",
    connection: dict[str, Any] | None = None,
    channels: dict[str, str] | None = None,
    database_extra: dict[str, Any] | None = None,
) -> list[str]:
    """Write okx.json, database.json and logging.json; return the `tcpd run` arguments."""
    okx = {
        "exchange": "okx",
        "connection": {
            "public_ws_url": sim.url,
            "business_ws_url": sim.business_url,
            "reconnect_delay": 0.05,
            "max_reconnect_delay": 0.5,
            **(connection or {}),
        },
        "data_collection": {"store_raw_data": store_raw_data, "health_check_interval": 1.0},
        "trading_pairs": [
            {"symbol": s, "data_types": ["trade"], "channels": channels or {}} for s in symbols
        ],
    }
    database: dict[str, Any] = {
        "database": {"url": dsn or "postgresql://nobody@127.0.0.1:1/unused"},
        "writer": {
            "batch_max_delay": 0.05,
            "status_interval": 0.5,
            "retry_initial_delay": 0.1,
            "retry_max_delay": 0.5,
        },
        # A free port each: services of one test (active-active) must not share one.
        "http": {"listen": "127.0.0.1:0"},
        **(database_extra or {}),
    }
    logging_config = {
        "level": level,
        "console_output": True,
        "file_output": True,
        "log_directory": str(tmp_path / "logs"),
        "components": {"data_collectors": level, "websocket_clients": level},
    }
    for name, data in (("okx.json", okx), ("database.json", database), ("logging.json", logging_config)):
        (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")
    return [
        "run",
        "--config",
        str(tmp_path / "okx.json"),
        "--database-config",
        str(tmp_path / "database.json"),
        "--logging-config",
        str(tmp_path / "logging.json"),
    ]


class Service:
    """A `tcpd run` child process with its output captured to files in tmp_path."""

    def __init__(self, tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.tmp_path = tmp_path
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        out = (self.tmp_path / "stdout.txt").open("wb")
        err = (self.tmp_path / "stderr.txt").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            str(TCPD), *self.args, stdout=out, stderr=err, env=self.env, cwd=self.tmp_path
        )
        out.close()
        err.close()

    async def terminate(self, within: float = 60.0, sig: int = signal.SIGTERM) -> int:
        """Send `sig` (SIGTERM), then wait for the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
            raise AssertionError(
                f"tcpd run did not exit within {within:.0f}s of signal {sig}; its output:\n{self.output()}"
            ) from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    def output(self) -> str:
        """stdout, stderr and every log file, concatenated."""
        parts = [(self.tmp_path / n).read_text(errors="replace") for n in ("stdout.txt", "stderr.txt")]
        for path in sorted((self.tmp_path / "logs").glob("*")):
            parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)


async def query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one query on a fresh connection (the server may have restarted in between)."""
    async with await psycopg.AsyncConnection.connect(dsn, prepare_threshold=None) as conn:
        cur = await conn.execute(sql.encode())
        return await cur.fetchall()


async def db_trades(dsn: str) -> list[TradeTuple]:
    """raw_trades as comparable tuples, ordered by symbol and time, then trade id."""
    rows = await query(
        dsn,
        "SELECT symbol, trade_id, price, size, side, "
        '(extract(epoch FROM "timestamp") * 1000)::bigint FROM raw_trades '
        "WHERE exchange = 'okx' ORDER BY symbol, \"timestamp\", trade_id::bigint",
    )
    return [(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]


def sent_tuples(sim: OkxSimulator) -> list[TradeTuple]:
    """The simulator's record in the same shape and order as db_trades."""
    return sent_tuples_of(sim.sent_trades)


def sent_tuples_of(sent: Sequence[SentTrade]) -> list[TradeTuple]:
    """Sent trades in the same shape and order as db_trades."""
    rows = [(t.inst_id, t.trade_id, Decimal(t.price), Decimal(t.size), t.side, t.ts_ms) for t in sent]
    return sorted(rows, key=lambda r: (r[0], r[5], int(r[1])))


async def count(dsn: str, table: str) -> int:
    return int((await query(dsn, f"SELECT count(*) FROM {table}"))[0][0])


async def wait_rows(dsn: str, table: str, n: int, within: float = 30.0) -> None:
    """Wait until `table` holds at least n rows (tolerates the database restarting)."""
    deadline = time.monotonic() + within
    seen = -1
    while time.monotonic() < deadline:
        try:
            seen = await count(dsn, table)
        except psycopg.OperationalError:
            seen = -1
        if seen >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{table} has {seen} rows after {within}s, expected {n}")


async def wait_trades(
    dsn: str, done: Callable[[list[TradeTuple]], bool], within: float = 30.0
) -> list[TradeTuple]:
    """Poll raw_trades until `done(rows)`; return those rows."""
    deadline = time.monotonic() + within
    rows: list[TradeTuple] = []
    while time.monotonic() < deadline:
        rows = await db_trades(dsn)
        if done(rows):
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"raw_trades not as expected after {within}s ({len(rows)} rows)")


async def wait_count(dsn: str, sql: str, n: int, within: float = 10.0) -> None:
    """Poll a `SELECT count(*) ...` query until it returns n."""
    deadline = time.monotonic() + within
    seen = None
    while time.monotonic() < deadline:
        seen = (await query(dsn, sql))[0][0]
        if seen == n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{sql!r} returned {seen} after {within}s, expected {n}")


def http_request(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    """One HTTP request to 127.0.0.1:`port` (the service's endpoints, Prometheus): status, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


SERVING = re.compile(r"serving /metrics, /healthz and /readyz on http://127\.0\.0\.1:(\d+)")


async def endpoint_port(svc: Service) -> int:
    """The port of `svc`'s /metrics, /healthz and /readyz, from its start-up line."""
    found: list[int] = []

    def serving() -> bool:
        match = SERVING.search(svc.output())
        if match:
            found.append(int(match.group(1)))
        return bool(match)

    await wait_for(serving, within=30, what="the endpoints' start line")
    return found[0]
