"""The database config file: connection URL, pool sizes, table names, writer tuning."""

from __future__ import annotations

from typing import Annotated

import psycopg.conninfo
from pydantic import Field, field_validator, model_validator

from ingest.config.base import StrictModel
from ingest.config.http import HttpSettings
from ingest.config.secrets import SecretDsn
from ingest.config.spool import SpoolSettings
from ingest.redact import redact_text

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
TableName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]

# The writer's pool serves WRITER_WORKERS workers (each keeps one connection) plus the
# status writes and the spool's loss records: it needs at least this many connections.
WRITER_WORKERS = 2
MIN_POOL_CONNECTIONS = WRITER_WORKERS + 1
DEFAULT_POOL_TIMEOUT = 2.0


class DatabaseSettings(StrictModel):
    """How to reach PostgreSQL/TimescaleDB and the writer's connection pool (psycopg_pool):
    pool_size connections kept open (min_size), up to pool_size + max_overflow (max_size);
    pool_timeout seconds a request waits for a connection before the try counts as failed
    (timeout: how soon an outage is noticed); a connection older than pool_recycle seconds
    is replaced (max_lifetime)."""

    url: SecretDsn
    pool_size: PositiveInt = 10
    max_overflow: NonNegativeInt = 20
    pool_timeout: PositiveFloat = DEFAULT_POOL_TIMEOUT
    pool_recycle: PositiveFloat = 3600.0

    @model_validator(mode="after")
    def _room_for_the_writer(self) -> DatabaseSettings:
        if self.max_connections < MIN_POOL_CONNECTIONS:
            raise ValueError(
                f"database.pool_size + database.max_overflow is {self.max_connections}; the writer "
                f"needs at least {MIN_POOL_CONNECTIONS} connections ({WRITER_WORKERS} workers and one "
                "for status writes): raise max_overflow"
            )
        return self

    @field_validator("url", mode="before")
    @classmethod
    def _parsable_dsn(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("an empty connection string")
            try:
                psycopg.conninfo.conninfo_to_dict(value)
            except psycopg.Error as exc:
                # libpq's message may quote the string, password included.
                reason = redact_text(str(exc)).strip()
                raise ValueError(f"a connection string libpq can parse ({reason})") from None
        return value

    def conninfo(self) -> str:
        """The real connection string, password included: pass it to ingest.db.connection only."""
        return self.url.get_secret_value()

    @property
    def max_connections(self) -> int:
        """The pool's upper bound: pool_size plus max_overflow."""
        return self.pool_size + self.max_overflow


class TableNames(StrictModel):
    """Names of the tables the service writes; they must match what the migrations created."""

    market_data: TableName = "market_data"
    raw_trades: TableName = "raw_trades"
    collector_status: TableName = "collector_status"
    dead_letters: TableName = "dead_letters"


class WriterSettings(StrictModel):
    """Tuning of the COPY writer: batch size and delay, queue bound, retry backoff."""

    batch_max_rows: PositiveInt = 10000
    batch_max_delay: PositiveFloat = 0.02
    queue_max_rows: PositiveInt = 200_000
    retry_initial_delay: PositiveFloat = 0.5
    retry_max_delay: PositiveFloat = 30.0
    status_interval: PositiveFloat = 5.0
    # A batch not committed by then counts as an outage: its connection is dropped and the
    # batch retried on a new one (a half-open connection would otherwise hang it for good).
    batch_deadline: Annotated[float, Field(ge=1, le=3600)] = 30.0


class DeadLetterSettings(StrictModel):
    """How long the dead_letters table keeps what collectors and the writer refused."""

    retention_days: PositiveInt = 30


class CandleSettings(StrictModel):
    """Apache edition: how often the service materializes candles (docs/candles.md)."""

    # Seconds between two refreshes (1 s to 1 day). The views are right either way; a longer
    # interval leaves more for queries to compute from raw_trades.
    refresh_interval: Annotated[float, Field(ge=1, le=86400)] = 10.0


class DatabaseFile(StrictModel):
    """The whole database config file (config/database.json)."""

    database: DatabaseSettings
    tables: TableNames = TableNames()
    writer: WriterSettings = WriterSettings()
    spool: SpoolSettings = SpoolSettings()
    dead_letters: DeadLetterSettings = DeadLetterSettings()
    candles: CandleSettings = CandleSettings()
    http: HttpSettings = HttpSettings()
