"""Helpers for the storage (COPY writer) tests: row factories, read-back queries, a writer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from ingest.config.database import TableNames, WriterSettings
from ingest.rows import TradeRow
from ingest.storage import CopyWriter

T0_MS = 1_700_000_000_123


def trade(i: int, *, symbol: str = "BTC-USDT", ts_ms: int | None = None) -> TradeRow:
    """A trade whose every field derives from i (so a read-back can be compared exactly)."""
    ts = T0_MS + i if ts_ms is None else ts_ms
    price = f"{60000 + i}.{i:08d}"
    size = f"0.{i + 1:012d}"
    raw = orjson.dumps({"instId": symbol, "tradeId": str(i), "px": price, "sz": size, "ts": str(ts)}).decode()
    return TradeRow("okx", symbol, str(i), price, size, "buy" if i % 2 else "sell", ts, raw)


def settings(**overrides: Any) -> WriterSettings:
    """Writer settings with short delays suitable for tests."""
    base: dict[str, Any] = {
        "batch_max_rows": 1000,
        "batch_max_delay": 0.05,
        "queue_max_rows": 100_000,
        "retry_initial_delay": 0.05,
        "retry_max_delay": 0.5,
    }
    base.update(overrides)
    return WriterSettings(**base)


def make_writer(dsn: str, **overrides: Any) -> CopyWriter:
    """A writer on `dsn` with default table names and test settings."""
    return CopyWriter(dsn, TableNames(), settings(**overrides))


def read_trades(dsn: str) -> list[tuple[Any, ...]]:
    """raw_trades as (exchange, symbol, trade_id, price, size, side, epoch ms, raw_data), sorted."""
    with psycopg.connect(dsn, prepare_threshold=None) as conn:
        rows = conn.execute(
            "SELECT exchange, symbol, trade_id, price, size, side, "
            '(extract(epoch FROM "timestamp") * 1000)::bigint, raw_data FROM raw_trades'
        ).fetchall()
    return sorted(rows, key=_order)


def _order(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (row[0], row[1], row[2], row[6])


def expected_trades(rows: list[TradeRow]) -> list[tuple[Any, ...]]:
    """What read_trades should return after `rows` were written: one row per trade key."""
    unique: dict[tuple[str, str, str, int], tuple[Any, ...]] = {}
    for r in rows:
        unique.setdefault((r.exchange, r.symbol, r.trade_id, r.ts_ms), expected_trade(r))
    return sorted(unique.values(), key=_order)


def expected_trade(row: TradeRow) -> tuple[Any, ...]:
    """What read_trades should return for `row`."""
    raw = orjson.loads(row.raw_json) if row.raw_json else None
    return (
        row.exchange,
        row.symbol,
        row.trade_id,
        Decimal(row.price),
        Decimal(row.size),
        row.side,
        row.ts_ms,
        raw,
    )


def count(dsn: str, table: str) -> int:
    """Rows in `table` (a fixed name from the tests, not user input)."""
    with psycopg.connect(dsn, prepare_threshold=None) as conn:
        got = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert got is not None
        return int(got[0])


async def wait_until(check: Callable[[], bool], limit: float, what: str) -> None:
    """Poll `check` (a quick synchronous check) until true; fail naming `what` on timeout."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit} s waiting for {what}")
        await asyncio.sleep(0.02)
