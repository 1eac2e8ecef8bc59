"""Full-depth books (issue 13): bytes per update and per hour per symbol, and rebuild time.

Makes one hour (by default) of OKX `books` traffic for one symbol with the simulator's
DepthBook (400 levels a side, an update every 100 ms of exchange time, 1-6 levels changed
per update), runs it through the OkxAdapter (the seqId chain, the kept book and its
periodic snapshots, as the collector does) and COPYs the rows it makes into market_data
of a migrated database. Then prints, per action (snapshot from the venue, periodic
snapshot, update), rows and average pg_column_size(data) (the stored jsonb, after TOAST
compression when the value is big), the table's growth (hypertable_size: heap, indexes,
TOAST), and the time to rebuild the book (ingest.books.rebuild) at random times.

    .venv/bin/python benchmarks/books_storage.py --dsn "$DSN" [--hours 1] [--interval 60]

DSN: a migrated database (`tcpd db migrate`); the script deletes its own symbol's rows first.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from ingest.books.rebuild import rebuild_book
from ingest.exchanges.okx.adapter import OkxAdapter
from ingest.rows import MarketRow
from ingest.simulator.depth import DepthBook

SYMBOL = "BENCH-BOOKS"
T0_MS = 1_796_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def make_rows(hours: float, interval: float) -> list[MarketRow]:
    sim = DepthBook(SYMBOL)
    adapter = OkxAdapter()
    adapter.set_book_snapshot_interval(interval)
    frames = [sim.snapshot(T0_MS)]
    steps = int(hours * 3600 * 10)
    frames += [sim.update(T0_MS + 100 * (i + 1)) for i in range(steps)]
    batch = adapter.parse_batch(frames, True)
    if batch.rejected or batch.controls:
        raise SystemExit(f"the generated pushes did not chain: {batch.rejected[:1]} {batch.controls[:1]}")
    return [r for r in batch.rows if isinstance(r, MarketRow)]


def size(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT hypertable_size('market_data')").fetchone()[0])  # type: ignore[index]


def rebuilds(conn: psycopg.Connection, args: argparse.Namespace, label: str) -> None:
    rng = random.Random(1)
    end_ms = T0_MS + int(args.hours * 3600 * 1000)
    times = []
    applied = []
    for _ in range(args.rebuilds):
        t = rng.randrange(T0_MS + 1000, end_ms)
        began = time.perf_counter()
        rebuilt = rebuild_book(conn, "okx", SYMBOL, EPOCH + timedelta(milliseconds=t))
        times.append((time.perf_counter() - began) * 1000)
        applied.append(rebuilt.updates)
    print(
        f"rebuild, {label} ({args.rebuilds} random times, interval {args.interval:g} s):"
        f" median {statistics.median(times):.1f} ms, max {max(times):.1f} ms;"
        f" updates replayed median {statistics.median(applied):.0f}, max {max(applied)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--interval", type=float, default=60.0, help="book_snapshot_interval, seconds")
    parser.add_argument("--rebuilds", type=int, default=20)
    parser.add_argument(
        "--compress", action="store_true", help="then compress every chunk (TSL engine) and measure again"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    rows = make_rows(args.hours, args.interval)
    print(f"made {len(rows)} rows in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM market_data WHERE symbol = %s", (SYMBOL,))
        conn.execute("VACUUM market_data")
        before = size(conn)
        with (
            conn.cursor() as cur,
            cur.copy('COPY market_data (exchange, symbol, data_type, "timestamp", data) FROM STDIN') as copy,
        ):
            for r in rows:
                copy.write_row(
                    (
                        r.exchange,
                        r.symbol,
                        r.data_type.value,
                        EPOCH + timedelta(milliseconds=r.ts_ms),
                        r.data_json,
                    )
                )
        conn.execute("VACUUM ANALYZE market_data")
        grown = size(conn) - before
        stats = conn.execute(
            "SELECT data ->> 'action', coalesce(data ->> 'source', 'venue'), count(*),"
            " avg(pg_column_size(data)), avg(octet_length(data::text))"
            " FROM market_data WHERE symbol = %s GROUP BY 1, 2 ORDER BY 1, 2",
            (SYMBOL,),
        ).fetchall()
        print(
            f"{'action':<10} {'source':<10} {'rows':>8} {'jsonb bytes/row':>16} {'json text bytes/row':>20}"
        )
        for action, source, n, stored, text in stats:
            print(f"{action:<10} {source:<10} {n:>8} {float(stored):>16.0f} {float(text):>20.0f}")
        hours = args.hours
        print(f"hypertable_size growth: {grown} bytes = {grown / hours / 1e6:.1f} MB per hour per symbol")
        updates = sum(n for a, _s, n, _b, _t in stats if a == "update")
        print(f"all bytes / updates: {grown / updates:.0f} bytes per update (snapshots and indexes included)")
        rebuilds(conn, args, "uncompressed")
        if args.compress:
            conn.execute("SELECT count(compress_chunk(c, true)) FROM show_chunks('market_data') c")
            conn.execute("VACUUM ANALYZE market_data")
            packed = size(conn) - before
            print(
                f"compressed: hypertable_size growth {packed} bytes = {packed / hours / 1e6:.2f} MB per hour"
                f" per symbol, {packed / updates:.0f} bytes per update (x{grown / packed:.1f} smaller)"
            )
            rebuilds(conn, args, "compressed")
        first = orjson.loads(rows[0].data_json)
        print(f"levels in the first snapshot: {len(first['bids'])} bids, {len(first['asks'])} asks")


if __name__ == "__main__":
    main()
