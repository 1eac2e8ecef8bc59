"""Apache edition: candle queries before (0115: views computed from raw_trades at query time)
and after (0117: materialized candle tables) on the same data, in one run.

    .venv/bin/python benchmarks/apache_candles.py --dsn ADMIN_DSN [--days 365] [--steps 60,6]
        [--runs 5] [--json out.json]

For each --steps value S (seconds between two trades of the symbol), one database: migrated to
the newest version, one symbol with a trade every S seconds for --days days ending now,
generated server-side. (10 trades/s per symbol for a year is 315 M rows; the run scales the
rate down and measures two rates, so how each variant grows with the number of trades shows:
the "before" cost grows with it, the "after" cost does not.) The 0115 views are created beside
the 0117 ones in schema before_0117, over the same raw_trades. Timed, median of --runs, the
two variants alternated within each run:
  1d_year      candles_1d of the symbol over the whole history (365 rows)
  1m_day       candles_1m of the symbol over the last day (1,440 rows)
  1m_year      count and sum over candles_1m of the symbol over the whole history
and, after: the first refresh (the whole history), a steady-state refresh (10 s of trades at
10 trades/s just before it), and 1d_year with 1,000 late trades not yet refreshed (those
buckets are computed from raw_trades). Last, the insert cost of the new column and BRIN index:
INSERT ... SELECT of --insert-rows rows into a database at 0115 and one at 0117, alternated.
Prints one JSON line per figure; --json writes them all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ingest.db.connection import connect_sync
from ingest.db.edition import read_server_info
from ingest.db.migrations import migrate
from ingest.paths import sql_dir

SYMBOL = "SYM1"
LOAD_DAY = """
INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp")
SELECT 'okx', %(symbol)s, 'T' || (extract(EPOCH FROM m) * 1000)::BIGINT,
    round((30000 + 1000 * sin(extract(EPOCH FROM m) / 3600.0))::NUMERIC, 2),
    round((0.001 + abs(cos(extract(EPOCH FROM m) / 60.0)))::NUMERIC, 6),
    'buy', m
FROM generate_series(%(lo)s::TIMESTAMPTZ, %(hi)s::TIMESTAMPTZ - INTERVAL '1 ms', %(step)s::INTERVAL) AS m
"""
QUERIES = {
    "1d_year": "SELECT * FROM {schema}.candles_1d WHERE exchange = 'okx' AND symbol = %s",
    "1m_day": (
        "SELECT * FROM {schema}.candles_1m WHERE exchange = 'okx' AND symbol = %s"
        " AND bucket_start >= now() - INTERVAL '1 day'"
    ),
    "1m_year": (
        "SELECT count(*), sum(trade_count), sum(volume) FROM {schema}.candles_1m"
        " WHERE exchange = 'okx' AND symbol = %s"
    ),
}
REFRESH = "SELECT sum(candles_written) FROM tcpd_refresh_apache_candles()"


def emit(out: list[dict[str, Any]], **fields: Any) -> None:
    out.append(fields)
    print(json.dumps(fields, default=str), flush=True)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def with_db(admin: str, name: str) -> str:
    with connect_sync(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(admin, dbname=name)


def drop_db(admin: str, name: str) -> None:
    with connect_sync(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def load(conn: psycopg.Connection[Any], days: int, step_s: float) -> int:
    row = conn.execute("SELECT date_trunc('minute', now())").fetchone()
    assert row is not None
    end = row[0]
    for d in range(days, 0, -1):
        lo = end - timedelta(days=d)
        hi = lo + timedelta(days=1)
        conn.execute(LOAD_DAY, {"symbol": SYMBOL, "lo": lo, "hi": hi, "step": f"{step_s} seconds"})
    conn.execute("ANALYZE raw_trades")
    row = conn.execute("SELECT count(*) FROM raw_trades").fetchone()
    assert row is not None
    return int(row[0])


def create_before_views(conn: psycopg.Connection[Any]) -> None:
    """0115's Apache views in schema before_0117, over the same raw_trades and instruments."""
    conn.execute("CREATE SCHEMA before_0117")
    row = conn.execute("SELECT current_setting('search_path')").fetchone()
    assert row is not None
    conn.execute("SELECT set_config('search_path', 'before_0117, ' || %s, false)", (row[0],))
    conn.execute((sql_dir() / "0115_candles_complete.apache.sql").read_bytes())
    conn.execute("SELECT set_config('search_path', %s, false)", (row[0],))


def run_query(conn: psycopg.Connection[Any], name: str, schema: str) -> list[tuple[Any, ...]]:
    return conn.execute(QUERIES[name].format(schema=schema), (SYMBOL,)).fetchall()


def compare_queries(conn: psycopg.Connection[Any], runs: int, label: str, out: list[dict[str, Any]]) -> None:
    for name in QUERIES:
        with conn.transaction():  # one now() for both: the windows and the closed candles agree
            before_rows = run_query(conn, name, "before_0117")
            after_rows = run_query(conn, name, "public")
        assert sorted(before_rows) == sorted(after_rows), f"{name}: before and after differ"
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(runs):
            times["before"].append(timed(partial(run_query, conn, name, "before_0117")))
            times["after"].append(timed(partial(run_query, conn, name, "public")))
        before = statistics.median(times["before"])
        after = statistics.median(times["after"])
        emit(
            out,
            dataset=label,
            query=name,
            rows=len(after_rows),
            before_ms=round(before * 1000, 2),
            after_ms=round(after * 1000, 2),
            speedup=round(before / after, 1),
        )


