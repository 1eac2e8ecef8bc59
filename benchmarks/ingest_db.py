"""Database side of the ingest benchmark: fresh databases, verification, and the COPY limits.

Every scenario gets its own database `bench_<scenario>_<pid>` on the admin server, migrated
with ingest.db.migrations.migrate (the same hypertable and indexes the service uses), and
dropped afterwards. The limits load the very rows the simulator sends straight into
raw_trades, once by a binary COPY from Python and once by a server-side COPY from a file.
Checks and probes take the venue (`exchange`, "okx" or "binance") whose rows they look at.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psycopg
from ingest_procs import cpu_seconds
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import set_json_dumps

from ingest.db.migrations import migrate
from ingest.redact import redact_dsn
from ingest.simulator.binance.tape import agg_of, agg_values, qty_of
from ingest.simulator.generator import TradeGenerator

EXCHANGE = "okx"
NULL = "\\N"
TRADE_COLUMNS = ("exchange", "symbol", "trade_id", "price", "size", "side", "timestamp", "raw_data")
BINARY_TYPES = ("varchar", "varchar", "varchar", "numeric", "numeric", "varchar", "timestamptz", "jsonb")


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A plain connection without server-side prepared statements, like the service's."""
    return psycopg.Connection.connect(dsn, autocommit=autocommit, prepare_threshold=None)


def dsn_for(admin_dsn: str, dbname: str) -> str:
    """The admin DSN pointed at another database of the same server."""
    return make_conninfo(admin_dsn, dbname=dbname)


def describe(dsn: str) -> str:
    """host:port/dbname of a DSN, never its password."""
    try:
        p = conninfo_to_dict(dsn)
    except psycopg.Error:
        return redact_dsn(dsn)
    return f"{p.get('host', 'local')}:{p.get('port', 5432)}/{p.get('dbname', '?')}"


@contextlib.contextmanager
def fresh_database(admin_dsn: str, scenario: str) -> Iterator[str]:
    """Create and migrate `bench_<scenario>_<pid>`, yield its DSN, drop it afterwards."""
    name = f"bench_{scenario}_{os.getpid()}"
    with connect(admin_dsn) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = dsn_for(admin_dsn, name)
    try:
        migrate(dsn)
        yield dsn
    finally:
        with connect(admin_dsn) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def server_settings(dsn: str) -> dict[str, str]:
    """Settings that change what a write costs, for the results header."""
    names = (
        "server_version",
        "synchronous_commit",
        "fsync",
        "shared_buffers",
        "wal_level",
        "max_wal_size",
        "timescaledb.license",
    )
    out: dict[str, str] = {}
    with connect(dsn) as conn:
        for name in names:
            row = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
            out[name] = str(row[0]) if row and row[0] is not None else "?"
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        out["timescaledb"] = str(row[0]) if row else "absent"
    return out


# -- the trades the simulator sends, rebuilt --------------------------------------------------


def expected_trades(symbol: str, n: int, exchange: str = EXCHANGE) -> list[tuple[str, str, str, str]]:
    """(trade_id, px, sz, side) of the simulator's first n trades of `symbol` (ids 1..n).

    Rebuilt with the simulator's own code (OKX: its generator; Binance: the tape's value
    functions), so a value check compares with what was really sent, not with a copy of
    its formula. Binance writes 8 decimals, which numeric keeps, so price::text matches.
    """
    if exchange == "binance":
        out = []
        for i in range(1, n + 1):
            price, buyer_maker = agg_values(agg_of(i))
            out.append((str(i), price, qty_of(i), "sell" if buyer_maker else "buy"))
        return out
    gen = TradeGenerator(symbol, trades_per_message=1, chunk_trades=n, limit=n)
    gen.extend()
    return [(t.trade_id, t.price, t.size, t.side) for t in gen.trades_in(0, n)]


