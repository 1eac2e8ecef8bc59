"""Gaps: ranges of an exchange's history that are not stored (sql/0114_ingest_gaps.sql).

Whatever made a hole records it here, the same way: the disk spool when it had to drop rows
(ingest.storage.spool_losses), gap filling when the exchange's history could not cover a
hole. A gap stays open until an attempt fills it (`mark_filled`); the row is kept as the
record of what happened. `tcpd gaps` lists them, `tcpd status` counts the open ones.

Writers are async (the service), readers sync (the CLI); both use the statements here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

UPSERT_GAP = b"""
INSERT INTO ingest_gaps
    (gap_id, exchange, symbol, data_type, from_ts, to_ts,
     after_trade_id, before_trade_id, rows_lost, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (gap_id) DO UPDATE SET
    from_ts = excluded.from_ts, to_ts = excluded.to_ts,
    after_trade_id = excluded.after_trade_id, before_trade_id = excluded.before_trade_id,
    rows_lost = excluded.rows_lost, reason = excluded.reason
"""

NOTE_ATTEMPT = b"""
UPDATE ingest_gaps
SET attempts = attempts + 1, last_attempt_at = now(), last_error = %s
WHERE gap_id = %s
"""

MARK_FILLED = b"""
UPDATE ingest_gaps
SET filled_at = now(), rows_filled = %s, attempts = attempts + 1, last_attempt_at = now(),
    last_error = NULL
WHERE gap_id = %s AND filled_at IS NULL
"""

COLUMNS = (
    "gap_id, exchange, symbol, data_type, from_ts, to_ts, after_trade_id, before_trade_id, "
    "rows_lost, reason, recorded_at, attempts, last_attempt_at, last_error, filled_at, rows_filled"
)

COUNT_OPEN = b"SELECT count(*) FROM ingest_gaps WHERE filled_at IS NULL"


def new_gap_id() -> str:
    """A fresh gap_id: made by the service, so that re-recording a growing gap updates it."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Gap:
    """One hole: rows of (exchange, symbol, data_type) in [from_ts, to_ts] may be missing.

    after_trade_id / before_trade_id: the stored trades around the hole, where the exchange
    numbers its trades (both exclusive). rows_lost: rows the service received and dropped
    (spool full); None when only the exchange knows how many are missing.
    """

    gap_id: str
    exchange: str
    symbol: str
    data_type: str
    from_ts: datetime
    to_ts: datetime
    reason: str
    after_trade_id: str | None = None
    before_trade_id: str | None = None
    rows_lost: int | None = None

    def params(self) -> tuple[Any, ...]:
        """UPSERT_GAP's parameters."""
        return (
            self.gap_id,
            self.exchange,
            self.symbol,
            self.data_type,
            self.from_ts,
            self.to_ts,
            self.after_trade_id,
            self.before_trade_id,
            self.rows_lost,
            self.reason,
        )


async def record_gaps(conn: psycopg.AsyncConnection[Any], gaps: Sequence[Gap]) -> None:
    """Insert the gaps, or update the ones already recorded (same gap_id), in one transaction."""
    if not gaps:
        return
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(UPSERT_GAP, [gap.params() for gap in gaps])


async def note_attempt(conn: psycopg.AsyncConnection[Any], gap_id: str, error: str) -> None:
    """An attempt to fill the gap failed with `error` (a message without secrets)."""
    async with conn.transaction():
        await conn.execute(NOTE_ATTEMPT, (error, gap_id))


async def mark_filled(conn: psycopg.AsyncConnection[Any], gap_id: str, rows_filled: int) -> bool:
    """The gap is filled (`rows_filled` rows stored for it); False if it was not open."""
    async with conn.transaction():
        cur = await conn.execute(MARK_FILLED, (rows_filled, gap_id))
        return cur.rowcount == 1


def list_gaps(
    conn: psycopg.Connection[Any],
    *,
    include_filled: bool = False,
    exchange: str | None = None,
    symbol: str | None = None,
) -> list[dict[str, Any]]:
    """The recorded gaps, oldest first: open ones only unless `include_filled`."""
    where = ["TRUE"]
    params: list[Any] = []
    if not include_filled:
        where.append("filled_at IS NULL")
    if exchange is not None:
        where.append("exchange = %s")
        params.append(exchange)
    if symbol is not None:
        where.append("symbol = %s")
        params.append(symbol)
    query = f"SELECT {COLUMNS} FROM ingest_gaps WHERE {' AND '.join(where)} ORDER BY from_ts, gap_id"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query.encode(), params)
        return [dict(row) for row in cur.fetchall()]


def count_open(conn: psycopg.Connection[Any]) -> int:
    """How many gaps are open."""
    row = conn.execute(COUNT_OPEN).fetchone()
    return int(row[0]) if row else 0