def bench_dataset(admin: str, days: int, step_s: float, runs: int, out: list[dict[str, Any]]) -> None:
    name = f"bench_apache_candles_{str(step_s).replace('.', '_')}_{os.getpid()}"
    dsn = with_db(admin, name)
    try:
        migrate(dsn)
        with connect_sync(dsn, autocommit=True) as conn:
            if read_server_info(conn).has_tsl:
                raise SystemExit("needs an Apache-edition server (the TSL edition has continuous aggregates)")
            started = time.perf_counter()
            rows = load(conn, days, step_s)
            label = f"{days} days, 1 trade / {step_s} s ({rows} rows)"
            emit(out, dataset=label, loaded_rows=rows, load_s=round(time.perf_counter() - started, 1))
            emit(out, dataset=label, first_refresh_s=round(timed(lambda: conn.execute(REFRESH)), 2))
            conn.execute("VACUUM ANALYZE")  # summarizes the BRIN ranges, as autovacuum would
            create_before_views(conn)
            compare_queries(conn, runs, label, out)
            steady = []
            for n in range(runs):  # 10 s at 10 trades/s, ending now, then one refresh
                conn.execute(
                    LOAD_DAY.replace("'T' ||", f"'S{n}-' ||"),
                    {"symbol": SYMBOL, "lo": _ago(conn, 10), "hi": _ago(conn, 0), "step": "0.1 seconds"},
                )
                steady.append(timed(lambda: conn.execute(REFRESH)))
            emit(out, dataset=label, steady_refresh_ms=round(statistics.median(steady) * 1000, 2))
            conn.execute(
                'INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp")'
                " SELECT 'okx', %s, 'late-' || g, 1, 1, 'buy',"
                " now() - g * INTERVAL '8 hours' - INTERVAL '1 s'"
                " FROM generate_series(1, 1000) AS g",
                (SYMBOL,),
            )
            late = [timed(lambda: run_query(conn, "1d_year", "public")) for _ in range(runs)]
            emit(
                out,
                dataset=label,
                query="1d_year, 1000 late trades not refreshed",
                after_ms=round(statistics.median(late) * 1000, 2),
            )
    finally:
        drop_db(admin, name)


def _ago(conn: psycopg.Connection[Any], seconds: int) -> Any:
    row = conn.execute("SELECT now() - make_interval(secs => %s)", (seconds,)).fetchone()
    assert row is not None
    return row[0]


def bench_insert(admin: str, rows: int, runs: int, out: list[dict[str, Any]]) -> None:
    """INSERT ... SELECT into raw_trades at 0115 vs at 0117 (the inserted_xid default and BRIN)."""
    with tempfile.TemporaryDirectory() as tmp:
        old_sql = Path(tmp) / "sql"
        old_sql.mkdir()
        for file in sql_dir().glob("*.sql"):
            if int(file.name[:4]) < 117:
                shutil.copy(file, old_sql / file.name)
        names = {
            "0115": f"bench_apache_insert_0115_{os.getpid()}",
            "0117": f"bench_apache_insert_0117_{os.getpid()}",
        }
        dsns = {v: with_db(admin, n) for v, n in names.items()}
        try:
            migrate(dsns["0115"], sql_dir=old_sql)
            migrate(dsns["0117"])
            times: dict[str, list[float]] = {"0115": [], "0117": []}
            conns = {v: connect_sync(d, autocommit=True) for v, d in dsns.items()}
            try:
                for n in range(runs + 1):
                    for v, conn in conns.items():
                        row = conn.execute("SELECT now() - INTERVAL '1 day'").fetchone()
                        assert row is not None
                        step = 86400.0 / rows
                        params = {
                            "symbol": f"I{n}",
                            "lo": row[0],
                            "hi": row[0] + timedelta(days=1),
                            "step": f"{step} seconds",
                        }
                        elapsed = timed(partial(conn.execute, LOAD_DAY, params))
                        if n:  # the first round warms up
                            times[v].append(elapsed)
            finally:
                for conn in conns.values():
                    conn.close()
            old, new = statistics.median(times["0115"]), statistics.median(times["0117"])
            emit(
                out,
                insert_rows=rows,
                at_0115_ms=round(old * 1000, 1),
                at_0117_ms=round(new * 1000, 1),
                ratio=round(new / old, 3),
                us_per_row_added=round((new - old) / rows * 1e6, 3),
            )
        finally:
            for db in names.values():
                drop_db(admin, db)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", default=os.environ.get("TCPD_BENCH_DSN"), help="admin DSN (Apache edition)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--steps", default="60,6", help="seconds between two trades, one dataset each")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--insert-rows", type=int, default=200_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("--dsn (or TCPD_BENCH_DSN) is required")
    out: list[dict[str, Any]] = []
    for step in args.steps.split(","):
        bench_dataset(args.dsn, args.days, float(step), args.runs, out)
    bench_insert(args.dsn, args.insert_rows, args.runs, out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