def limit_rows(symbol: str, n: int, ts_ms: int, *, with_raw: bool) -> list[tuple[Any, ...]]:
    """The n trades of one simulated symbol as raw_trades tuples, ready for a binary COPY.

    raw_data is the trade object the collector stores with store_raw_data (orjson of the
    wire object, already serialized as the collector does while parsing), else NULL.
    """
    ts = datetime.fromtimestamp(ts_ms / 1000, UTC)
    prices: dict[str, Decimal] = {}
    sizes: dict[str, Decimal] = {}
    rows: list[tuple[Any, ...]] = []
    for i, (trade_id, px, sz, side) in enumerate(expected_trades(symbol, n), 1):
        price = prices.get(px) or prices.setdefault(px, Decimal(px))
        size = sizes.get(sz) or sizes.setdefault(sz, Decimal(sz))
        raw = (
            None
            if not with_raw
            else orjson.dumps(
                {
                    "instId": symbol,
                    "tradeId": trade_id,
                    "px": px,
                    "sz": sz,
                    "side": side,
                    "ts": str(ts_ms),
                    "count": "1",
                    "source": "0",
                    "seqId": i,
                }
            ).decode()
        )
        rows.append((EXCHANGE, symbol, trade_id, price, size, side, ts, raw))
    return rows


def _copy_sql(fmt: str, source: str) -> sql.Composed:
    cols = sql.SQL(", ").join(map(sql.Identifier, TRADE_COLUMNS))
    return sql.SQL("COPY raw_trades ({}) FROM {} {}").format(cols, sql.SQL(source), sql.SQL(fmt))


def _as_is(obj: Any) -> str:
    return str(obj)


def load_binary_copy(dsn: str, rows: list[tuple[Any, ...]]) -> tuple[float, float]:
    """One binary COPY of `rows` into raw_trades from Python, commit included:
    (wall seconds, CPU seconds of the server backend)."""
    with connect(dsn, autocommit=False) as conn:
        # raw_data values are JSON text already: pass them through unchanged.
        set_json_dumps(_as_is, context=conn)
        backend = conn.info.backend_pid
        with conn.cursor() as cur:
            cpu0, start = cpu_seconds(backend), time.perf_counter()
            with cur.copy(_copy_sql("(FORMAT BINARY)", "STDIN")) as copy:
                copy.set_types(list(BINARY_TYPES))
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            return time.perf_counter() - start, cpu_seconds(backend) - cpu0


