"""Bytes per trade in raw_trades before and after compression (needs the TSL edition).

    .venv/bin/python benchmarks/candles_storage.py --dsn ADMIN_DSN [--reps 3] [--hours 24] [--no-raw-data]

--dsn is an admin DSN of the server: every repetition runs in a fresh migrated database
(bench_candles_storage_<pid>, dropped afterwards). Each loads --hours of one pair at 10 trades/s
(server-side, shaped like OKX trades: numeric trade ids, prices with one decimal, sizes with up
to 8, and by default the exchange's trade object in raw_data, as the collector stores it with
store_raw_data=true), measures hypertable_detailed_size, compresses every chunk, measures again,
and projects GB per month per pair at 10 trades/s. Prints one JSON line per repetition and one
with the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from ingest_db import fresh_database

from ingest.db.connection import connect_sync
from ingest.db.edition import read_server_info

TRADES_PER_SECOND = 10
SECONDS_PER_MONTH = 30.44 * 86400
LOAD_STEP = 100_000

LOAD = """
INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp", raw_data)
SELECT 'okx', 'BTC-USDT', (500000000 + n)::TEXT, p, sz, sd, t,
    CASE WHEN %(raw)s THEN jsonb_build_object(
        'instId', 'BTC-USDT', 'tradeId', (500000000 + n)::TEXT, 'px', p::TEXT, 'sz', sz::TEXT,
        'side', sd, 'ts', (extract(EPOCH FROM t) * 1000)::BIGINT::TEXT, 'count', '1', 'source', '0',
        'seqId', 9000000000 + n
    ) END
FROM (
    SELECT n,
        round((60000 + 800 * sin(n / 20000.0) + 25 * sin(n / 37.0))::NUMERIC, 1) AS p,
        round((0.00001 + abs(sin(n * 7.3)) ^ 4 * 0.5)::NUMERIC, 8) AS sz,
        CASE WHEN sin(n * 3.1) > 0 THEN 'buy' ELSE 'sell' END AS sd,
        %(start)s::TIMESTAMPTZ + make_interval(secs => n / %(rate)s::FLOAT8 + abs(sin(n)) * 0.05) AS t
    FROM generate_series(%(first)s::BIGINT, %(last)s::BIGINT) AS n
) AS g
"""
SIZE = "SELECT table_bytes, index_bytes, toast_bytes, total_bytes FROM hypertable_detailed_size('raw_trades')"


def load_trades(conn: psycopg.Connection[Any], start: datetime, first: int, count: int, raw: bool) -> float:
    """Insert trades number first .. first+count-1 (10 per second from start); returns seconds."""
    began = time.perf_counter()
    for low in range(first, first + count, LOAD_STEP):
        high = min(low + LOAD_STEP, first + count) - 1
        params = {"raw": raw, "start": start, "rate": TRADES_PER_SECOND, "first": low, "last": high}
        conn.execute(LOAD, params)
    return time.perf_counter() - began


def sizes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    row = conn.execute(SIZE).fetchone()
    assert row is not None
    return dict(zip(("table", "index", "toast", "total"), (int(v or 0) for v in row), strict=True))


def measure(dsn: str, hours: float, raw: bool) -> dict[str, Any]:
    """One repetition on a fresh migrated database."""
    count = int(hours * 3600 * TRADES_PER_SECOND)
    start = datetime(2025, 1, 6, tzinfo=UTC)
    with connect_sync(dsn, autocommit=True) as conn:
        info = read_server_info(conn)
        loaded = load_trades(conn, start, 0, count, raw)
        conn.execute("ANALYZE raw_trades")
        before = sizes(conn)
        began = time.perf_counter()
        conn.execute(
            "SELECT count(compress_chunk(c, if_not_compressed => TRUE)) FROM show_chunks('raw_trades') AS c"
        )
        compressed = time.perf_counter() - began
        after = sizes(conn)
        row = conn.execute('SELECT count(*), max("timestamp") - min("timestamp") FROM raw_trades').fetchone()
        assert row is not None
        assert row[0] == count, row
        span: timedelta = row[1]
    per_month = TRADES_PER_SECOND * SECONDS_PER_MONTH
    return {
        "server": info.server_version,
        "timescaledb": info.timescaledb_version,
        "edition": info.edition,
        "trades": count,
        "span": str(span),
        "raw_data": raw,
        "load_s": round(loaded, 1),
        "compress_s": round(compressed, 1),
        "bytes_per_trade_before": round(before["total"] / count, 1),
        "bytes_per_trade_after": round(after["total"] / count, 1),
        "ratio": round(before["total"] / after["total"], 1),
        "gb_per_month_per_pair_before": round(before["total"] / count * per_month / 1e9, 2),
        "gb_per_month_per_pair_after": round(after["total"] / count * per_month / 1e9, 2),
        "before": before,
        "after": after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True, help="admin DSN of the server")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--no-raw-data", action="store_true")
    args = parser.parse_args()
    runs = []
    for _ in range(args.reps):
        with fresh_database(args.dsn, "candles_storage") as dsn:
            runs.append(measure(dsn, args.hours, not args.no_raw_data))
        print(json.dumps(runs[-1]))
    keys = ("bytes_per_trade_before", "bytes_per_trade_after", "ratio", "load_s", "compress_s")
    medians = {key: statistics.median(run[key] for run in runs) for key in keys}
    print(json.dumps({"median_of": len(runs), "raw_data": not args.no_raw_data, **medians}))


if __name__ == "__main__":
    main()
