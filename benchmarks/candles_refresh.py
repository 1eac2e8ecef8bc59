"""Refresh cost of the candle continuous aggregates (TSL edition): a day of trades at 10 trades/s.

    .venv/bin/python benchmarks/candles_refresh.py --dsn ADMIN_DSN [--reps 3] [--hours 24]

--dsn is an admin DSN of the server: every repetition runs in a fresh migrated database
(bench_candles_refresh_<pid>, dropped afterwards). Each loads --hours of one pair at 10
trades/s ending a minute ago (the trades of candles_storage.py, raw_data included), then:

  first:  runs every timeframe's refresh policy job once with CALL run_job, finest first (each
          coarser aggregate reads the one below): the 1m job's window is the last day, so this
          materializes the whole day, as after a backfill or a long stop of the jobs;
  steady: adds the next minute of trades (600), waits until that minute is inside the 1m
          window (closed, and one minute old: end_offset), and runs the jobs again: what a
          scheduled run costs in steady state (one new minute to materialize).

Times are per job and in total, client-side around CALL run_job. After the first pass the
1m materialization must hold every loaded minute but the (up to three) at the window's edges
(checked). Prints one JSON line per
repetition and one with the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
from candles_storage import TRADES_PER_SECOND, load_trades
from ingest_db import fresh_database
from psycopg import sql

from ingest.db.connection import connect_sync
from ingest.db.edition import read_server_info

JOBS = """
SELECT p.job_id, p.timeframe, c.materialization_hypertable_schema, c.materialization_hypertable_name
FROM tcpd_candle_policies AS p
JOIN candle_timeframes AS t ON t.timeframe = p.timeframe
JOIN timescaledb_information.continuous_aggregates AS c ON c.view_name = t.aggregate_name
WHERE p.kind = 'refresh'
ORDER BY t.sort_order
"""


Job = tuple[int, str, str, str]  # job id, timeframe, materialization hypertable schema and name


def run_jobs(conn: psycopg.Connection[Any], jobs: list[Job]) -> dict[str, float]:
    """CALL run_job for each job in order; seconds per timeframe."""
    seconds = {}
    for job_id, timeframe, _, _ in jobs:
        began = time.perf_counter()
        conn.execute("CALL run_job(%s)", (job_id,))
        seconds[timeframe] = round(time.perf_counter() - began, 3)
    return seconds


def materialized_rows(conn: psycopg.Connection[Any], jobs: list[Job]) -> dict[str, int]:
    """Rows in each timeframe's materialization hypertable (not the real-time union)."""
    rows = {}
    for _, timeframe, schema, table in jobs:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        row = conn.execute(query).fetchone()
        assert row is not None
        rows[timeframe] = int(row[0])
    return rows


def wait_for_server_clock(conn: psycopg.Connection[Any], moment: datetime) -> None:
    """Sleep until the server's clock has passed moment."""
    while True:
        row = conn.execute("SELECT %s::TIMESTAMPTZ - clock_timestamp()", (moment,)).fetchone()
        assert row is not None
        left: timedelta = row[0]
        if left <= timedelta(0):
            return
        time.sleep(min(left.total_seconds(), 5.0))


def measure(dsn: str, hours: float) -> dict[str, Any]:
    """One repetition on a fresh migrated database."""
    count = int(hours * 3600 * TRADES_PER_SECOND)
    with connect_sync(dsn, autocommit=True) as conn:
        info = read_server_info(conn)
        if not info.has_tsl:
            raise SystemExit("candles_refresh.py needs the TSL edition (continuous aggregates)")
        row = conn.execute("SELECT date_trunc('minute', now())").fetchone()
        assert row is not None
        minute: datetime = row[0]  # the day ends a minute before it; the steady minute follows
        start = minute - timedelta(minutes=1) - timedelta(hours=hours)
        loaded = load_trades(conn, start, 0, count, raw=True)
        conn.execute("ANALYZE raw_trades")
        jobs = [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in conn.execute(JOBS).fetchall()]
        assert [j[1] for j in jobs][:1] == ["1m"], jobs
        first = run_jobs(conn, jobs)
        rows = materialized_rows(conn, jobs)
        # the 1m window is [now - 1 day, now - 1 minute), rounded inwards to whole minutes, and
        # the clock moves on while loading: all loaded minutes but up to three at the edges
        expected = min(int(hours * 60), 24 * 60) - 3
        assert rows["1m"] >= expected, (rows, expected)
        load_trades(conn, start, count, 60 * TRADES_PER_SECOND, raw=True)
        wait_for_server_clock(conn, minute + timedelta(minutes=1, seconds=1))
        steady = run_jobs(conn, jobs)
        grown = materialized_rows(conn, jobs)
        assert grown["1m"] == rows["1m"] + 1, (rows, grown)
    return {
        "server": info.server_version,
        "timescaledb": info.timescaledb_version,
        "trades": count,
        "load_s": round(loaded, 1),
        "first_total_s": round(sum(first.values()), 3),
        "first_s": first,
        "steady_total_s": round(sum(steady.values()), 3),
        "steady_s": steady,
        "materialized_rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True, help="admin DSN of the server")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    runs = []
    for _ in range(args.reps):
        with fresh_database(args.dsn, "candles_refresh") as dsn:
            runs.append(measure(dsn, args.hours))
        print(json.dumps(runs[-1]))
    medians: dict[str, Any] = {"median_of": len(runs)}
    for key in ("first_total_s", "steady_total_s", "load_s"):
        medians[key] = statistics.median(run[key] for run in runs)
    for key in ("first_s", "steady_s"):
        medians[key] = {tf: statistics.median(run[key][tf] for run in runs) for tf in runs[0][key]}
    print(json.dumps(medians))


if __name__ == "__main__":
    main()
