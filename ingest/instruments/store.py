"""Upsert instrument rows into the `instruments` table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ingest.instruments.model import InstrumentRow

_COLUMNS = InstrumentRow._fields
UPSERT = (
    f"INSERT INTO instruments ({', '.join(_COLUMNS)}, updated_at) "
    f"VALUES ({', '.join(['%s'] * len(_COLUMNS))}, now()) "
    "ON CONFLICT (exchange, symbol) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[2:])
    + ", updated_at = EXCLUDED.updated_at"
)


async def store_instruments(conn: psycopg.AsyncConnection[Any], rows: Sequence[InstrumentRow]) -> None:
    """Insert or update `rows` in one transaction (an instrument the exchange no longer lists
    keeps its last row: old trades of it still need their contract size)."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(UPSERT, rows)
