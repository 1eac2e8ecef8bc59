"""Rows/s of the COPY writer alone against a real server, vs. a server-side COPY of the same rows.

Usage:
    .venv/bin/python benchmarks/writer_throughput.py \
        --dsn postgresql://postgres@127.0.0.1:55432/postgres --rows 300000 --per-put 1 --runs 3

Creates (and drops at the end) the database `writer_bench`, migrates it, then per run:
truncates raw_trades, puts --rows trades through CopyWriter in puts of --per-put rows and
times until all are committed (wall time and this process's CPU time). The baseline is
`COPY raw_trades (...) FROM '<file>'` run by the server on a file holding the same rows,
with one backend: no client, no network, no escaping. The writer uses --concurrency
connections (default 2), so it can pass the baseline on a multi-core server.
The server must be able to read the file (same machine, /tmp). Rows here have no
duplicates: a batch holding a duplicate pays for a second, staged write (see
ingest.storage.statements).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime

import orjson
import psycopg
from psycopg import sql

from ingest.config.database import TableNames, WriterSettings
from ingest.db.connection import connect_sync
from ingest.db.migrations import migrate
from ingest.rows import TradeRow
from ingest.storage import CopyWriter

BENCH_DB = "writer_bench"
T0_MS = 1_700_000_000_000


def make_rows(n: int) -> list[TradeRow]:
    """OKX-shaped trades: realistic field widths and a raw JSON object per trade."""
    rows = []
    for i in range(n):
        px = f"{60000 + i % 1000}.{i % 10}"
        sz = f"0.00{1 + i % 97}"
        side = "buy" if i % 2 else "sell"
        ts = T0_MS + i
        raw = orjson.dumps(
            {
                "instId": "BTC-USDT",
                "tradeId": str(500_000_000 + i),
                "px": px,
                "sz": sz,
                "side": side,
                "ts": str(ts),
                "count": "1",
            }
        ).decode()
        rows.append(TradeRow("okx", "BTC-USDT", str(500_000_000 + i), px, sz, side, ts, raw))
    return rows


async def run_writer(
    dsn: str, rows: list[TradeRow], per_put: int, settings: WriterSettings, concurrency: int
) -> tuple[float, float]:
    writer = CopyWriter(dsn, TableNames(), settings, concurrency=concurrency)
    await writer.start()
    chunks = [rows[i : i + per_put] for i in range(0, len(rows), per_put)]
    cpu0, t0 = time.process_time(), time.perf_counter()
    for chunk in chunks:
        await writer.put(chunk)
    await writer.stop(600)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    written = writer.stats()["rows_written"]["raw_trades"]
    if written != len(rows):
        raise SystemExit(f"writer committed {written} of {len(rows)} rows")
    return wall, cpu


def server_copy(conn: psycopg.Connection[object], rows: list[TradeRow]) -> float:
    fd, path = tempfile.mkstemp(prefix="writer_bench_", suffix=".tsv", dir="/tmp")
    with os.fdopen(fd, "w") as f:
        for r in rows:
            ts = datetime.fromtimestamp(r.ts_ms / 1000, UTC).isoformat(timespec="milliseconds")
            f.write(
                f"{r.exchange}\t{r.symbol}\t{r.trade_id}\t{r.price}\t{r.size}\t{r.side}\t{ts}\t{r.raw_json}\n"
            )
    os.chmod(path, 0o644)
    try:
        conn.execute("TRUNCATE raw_trades")
        t0 = time.perf_counter()
        conn.execute(
            sql.SQL(
                'COPY raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp", '
                "raw_data) FROM {}"
            ).format(sql.Literal(path))
        )
        return time.perf_counter() - t0
    finally:
        os.unlink(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:55432/postgres")
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--per-put", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch-rows", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=2)
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
        rates, cpus, base = [], [], []
        for n in range(args.runs):
            conn.execute("TRUNCATE raw_trades")
            wall, cpu = asyncio.run(run_writer(bench_dsn, rows, args.per_put, settings, args.concurrency))
            rates.append(len(rows) / wall)
            cpus.append(cpu / len(rows) * 1e6)
            base.append(len(rows) / server_copy(conn, rows))
            print(
                f"run {n + 1}: writer {rates[-1]:,.0f} rows/s ({cpus[-1]:.2f} us CPU/row "
                f"in this process), server-side COPY {base[-1]:,.0f} rows/s"
            )
        conn.close()
        w, c, b = statistics.median(rates), statistics.median(cpus), statistics.median(base)
        print(
            f"median of {args.runs}: writer {w:,.0f} rows/s, {c:.2f} us CPU/row; "
            f"server-side COPY {b:,.0f} rows/s; ratio {w / b:.2f}"
        )
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        admin.close()


if __name__ == "__main__":
    main()