def write_text_file(rows: list[tuple[Any, ...]]) -> Path:
    """The rows as a COPY text file the server can read (world-readable, under /tmp)."""
    fd, name = tempfile.mkstemp(prefix="tcpd_bench_", suffix=".copy", dir="/tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for exchange, symbol, trade_id, px, sz, side, ts, raw in rows:
            fields = (exchange, symbol, trade_id, px, sz, side, ts.isoformat(), raw or NULL)
            out.write("\t".join(map(str, fields)) + "\n")
    os.chmod(name, 0o644)
    return Path(name)


def load_server_copy(dsn: str, path: Path) -> tuple[float, float]:
    """`COPY raw_trades (...) FROM '<path>'` run by the server (superuser), commit included:
    (wall seconds, CPU seconds of the server backend)."""
    with connect(dsn, autocommit=False) as conn, conn.cursor() as cur:
        backend = conn.info.backend_pid
        cpu0, start = cpu_seconds(backend), time.perf_counter()
        cur.execute(_copy_sql("", sql.quote(str(path))))
        conn.commit()
        return time.perf_counter() - start, cpu_seconds(backend) - cpu0


# -- checks after a run -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    """What raw_trades holds after a run, compared with what was sent."""

    rows: int
    distinct_trades: int
    inconsistent: int  # rows whose columns disagree with their own raw_data (when stored)
    with_raw: int  # rows whose raw_data is not NULL
    sample_checked: int
    sample_mismatches: int
    first_created: float  # epoch seconds of the first batch transaction's start
    last_created: float

    def ok(self, sent: int) -> bool:
        """Every trade stored exactly once, with its values."""
        return (
            self.rows == sent
            and self.distinct_trades == sent
            and self.inconsistent == 0
            and self.sample_mismatches == 0
        )


# Rows whose columns disagree with their own raw_data (or carry another venue or side), per
# venue: the wire object's field names differ. Binance's T is ms (µs on timeUnit=MICROSECOND).
_INCONSISTENT = {
    "okx": (
        "exchange <> 'okx' OR side NOT IN ('buy', 'sell') OR ("
        "raw_data IS NOT NULL AND (raw_data->>'instId' IS DISTINCT FROM symbol "
        "OR raw_data->>'tradeId' IS DISTINCT FROM trade_id "
        "OR raw_data->>'px' IS DISTINCT FROM price::text OR raw_data->>'sz' IS DISTINCT FROM size::text "
        "OR raw_data->>'side' IS DISTINCT FROM side OR (raw_data->>'ts')::bigint "
        'IS DISTINCT FROM (extract(epoch FROM "timestamp") * 1000)::bigint))'
    ),
    "binance": (
        "exchange <> 'binance' OR side NOT IN ('buy', 'sell') OR ("
        "raw_data IS NOT NULL AND (raw_data->>'s' IS DISTINCT FROM symbol "
        "OR raw_data->>'t' IS DISTINCT FROM trade_id "
        "OR raw_data->>'p' IS DISTINCT FROM price::text OR raw_data->>'q' IS DISTINCT FROM size::text "
        "OR (CASE WHEN (raw_data->>'m')::boolean THEN 'sell' ELSE 'buy' END) IS DISTINCT FROM side "
        "OR (CASE WHEN (raw_data->>'T')::bigint >= 100000000000000 THEN (raw_data->>'T')::bigint / 1000 "
        "ELSE (raw_data->>'T')::bigint END) "
        'IS DISTINCT FROM (extract(epoch FROM "timestamp") * 1000)::bigint))'
    ),
}


def verify(
    dsn: str, symbols: list[str], per_symbol: int, sample: int = 20_000, exchange: str = EXCHANGE
) -> Verification:
    """Count rows and distinct trades, check every row against its raw_data, and check the
    values of the first `sample` trades of every symbol (all price and size variants) against
    the simulator's own value code (expected_trades)."""
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (symbol, trade_id)), "
            "extract(epoch FROM min(created_at))::float8, extract(epoch FROM max(created_at))::float8 "
            "FROM raw_trades"
        ).fetchone()
        assert row is not None
        rows, distinct, first, last = int(row[0]), int(row[1]), row[2] or 0.0, row[3] or 0.0
        bad = conn.execute(
            sql.SQL("SELECT count(*) FILTER (WHERE {}), count(raw_data) FROM raw_trades").format(
                sql.SQL(_INCONSISTENT[exchange])  # type: ignore[arg-type]  # a constant above
            )
        ).fetchone()
        inconsistent = int(bad[0]) if bad else -1
        with_raw = int(bad[1]) if bad else -1
        checked = mismatches = 0
        for symbol in symbols:
            want = {t[0]: t for t in expected_trades(symbol, min(per_symbol, sample), exchange)}
            got = conn.execute(
                "SELECT trade_id, price::text, size::text, side FROM raw_trades "
                "WHERE exchange = %s AND symbol = %s AND trade_id = ANY(%s)",
                (exchange, symbol, list(want)),
            ).fetchall()
            checked += len(want)
            seen = {r[0]: (r[0], r[1], r[2], r[3]) for r in got}
            mismatches += sum(1 for k, v in want.items() if seen.get(k) != v)
    return Verification(
        rows, distinct, inconsistent, with_raw, checked, mismatches, float(first), float(last)
    )


def last_trade_visible(
    conn: psycopg.Connection[Any], symbol: str, trade_id: str, exchange: str = EXCHANGE
) -> bool:
    """Is trade `trade_id` of `symbol` committed? Two index probes, cheap enough to poll.

    The unique index is (exchange, symbol, "timestamp", trade_id): a lookup by trade_id
    alone would scan every row of the symbol, and polled every 10 ms that took a database
    core away from the run. The last trade carries the newest ts (the simulator's ts never
    decreases), so once it is visible it is the row at max("timestamp").
    """
    row = conn.execute(
        "SELECT 1 FROM raw_trades WHERE exchange = %s AND symbol = %s AND trade_id = %s "
        'AND "timestamp" = (SELECT max("timestamp") FROM raw_trades '
        "WHERE exchange = %s AND symbol = %s)",
        (exchange, symbol, trade_id, exchange, symbol),
    ).fetchone()
    return row is not None


def count_rows(conn: psycopg.Connection[Any]) -> int:
    """count(*) of raw_trades (a scan: use sparingly while a run is going)."""
    row = conn.execute("SELECT count(*) FROM raw_trades").fetchone()
    return int(row[0]) if row else 0


def backend_pids(conn: psycopg.Connection[Any]) -> list[int]:
    """Server processes connected to this database, except `conn`'s own (the writer's pool)."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    return [int(r[0]) for r in rows]


def count_created_between(dsn: str, start: float, end: float) -> int:
    """Rows whose batch transaction started in [start, end) (epoch seconds)."""
    with connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM raw_trades WHERE created_at >= to_timestamp(%s) "
            "AND created_at < to_timestamp(%s)",
            (start, end),
        ).fetchone()
    return int(row[0]) if row else 0
