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


async def test_a_quiet_writer_keeps_no_connection_past_pool_recycle(migrated_db_dsn: str) -> None:
    """One batch, then nothing to write: neither the worker that wrote it nor the pool's idle
    connections may keep a connection opened before pool_recycle (2 s) for much longer."""
    pool = DatabaseSettings.model_validate(
        {"url": migrated_db_dsn, "pool_size": 3, "max_overflow": 1, "pool_timeout": 5, "pool_recycle": 2}
    )
    writer = CopyWriter(migrated_db_dsn, TableNames(), settings(), pool=pool)
    await writer.start()
    try:
        await wait_until(lambda: len(writer_sessions(migrated_db_dsn)) == 3, 20, "3 open connections")
        await writer.put([trade(1)])
        await wait_until(lambda: writer.stats()["batches"] == 1, 20, "the one batch")
        first = set(writer_sessions(migrated_db_dsn))
        # pool_recycle (2 s, less psycopg_pool's jitter), plus a check every 0.5 s: well
        # within 20 s even on a loaded machine.
        await wait_until(
            lambda: not first & set(writer_sessions(migrated_db_dsn)),
            20,
            "every connection opened before pool_recycle replaced",
        )
        # Replaced, not just closed: pool_size connections open again.
        await wait_until(lambda: len(writer_sessions(migrated_db_dsn)) >= 3, 20, "3 connections again")
    finally:
        await writer.stop(10)
