"""The writer behind PgBouncer's transaction pooling: staged (deduplicating) batches work."""

from __future__ import annotations

from pathlib import Path

import psycopg
from pgbouncer_support import transaction_pooler
from storage_support import T0_MS, expected_trades, make_writer, read_trades, trade, wait_until
from test_storage_market_key import BOOK_A, expected, market, read_market

from ingest.model import DataType
from ingest.rows import Row


def test_transactions_of_one_client_move_between_server_sessions(
    migrated_db_dsn: str, tmp_path: Path
) -> None:
    """The premise of the test below: what a session-level TEMP table would not survive."""
    with (
        transaction_pooler(migrated_db_dsn, tmp_path / "pgb") as dsn,
        psycopg.connect(dsn, prepare_threshold=None, autocommit=True) as conn,
    ):
        pids = {conn.execute("SELECT pg_backend_pid()").fetchone() for _ in range(4)}
    assert len(pids) == 2


async def test_duplicates_are_staged_under_transaction_pooling(migrated_db_dsn: str, tmp_path: Path) -> None:
    books = [market(DataType.ORDERBOOK, BOOK_A, ts_ms=T0_MS + i) for i in range(3)]
    with transaction_pooler(migrated_db_dsn, tmp_path / "pgb") as dsn:
        writer = make_writer(dsn, batch_max_rows=10_000)
        await writer.start()
        # Every batch holds rows stored before, so every one takes the staging path.
        for n in range(5):
            rows: list[Row] = [trade(i) for i in range(10 * n + 10)] + books
            await writer.put(rows)
            await wait_until(lambda n=n: writer.stats()["batches"] >= n + 1, 10, f"batch {n + 1}")
        await writer.stop(10)
        stats = writer.stats()
    assert read_trades(migrated_db_dsn) == expected_trades([trade(i) for i in range(50)])
    assert read_market(migrated_db_dsn) == expected(books)
    assert stats["rows_written"] == {"raw_trades": 50, "market_data": 3, "dead_letters": 0}
    assert stats["duplicates_skipped"] == (0 + 10 + 20 + 30 + 40) + 3 * 4
