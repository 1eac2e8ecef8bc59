"""The pool settings of config/database.json drive the writer's pool (psycopg_pool):
pool_size connections kept open, recycled after pool_recycle seconds. Real native engine."""

from __future__ import annotations

import asyncio

import psycopg

from ingest.config.database import DatabaseSettings, TableNames
from ingest.storage import CopyWriter
from tests.storage_support import settings, trade, wait_until


def writer_sessions(dsn: str) -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE application_name = 'tcpd-writer' AND datname = current_database()"
        ).fetchall()
    return sorted(int(r[0]) for r in rows)


async def test_pool_size_connections_are_kept_open_and_recycled_after_pool_recycle(
    migrated_db_dsn: str,
) -> None:
    pool = DatabaseSettings.model_validate(
        {"url": migrated_db_dsn, "pool_size": 4, "max_overflow": 2, "pool_timeout": 5, "pool_recycle": 2}
    )
    writer = CopyWriter(migrated_db_dsn, TableNames(), settings(), pool=pool)
    await writer.start()
    try:
        await wait_until(lambda: len(writer_sessions(migrated_db_dsn)) == 4, 20, "4 open connections")
        first = set(writer_sessions(migrated_db_dsn))
        # psycopg_pool replaces a connection older than pool_recycle when it comes back; the
        # workers give theirs back after pool_recycle at most. Keep writing for a while.
        for i in range(150):
            await writer.put([trade(i)])
            await asyncio.sleep(0.1)
        now = set(writer_sessions(migrated_db_dsn))
        assert len(now) >= 4
        assert not first & now, "connections older than pool_recycle are still open"
    finally:
        await writer.stop(10)
