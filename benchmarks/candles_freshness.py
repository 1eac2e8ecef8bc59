"""Freshness: how long after a 1m interval closes is its candle queryable in candles_1m?

    .venv/bin/python benchmarks/candles_freshness.py --dsn DSN [--samples 3] [--engine LABEL]

For each sample: store a trade every 100 ms (stamped with the server's clock) until a minute
boundary B, then poll candles_1m every 10 ms for the candle stamped B, and record the server
time of the first query that returns it minus B. Ingest lag is not included (trades are
inserted directly); the candle must also count every trade of its minute. No refresh runs:
on the TSL edition this measures real-time aggregation, on Apache the query-time views.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg

from ingest.db.connection import connect_sync
from ingest.db.edition import read_server_info
from ingest.db.migrations import migrate

INSERT = """
INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp")
VALUES ('bench', %s, %s, 100.5, 0.25, 'buy', clock_timestamp())
RETURNING "timestamp"
"""
POLL = "SELECT trade_count, now() FROM candles_1m WHERE exchange = 'bench' AND symbol = %s AND ts = %s"


def server_clock(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def sample(conn: psycopg.Connection[Any]) -> float:
    symbol = f"F-{uuid.uuid4().hex[:8]}"
    now = server_clock(conn)
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if boundary - now < timedelta(seconds=2):  # too close: take the next minute
        boundary += timedelta(minutes=1)
    inserted = 0
    n = 0
    while True:
        row = conn.execute(INSERT, (symbol, f"f{n}")).fetchone()
        assert row is not None
        n += 1
        if row[0] >= boundary:  # belongs to the next interval: not counted
            break
        if row[0] >= boundary - timedelta(minutes=1):
            inserted += 1
        time.sleep(0.1)
    while True:
        found = conn.execute(POLL, (symbol, boundary)).fetchone()
        if found is not None:
            assert found[0] == inserted, (found[0], inserted)
            seen: datetime = found[1]
            return (seen - boundary).total_seconds()
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--engine", default="")
    args = parser.parse_args()
    migrate(args.dsn)
    with connect_sync(args.dsn, autocommit=True) as conn:
        info = read_server_info(conn)
        lags = [sample(conn) for _ in range(args.samples)]
    print(
        json.dumps(
            {
                "engine": args.engine,
                "edition": info.edition,
                "samples": len(lags),
                "median_s": round(statistics.median(lags), 3),
                "max_s": round(max(lags), 3),
                "all_s": [round(x, 3) for x in lags],
            }
        )
    )


if __name__ == "__main__":
    main()
