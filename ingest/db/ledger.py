"""The ledger table: one row per applied migration, with the checksum of the file applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

LEDGER_TABLE = "tcpd_schema_migrations"

_CREATE = """
CREATE TABLE IF NOT EXISTS public.tcpd_schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    file text NOT NULL,
    checksum text NOT NULL,
    edition text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    execution_ms double precision NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """One ledger row."""

    version: int
    name: str
    file: str
    checksum: str
    edition: str
    applied_at: datetime
    execution_ms: float


def ensure_ledger(conn: psycopg.Connection[Any]) -> None:
    """Create the ledger table if it is missing."""
    conn.execute(_CREATE)


def ledger_exists(conn: psycopg.Connection[Any]) -> bool:
    """True when the ledger table exists (a database never migrated has none)."""
    row = conn.execute("SELECT to_regclass('public.tcpd_schema_migrations') IS NOT NULL").fetchone()
    return bool(row and row[0])


def read_ledger(conn: psycopg.Connection[Any]) -> list[AppliedMigration]:
    """All ledger rows by version; empty when the table does not exist yet."""
    if not ledger_exists(conn):
        return []
    rows = conn.execute(
        "SELECT version, name, file, checksum, edition, applied_at, execution_ms"
        " FROM public.tcpd_schema_migrations ORDER BY version"
    ).fetchall()
    return [AppliedMigration(*row) for row in rows]


def record(
    conn: psycopg.Connection[Any],
    *,
    version: int,
    name: str,
    file: str,
    checksum: str,
    edition: str,
    execution_ms: float,
) -> None:
    """Insert the ledger row of a migration just applied."""
    conn.execute(
        "INSERT INTO public.tcpd_schema_migrations"
        " (version, name, file, checksum, edition, execution_ms) VALUES (%s, %s, %s, %s, %s, %s)",
        (version, name, file, checksum, edition, execution_ms),
    )
