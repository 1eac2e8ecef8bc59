"""The gap filler's database connections stay few however many symbols ask at once: 600
collectors starting together each read their last stored trade, and without a bound the
filler opened a connection for each, up to the server's max_connections (measured with
benchmarks/rss_symbols.py: 200 connections, ~1,500 retries). Real native database."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from ingest.exchanges.okx.history import OkxTradeHistory
from ingest.history.gapfill import DB_CONNECTIONS, GapFiller
from tests.storage_support import make_writer


async def test_many_concurrent_reads_use_at_most_a_few_connections(migrated_db_dsn: str) -> None:
    filler = GapFiller(
        "okx",
        OkxTradeHistory(),
        conninfo=migrated_db_dsn,
        sink=make_writer(migrated_db_dsn),
        base_url="http://127.0.0.1:9",
        store_raw_data=False,
        timeout=5.0,
        give_up_after=60.0,
        retry_interval=3600.0,
    )

    async def connections_now(conn: psycopg.AsyncConnection[Any]) -> int:
        await conn.execute("SELECT pg_sleep(0.05)")
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = current_setting('application_name')"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    # The filler's own database access (private: the public paths reach it per symbol).
    seen = await asyncio.gather(*(filler._db(connections_now, "a test read") for _ in range(60)))
    assert max(seen) <= DB_CONNECTIONS
    assert len(seen) == 60
