"""The SQL the writer runs, composed with psycopg.sql so table names are identifiers.

Each statement is rendered to bytes once: psycopg would otherwise compose (and escape the
identifiers of) a Composed again on every execute, several times per batch.

Fast path: every batch is COPied straight into its tables (see ingest.storage.batch).
raw_trades and market_data have unique keys (sql/0001; sql/0102 and sql/0118); when a
batch holds a row already stored (reconnect overlap, resubscribe snapshot, replay, a second
collector, a trade both received live and filled from REST history) or the same row twice,
that COPY fails with a unique violation, the transaction is rolled back and the batch is
written again through temporary staging tables: COPY into the stage, then
INSERT ... SELECT ... ON CONFLICT DO NOTHING, so a duplicate never sinks the rest of the
batch. Duplicates are rare, so most batches pay for one COPY per table only.

The staging tables are created, if missing, inside the very transaction that uses them
(BEGIN_STAGED): under PgBouncer's transaction pooling consecutive transactions of one client
connection run on different server sessions, so a stage created once per client connection
would be missing from the next one. IF NOT EXISTS on an existing table is a catalog lookup,
no catalog write. The tables are ON COMMIT DELETE ROWS: every transaction finds them empty.
Their names carry a version: a changed definition needs a new name, because a server session
(PgBouncer's, or PGlite's single shared one) may still hold the old table.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from ingest.config.database import TableNames
from ingest.storage.copy_format import DEAD_LETTER_COLUMNS, MARKET_COLUMNS, TRADE_COLUMNS

STAGE_TRADES = "tcpd_stage_trades_v3"
STAGE_MARKET = "tcpd_stage_market_v2"

# One round trip (simple query protocol): the transaction and its id.
BEGIN_WITH_XID = b"BEGIN; SELECT txid_current()"

# The same for a staged (deduplicating) batch, with its staging tables. The notice
# "relation already exists, skipping" is kept off the client.
BEGIN_STAGED = f"""BEGIN;
SET LOCAL client_min_messages = warning;
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TRADES} (
    exchange text, symbol text, trade_id text, price numeric, size numeric,
    side text, "timestamp" timestamptz, fill_count integer, trade_seq bigint, raw_data jsonb
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_MARKET} (
    exchange text, symbol text, data_type text, "timestamp" timestamptz, "data" jsonb, trade_id text
) ON COMMIT DELETE ROWS;
SELECT txid_current()""".encode()
COMMIT = b"COMMIT"
XID_STATUS = b"SELECT txid_status(%s)"


def _columns(columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def _copy(table: str, columns: tuple[str, ...]) -> bytes:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), _columns(columns)).as_bytes()


@dataclass(frozen=True, slots=True)
class Statements:
    """All statements for one set of table names, composed and rendered once."""

    copy_trades: bytes
    copy_trades_stage: bytes
    insert_trades_stage: bytes
    copy_market: bytes
    copy_market_stage: bytes
    insert_market_stage: bytes
    copy_dead: bytes
    upsert_status: bytes


def build_statements(tables: TableNames) -> Statements:
    """Compose the writer's statements for `tables`."""
    cols = _columns(TRADE_COLUMNS)
    insert_trades_stage = (
        sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM {} "
            # Key order: two writers inserting overlapping duplicates take the same index
            # locks in the same order, so they wait for each other instead of deadlocking.
            'ORDER BY exchange, symbol, trade_id, "timestamp" '
            'ON CONFLICT (exchange, symbol, trade_id, "timestamp") DO NOTHING'
        )
        .format(sql.Identifier(tables.raw_trades), cols, cols, sql.Identifier(STAGE_TRADES))
        .as_bytes()
    )
    market_cols = _columns(MARKET_COLUMNS)
    insert_market_stage = (
        sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM {} "
            # Key order (sql/0118), for the same reason as above.
            'ORDER BY exchange, symbol, data_type, "timestamp", '
            'coalesce(hashtextextended(trade_id, 0), jsonb_hash_extended("data", 0)) '
            # No conflict target: the key's hash expression would have to be spelt exactly
            # as in the index; DO NOTHING on any unique violation is what is meant anyway.
            "ON CONFLICT DO NOTHING"
        )
        .format(sql.Identifier(tables.market_data), market_cols, market_cols, sql.Identifier(STAGE_MARKET))
        .as_bytes()
    )
    upsert_status = (
        sql.SQL(
            "INSERT INTO {} (collector, exchange, symbol, status, status_json, health_json, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (collector) DO UPDATE SET exchange = EXCLUDED.exchange, "
            "symbol = EXCLUDED.symbol, status = EXCLUDED.status, "
            "status_json = EXCLUDED.status_json, health_json = EXCLUDED.health_json, "
            "updated_at = EXCLUDED.updated_at"
        )
        .format(sql.Identifier(tables.collector_status))
        .as_bytes()
    )
    return Statements(
        copy_trades=_copy(tables.raw_trades, TRADE_COLUMNS),
        copy_trades_stage=_copy(STAGE_TRADES, TRADE_COLUMNS),
        insert_trades_stage=insert_trades_stage,
        copy_market=_copy(tables.market_data, MARKET_COLUMNS),
        copy_market_stage=_copy(STAGE_MARKET, MARKET_COLUMNS),
        insert_market_stage=insert_market_stage,
        copy_dead=_copy(tables.dead_letters, DEAD_LETTER_COLUMNS),
        upsert_status=upsert_status,
    )
