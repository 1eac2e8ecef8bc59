"""One batch of rows, split by table and formatted once as COPY data, and its transaction.

A batch is written in one transaction, on a connection in autocommit mode, with as few
round trips as it can:

- Trades only (the common case at high rates): one COPY straight into raw_trades, which is
  its own transaction. Two round trips, COPY and its data.
- Anything else: `BEGIN; SELECT txid_current()` in one round trip, one COPY per table, then
  COMMIT. The transaction id is kept, so that when the connection dies around COMMIT the
  writer can ask the server (txid_status) whether the batch committed instead of guessing.
  That is what makes a retry of append-only dead_letters rows exactly-once (raw_trades and
  market_data are exactly-once through their unique keys anyway). A trades-only batch needs
  no id: its retry meets the trades it already stored and takes the staging path below.

If a COPY into raw_trades or market_data hits a unique violation (a duplicate), that
transaction is rolled back and the batch is written again with both going through staging
tables and ON CONFLICT DO NOTHING (see ingest.storage.statements); the batch remembers this,
so retries after an outage go that way too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import psycopg

from ingest.rows import DeadLetter, MarketRow, Row, TradeRow
from ingest.storage.copy_format import dead_letters_copy, market_copy, trades_copy
from ingest.storage.rejects import rejected
from ingest.storage.statements import BEGIN_STAGED, BEGIN_WITH_XID, COMMIT, XID_STATUS, Statements

_ROW_TYPES = (TradeRow, MarketRow, DeadLetter)


R = TypeVar("R", TradeRow, MarketRow, DeadLetter)


def _formattable(
    rows: list[R], fmt: Callable[[Sequence[R]], bytes], refused: list[DeadLetter]
) -> tuple[bytes, int]:
    """Format `rows` -> (COPY data, rows in it); rows whose text cannot be encoded go to `refused`."""
    if not rows:
        return b"", 0
    try:
        return fmt(rows), len(rows)
    except UnicodeError:
        good: list[R] = []
        for row in rows:
            try:
                fmt([row])
            except UnicodeError as exc:
                refused.append(rejected(row, f"text is not valid UTF-8 ({type(exc).__name__})"))
            else:
                good.append(row)
        return (fmt(good) if good else b""), len(good)


@dataclass(slots=True)
class Batch:
    """Rows taken from the queue together, with their COPY data built once for all tries."""

    rows: list[Row]
    trades: bytes = b""
    market: bytes = b""
    dead: bytes = b""
    counts: dict[str, int] = field(default_factory=dict)
    xid: int | None = None  # transaction id of the last try, outcome not yet known
    dedupe: bool = False  # trades and market rows go through staging + ON CONFLICT (a duplicate was seen)
    refused: list[DeadLetter] = field(default_factory=list)  # what cannot go in as given

    @classmethod
    def build(cls, rows: list[Row]) -> Batch:
        """Split `rows` by type and format each part as COPY text.

        Objects that are not rows, and rows whose text cannot be encoded, come back as
        dead letters in `refused` (CopyWriter.put does not check types per row).
        """
        refused: list[DeadLetter] = []
        trades = [r for r in rows if type(r) is TradeRow]
        market: list[MarketRow] = []
        dead: list[DeadLetter] = []
        if len(trades) != len(rows):
            market = [r for r in rows if type(r) is MarketRow]
            dead = [r for r in rows if type(r) is DeadLetter]
            if len(trades) + len(market) + len(dead) != len(rows):
                refused += [
                    rejected(r, f"not a row: {type(r).__name__}") for r in rows if type(r) not in _ROW_TYPES
                ]
        trade_data, n_trades = _formattable(trades, trades_copy, refused)
        market_data, n_market = _formattable(market, market_copy, refused)
        dead_data, n_dead = _formattable(dead, dead_letters_copy, refused)
        return cls(
            rows=rows,
            trades=trade_data,
            market=market_data,
            dead=dead_data,
            counts={"trades": n_trades, "market": n_market, "dead_letters": n_dead},
            refused=refused,
        )


@dataclass(frozen=True, slots=True)
class Written:
    """What one committed batch added: rows per target table, and rows of raw_trades and
    market_data skipped as duplicates (already stored, or twice in the batch)."""

    raw_trades: int
    market_data: int
    dead_letters: int
    duplicates: int


async def write_batch(conn: psycopg.AsyncConnection[Any], st: Statements, batch: Batch) -> Written:
    """Write `batch` atomically on `conn` (autocommit mode); return what was added."""
    if not batch.dedupe:
        try:
            return await _transaction(conn, st, batch)
        except psycopg.errors.UniqueViolation:
            await conn.rollback()  # nothing to do when the COPY was its own transaction
            batch.xid = None  # rolled back: certainly not committed
            batch.dedupe = True
    return await _transaction(conn, st, batch)


async def _copy(cur: psycopg.AsyncCursor[Any], statement: bytes, data: bytes) -> None:
    async with cur.copy(statement) as copy:
        await copy.write(data)


async def _transaction(conn: psycopg.AsyncConnection[Any], st: Statements, batch: Batch) -> Written:
    c = batch.counts
    async with conn.cursor() as cur:
        if not (batch.dedupe or batch.market or batch.dead):
            if batch.trades:  # (empty when every row was refused and dead-lettered)
                await _copy(cur, st.copy_trades, batch.trades)  # autocommit: its own transaction
            return Written(c["trades"], 0, 0, 0)
        await cur.execute(BEGIN_STAGED if batch.dedupe else BEGIN_WITH_XID)
        while cur.nextset():  # to the last result: the transaction id
            pass
        got = await cur.fetchone()
        batch.xid = int(got[0]) if got else None
        trades = c["trades"]
        if batch.trades and batch.dedupe:
            await _copy(cur, st.copy_trades_stage, batch.trades)
            await cur.execute(st.insert_trades_stage)
            trades = cur.rowcount
        elif batch.trades:
            await _copy(cur, st.copy_trades, batch.trades)
        market = c["market"]
        if batch.market and batch.dedupe:
            await _copy(cur, st.copy_market_stage, batch.market)
            await cur.execute(st.insert_market_stage)
            market = cur.rowcount
        elif batch.market:
            await _copy(cur, st.copy_market, batch.market)
        if batch.dead:
            await _copy(cur, st.copy_dead, batch.dead)
        await cur.execute(COMMIT)
    batch.xid = None
    skipped = c["trades"] - trades + c["market"] - market
    return Written(trades, market, c["dead_letters"], skipped)


# The server session of a connection given up mid-batch: still there when the connection
# went half-open (the server never saw it go), its open transaction holding the locks of
# the rows it inserted, so a retry of the same rows would wait for it. Ended only if it is
# still the one we gave up (same pid, our user and application_name, older than the try).
TERMINATE_ABANDONED = b"""
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE pid = %s AND usename = current_user AND application_name = current_setting('application_name')
    AND backend_start < %s
"""


async def end_abandoned(conn: psycopg.AsyncConnection[Any], pid: int, before: datetime) -> bool:
    """Terminate the server session `pid` the writer gave up on (see TERMINATE_ABANDONED);
    True if it was still there."""
    async with conn.cursor() as cur:
        await cur.execute(TERMINATE_ABANDONED, (pid, before))
        got = await cur.fetchone()
    return bool(got and got[0])


async def committed(conn: psycopg.AsyncConnection[Any], xid: int) -> bool | None:
    """Did transaction `xid` commit? True, False (aborted or unknown), None (still running)."""
    async with conn.cursor() as cur:
        await cur.execute(XID_STATUS, (xid,))
        got = await cur.fetchone()
    status = got[0] if got else None
    if status == "in progress":
        return None
    return status == "committed"
