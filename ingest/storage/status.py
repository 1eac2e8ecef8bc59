"""Collector status rows and their upsert into the collector_status table (one row per collector)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True, slots=True)
class CollectorStatusRow:
    """The latest status of one collector; `updated_at` must be timezone-aware."""

    collector: str
    exchange: str
    symbol: str
    status: str
    status_json: Mapping[str, Any]
    health_json: Mapping[str, Any]
    updated_at: datetime

    def __post_init__(self) -> None:
        if self.updated_at.tzinfo is None or self.updated_at.utcoffset() is None:
            raise ValueError(f"collector {self.collector!r}: updated_at must be timezone-aware")


def _dumps(value: Any) -> str:
    # Status dicts hold datetimes, enums and Decimals: orjson does the first two, str the rest.
    return orjson.dumps(value, default=str).decode()


async def upsert_status(
    conn: psycopg.AsyncConnection[Any], statement: bytes, rows: Sequence[CollectorStatusRow]
) -> None:
    """Insert or update one collector_status row per collector, in one transaction."""
    params = [
        (
            r.collector,
            r.exchange,
            r.symbol,
            r.status,
            Jsonb(r.status_json, dumps=_dumps),
            Jsonb(r.health_json, dumps=_dumps),
            r.updated_at,
        )
        for r in rows
    ]
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(statement, params)
