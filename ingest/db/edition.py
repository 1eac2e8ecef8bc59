"""What the server is: PostgreSQL version, TimescaleDB version and edition (license)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg

Edition = Literal["apache", "timescale"]


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """Versions and TimescaleDB edition of one database."""

    server_version: str
    server_version_num: int
    timescaledb_version: str | None  # None: extension not created in this database
    license: str | None  # timescaledb.license: "apache" or "timescale"; None: library not loaded

    @property
    def edition(self) -> Edition:
        """ "timescale" (TSL: continuous aggregates, compression, policies) or "apache"."""
        return "timescale" if self.license == "timescale" else "apache"

    @property
    def has_tsl(self) -> bool:
        """True when TSL features (continuous aggregates, compression, jobs) are available."""
        return self.edition == "timescale"


def read_server_info(conn: psycopg.Connection[Any]) -> ServerInfo:
    """Ask the server; needs no privilege and changes nothing."""
    row = conn.execute(
        "SELECT current_setting('server_version'),"
        " current_setting('server_version_num')::int,"
        " (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
        " current_setting('timescaledb.license', true)"
    ).fetchone()
    assert row is not None
    return ServerInfo(
        server_version=str(row[0]).split(" ")[0],
        server_version_num=int(row[1]),
        timescaledb_version=row[2],
        license=row[3] or None,
    )


def ensure_timescaledb(conn: psycopg.Connection[Any]) -> None:
    """Create the timescaledb extension in this database unless it exists already."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
