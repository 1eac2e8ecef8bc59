"""Query latency of the candle views: the last 1,000 1m candles of one symbol.

    .venv/bin/python benchmarks/candles_query.py --dsn DSN [--days 365] [--symbols 10] [--load]

With --load, fills raw_trades (migrated first) with one trade per minute per symbol for
--days days ending a minute ago (generated server-side), and on the TSL edition materializes
candles_1m_agg like its refresh policy would. Then times, with medians over --runs runs:
  A. ORDER BY ts DESC LIMIT 1000 (no time bound)
  B. the same with a bound on bucket_start covering the last 1,000 intervals
Prints one JSON line per query with the engine, edition and variant that produced it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ingest.db.connection import connect_sync
from ingest.db.edition import read_server_info
from ingest.db.migrations import migrate

QUERIES = {
    "A_order_by_ts_limit_1000": (
        "SELECT ts, open, high, low, close, volume, trade_count, vwap FROM candles_1m"
        " WHERE exchange = 'okx' AND symbol = %s ORDER BY ts DESC LIMIT 1000"
    ),
    "B_bucket_start_bound_limit_1000": (
        "SELECT ts, open, high, low, close, volume, trade_count, vwap FROM candles_1m"
        " WHERE exchange = 'okx' AND symbol = %s"
        " AND bucket_start >= now() - INTERVAL '1005 minutes' ORDER BY ts DESC LIMIT 1000"
    ),
    # The bound as a value computed by the client: the planner can exclude chunks while
    # planning instead of planning every chunk and excluding them at run time.
    "C_bucket_start_param_limit_1000": (
        "SELECT ts, open, high, low, close, volume, trade_count, vwap FROM candles_1m"
        " WHERE exchange = 'okx' AND symbol = %s"
        " AND bucket_start >= %s::TIMESTAMPTZ ORDER BY ts DESC LIMIT 1000"
    ),
}

# One trade per minute per symbol: price a deterministic wave with exact decimals.
LOAD_DAY = """
INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp")
SELECT 'okx', 'SYM' || s, 'T' || s || '-' || extract(EPOCH FROM m)::BIGINT,
    round((30000 + 1000 * sin(extract(EPOCH FROM m) / 3600.0 + s))::NUMERIC, 2),
    round((0.001 + abs(cos(extract(EPOCH FROM m) / 60.0 + s)))::NUMERIC, 6),
    CASE WHEN s %% 2 = 0 THEN 'buy' ELSE 'sell' END,
    m + make_interval(secs => s)
FROM generate_series(%s::TIMESTAMPTZ, %s::TIMESTAMPTZ - INTERVAL '1 minute', INTERVAL '1 minute') AS m,
    generate_series(1, %s) AS s
"""


def load(conn: psycopg.Connection[Any], days: int, symbols: int, tsl: bool) -> None:
    row = conn.execute("SELECT date_trunc('minute', now()) - INTERVAL '1 minute'").fetchone()
    assert row is not None
    end = row[0]
    start = end - timedelta(days=days)
    started = time.perf_counter()
    day = start
    while day < end:
        upper = min(day + timedelta(days=1), end)
        conn.execute(LOAD_DAY, (day, upper, symbols))
        day = upper
    print(
        json.dumps({"loaded_rows": days * 1440 * symbols, "seconds": round(time.perf_counter() - started, 1)})
    )
    if tsl:
        started = time.perf_counter()
        day = start
        while day < end:  # a month at a time keeps each refresh transaction small
            upper = min(day + timedelta(days=30), end)
            conn.execute("CALL refresh_continuous_aggregate('candles_1m_agg', %s, %s)", (day, upper))
            day = upper
        print(json.dumps({"refreshed_1m_seconds": round(time.perf_counter() - started, 1)}))
    conn.execute("ANALYZE raw_trades")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--load", action="store_true")
    parser.add_argument("--engine", default="", help="label for the report, e.g. native-tsl or native-apache")
    parser.add_argument("--no-jit", action="store_true", help="SET jit = off for the session")
    args = parser.parse_args()
    if args.load:
        migrate(args.dsn)
    with connect_sync(args.dsn, autocommit=True) as conn:
        info = read_server_info(conn)
        if args.no_jit:
            conn.execute("SET jit = off")
        if args.load:
            load(conn, args.days, args.symbols, info.has_tsl)
        for name, query in QUERIES.items():
            times = []
            rows = 0
            for n in range(args.runs + 3):
                params: tuple[Any, ...] = (f"SYM{1 + n % args.symbols}",)
                if "%s::TIMESTAMPTZ" in query:
                    params += (datetime.now(UTC) - timedelta(minutes=1005),)
                started = time.perf_counter()
                rows = len(conn.execute(query, params).fetchall())
                if n >= 3:  # warm-up runs are not counted
                    times.append((time.perf_counter() - started) * 1000)
            print(
                json.dumps(
                    {
                        "engine": args.engine,
                        "jit": not args.no_jit,
                        "edition": info.edition,
                        "server": info.server_version,
                        "timescaledb": info.timescaledb_version,
                        "query": name,
                        "rows": rows,
                        "runs": args.runs,
                        "median_ms": round(statistics.median(times), 2),
                        "min_ms": round(min(times), 2),
                        "max_ms": round(max(times), 2),
                    }
                )
            )


if __name__ == "__main__":
    main()
