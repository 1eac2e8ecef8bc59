"""The SQL the writer runs, composed with psycopg.sql so table names are identifiers.

Each statement is rendered to bytes once: psycopg would otherwise compose (and escape the
identifiers of) a Composed again on every execute, several times per batch.

Fast path: every batch is COPied straight into its tables (see ingest.storage.batch).
Trades have a unique key; when a batch holds a trade already stored (reconnect overlap,
replay) or the same trade twice, that COPY fails with a unique violation, the transaction
is rolled back and the batch is written again through a per-connection temporary staging
table: COPY into the stage, then INSERT ... SELECT ... ON CONFLICT DO NOTHING, so a
duplicate never sinks the rest of the batch. Duplicates are rare, so most batches pay for
one COPY only.
The staging table is ON COMMIT DELETE ROWS: every transaction finds it empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from ingest.config.database import TableNames
from ingest.storage.copy_format import DEAD_LETTER_COLUMNS, MARKET_COLUMNS, TRADE_COLUMNS

STAGE_TRADES = "tcpd_stage_trades"

# Dropped first: where connections share one session (PGlite) a stage from an older
# version of this file may still be there. Elsewhere the drop finds nothing.
CREATE_STAGING = b"""
DROP TABLE IF EXISTS pg_temp.tcpd_stage_trades;
CREATE TEMPORARY TABLE tcpd_stage_trades (
    exchange text, symbol text, trade_id text, price numeric, size numeric,
    side text, "timestamp" timestamptz, fill_count integer, trade_seq bigint, raw_data jsonb
) ON COMMIT DELETE ROWS
"""

# One round trip (simple query protocol): the transaction and its id.
BEGIN_WITH_XID = b"BEGIN; SELECT txid_current()"
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
        copy_dead=_copy(tables.dead_letters, DEAD_LETTER_COLUMNS),
        upsert_status=upsert_status,
    )
