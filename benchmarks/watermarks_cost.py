"""What the watermark bookkeeping (ingest.storage.watermarks) costs the writer, measured in one run.

Usage:
    .venv/bin/python benchmarks/watermarks_cost.py --dsn postgresql://postgres@127.0.0.1:55560/postgres \
        --rows 300000 --per-put 10 --runs 5

The writer of benchmarks/writer_throughput.py, on the same rows, alternating runs with the
bookkeeping on (as shipped) and off (Watermarks.committed, the per-batch part, replaced by a
no-op), so both see the same server and machine load. Prints the median rows/s and CPU per
row of each, and their ratios. The once-a-second flush to ingest_watermarks (with its look at
the rows still pending) runs in both.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

import psycopg
from psycopg import sql
from writer_throughput import BENCH_DB, make_rows, run_writer

from ingest.config.database import WriterSettings
from ingest.db.connection import connect_sync
from ingest.db.migrations import migrate
from ingest.storage.watermarks import Watermarks

SHIPPED = Watermarks.committed


def _skip(self: Watermarks, rows: Any) -> None:
    """The bookkeeping switched off."""


def bookkeeping(on: bool) -> None:
    Watermarks.committed = SHIPPED if on else _skip  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:55432/postgres")
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--per-put", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch-rows", type=int, default=5000)
    args = ap.parse_args()

    admin = connect_sync(args.dsn, autocommit=True)
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(BENCH_DB)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    bench_dsn = psycopg.conninfo.make_conninfo(args.dsn, dbname=BENCH_DB)
    try:
        migrate(bench_dsn)
        rows = make_rows(args.rows)
        settings = WriterSettings(batch_max_rows=args.batch_rows, queue_max_rows=200_000)
        conn = connect_sync(bench_dsn, autocommit=True)
        figures: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
        for n in range(args.runs):
            for on in (n % 2 == 0, n % 2 != 0):  # alternate which goes first
                bookkeeping(on)
                conn.execute("TRUNCATE raw_trades")
                wall, cpu = asyncio.run(run_writer(bench_dsn, rows, args.per_put, settings, 2))
                rates, cpus = figures[on]
                rates.append(len(rows) / wall)
                cpus.append(cpu / len(rows) * 1e6)
                label = "on " if on else "off"
                print(f"run {n + 1} watermarks {label}: {rates[-1]:,.0f} rows/s, {cpus[-1]:.2f} us CPU/row")
        bookkeeping(True)
        conn.close()
        on_rate, on_cpu = (statistics.median(v) for v in figures[True])
        off_rate, off_cpu = (statistics.median(v) for v in figures[False])
        print(
            f"median of {args.runs}: on {on_rate:,.0f} rows/s {on_cpu:.2f} us CPU/row; "
            f"off {off_rate:,.0f} rows/s {off_cpu:.2f} us CPU/row; "
            f"rows/s on/off {on_rate / off_rate:.3f}, CPU/row on/off {on_cpu / off_cpu:.3f}"
        )
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        admin.close()


if __name__ == "__main__":
    main()
