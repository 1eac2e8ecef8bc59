"""The database's own scheduled jobs (TSL edition): how each policy job last ran, and how far
each candle aggregate's materialization lags (docs/metrics.md, "Database jobs").

Candles, compression and retention depend on TimescaleDB's job scheduler, whose failures are
silent: a refresh job that fails leaves the views right (they compute the rest from raw_trades
at query time) but ever slower, a compression job that fails lets the disk fill. So the reader
returns, per job of timescaledb_information.jobs, its last run status, failures in a row (the
scheduler's own count, _timescaledb_internal.bgw_job_stat.consecutive_failures, which also
drives its back-off), the totals and the last error (timescaledb_information.job_errors); and
per candle aggregate its watermark.

The watermark (_timescaledb_functions.cagg_watermark, what the aggregates' real-time views use)
is the start of the first bucket not materialized, which is the END of the newest materialized
candle: the `ts` the candle views stamp it with. The lag reported is now() minus that end. It
also grows while no trade arrives (nothing new to materialize) and includes the refresh
policy's end_offset by design.

Jobs run from a session (`CALL run_job(id)`) do not change job_stats: the job statistics are
the scheduler's. On the Apache edition there are no policy jobs and no continuous aggregates:
the reader returns nothing. A database without the views (no extension) reads as nothing too.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

LICENSE = b"SELECT current_setting('timescaledb.license', true)"
# One row per job, its statistics (none before its first scheduled run) and its last error.
JOBS = b"""
SELECT
    j.job_id,
    j.proc_name::TEXT,
    coalesce(j.hypertable_name::TEXT, ''),
    s.last_run_status,
    coalesce(b.consecutive_failures, 0),
    coalesce(s.total_failures, 0),
    coalesce(s.total_successes, 0),
    s.last_run_started_at,
    CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END,
    j.next_start,
    j.scheduled,
    e.err_message
FROM timescaledb_information.jobs AS j
LEFT JOIN timescaledb_information.job_stats AS s ON j.job_id = s.job_id
LEFT JOIN _timescaledb_internal.bgw_job_stat AS b ON j.job_id = b.job_id
LEFT JOIN LATERAL (
    SELECT x.err_message
    FROM timescaledb_information.job_errors AS x
    WHERE x.job_id = j.job_id
    ORDER BY x.start_time DESC
    LIMIT 1
) AS e ON TRUE
ORDER BY j.job_id
"""
# Per candle aggregate, finest first: the end of its newest materialized candle (NULL: none
# yet; an empty aggregate's watermark is the earliest time TimescaleDB has) and the lag.
LAGS = b"""
SELECT
    t.aggregate_name,
    w.until,
    extract(EPOCH FROM now() - w.until)::FLOAT8
FROM candle_timeframes AS t
INNER JOIN _timescaledb_catalog.continuous_agg AS c
    ON t.aggregate_name = c.user_view_name
CROSS JOIN LATERAL (
    SELECT _timescaledb_functions.to_timestamp(
        _timescaledb_functions.cagg_watermark(c.mat_hypertable_id)
    ) AS ts
) AS m
CROSS JOIN LATERAL (
    SELECT CASE WHEN m.ts >= TIMESTAMPTZ '1970-01-01 00:00:00+00' THEN m.ts END AS until
) AS w
ORDER BY t.sort_order
"""

# proc_name -> the kind shown and used for readiness (other jobs: "other").
KINDS = {
    "policy_refresh_continuous_aggregate": "refresh",
    "policy_compression": "compression",
    "policy_retention": "retention",
}
# Kinds whose failure makes the service report itself degraded (/readyz).
DEGRADING_KINDS = frozenset({"refresh", "compression"})
MISSING = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName)
FAILED = "Failed"  # job_stats.last_run_status of a failed run ("Success" otherwise)


@dataclass(frozen=True, slots=True)
class DbJob:
    """One scheduled job of the database and how the scheduler last ran it."""

    job_id: int
    proc: str  # proc_name: policy_refresh_continuous_aggregate, policy_compression, ...
    target: str  # hypertable, or the continuous aggregate's view name; "" for none
    last_run_status: str | None  # "Success", "Failed"; None: never run by the scheduler
    failures_in_a_row: int  # consecutive failed runs up to now (0 after a success)
    total_failures: int
    total_successes: int
    last_run_started_at: datetime | None
    last_success: datetime | None
    next_start: datetime | None
    scheduled: bool  # False: paused (alter_job scheduled => false)
    last_error: str | None  # err_message of its newest failed run, however old

    @property
    def kind(self) -> str:
        """refresh, compression, retention or other."""
        return KINDS.get(self.proc, "other")

    @property
    def failing(self) -> bool:
        """Its last scheduled run failed."""
        return self.last_run_status == FAILED

    @property
    def degrades(self) -> bool:
        """A failing refresh or compression job: the service is degraded while it fails."""
        return self.failing and self.kind in DEGRADING_KINDS


@dataclass(frozen=True, slots=True)
class CandleLag:
    """How far one candle aggregate's materialization is behind now."""

    aggregate: str  # the continuous aggregate's view name, e.g. candles_1m_agg
    materialized_until: datetime | None  # end (ts) of its newest materialized candle; None: none
    lag_seconds: float | None  # now() - materialized_until; None when nothing is materialized


@dataclass(frozen=True, slots=True)
class DbJobsSnapshot:
    """What one read found; `read_at` is the database's now(), `read_mono` this process's
    time.monotonic() then (ages without comparing two machines' clocks)."""

    jobs: tuple[DbJob, ...]
    lags: tuple[CandleLag, ...]
    read_at: datetime
    read_mono: float = field(default_factory=time.monotonic)
    # (exchange, gaps of ingest_gaps not filled), both editions; read here because this is the
    # service's one periodic read of the database's state
    open_gaps: tuple[tuple[str, int], ...] = ()

    @property
    def degrading(self) -> tuple[DbJob, ...]:
        """The failing refresh and compression jobs."""
        return tuple(j for j in self.jobs if j.degrades)


def _job(row: tuple[Any, ...]) -> DbJob:
    return DbJob(
        job_id=int(row[0]),
        proc=str(row[1]),
        target=str(row[2]),
        last_run_status=row[3],
        failures_in_a_row=int(row[4]),
        total_failures=int(row[5]),
        total_successes=int(row[6]),
        last_run_started_at=row[7],
        last_success=row[8],
        next_start=row[9],
        scheduled=bool(row[10]),
        last_error=row[11],
    )


def _lag(row: tuple[Any, ...]) -> CandleLag:
    return CandleLag(str(row[0]), row[1], None if row[2] is None else float(row[2]))


OPEN_GAPS = b"SELECT exchange, count(*) FROM ingest_gaps WHERE filled_at IS NULL GROUP BY exchange ORDER BY 1"


def _is_tsl(row: tuple[Any, ...] | None) -> bool:
    return row is not None and row[0] == "timescale"


async def read_db_jobs(conn: psycopg.AsyncConnection[Any]) -> DbJobsSnapshot:
    """The jobs and candle lags of the database `conn` is in; empty on Apache, and what is
    missing (no extension, not migrated) reads as none. `conn` must be in autocommit (a missing
    relation must not abort the next query). psycopg.Error when the database fails the read
    (down, no privilege).
    """
    cur = await conn.execute(b"SELECT now()")
    now = await cur.fetchone()
    assert now is not None
    gaps: tuple[tuple[str, int], ...] = ()
    with contextlib.suppress(*MISSING):  # not migrated yet: no ingest_gaps
        cur = await conn.execute(OPEN_GAPS)
        gaps = tuple((str(r[0]), int(r[1])) for r in await cur.fetchall())
    cur = await conn.execute(LICENSE)
    if not _is_tsl(await cur.fetchone()):
        return DbJobsSnapshot((), (), now[0], open_gaps=gaps)
    jobs: tuple[DbJob, ...] = ()
    lags: tuple[CandleLag, ...] = ()
    with contextlib.suppress(*MISSING):  # no extension in this database
        cur = await conn.execute(JOBS)
        jobs = tuple(_job(r) for r in await cur.fetchall())
    with contextlib.suppress(*MISSING):  # not migrated yet: no candle_timeframes
        cur = await conn.execute(LAGS)
        lags = tuple(_lag(r) for r in await cur.fetchall())
    return DbJobsSnapshot(jobs, lags, now[0], open_gaps=gaps)


def read_db_jobs_sync(conn: psycopg.Connection[Any]) -> DbJobsSnapshot:
    """read_db_jobs() on a synchronous connection (the CLI)."""
    now = conn.execute(b"SELECT now()").fetchone()
    assert now is not None
    if not _is_tsl(conn.execute(LICENSE).fetchone()):
        return DbJobsSnapshot((), (), now[0])
    jobs: tuple[DbJob, ...] = ()
    lags: tuple[CandleLag, ...] = ()
    with contextlib.suppress(*MISSING):
        jobs = tuple(_job(r) for r in conn.execute(JOBS).fetchall())
    with contextlib.suppress(*MISSING):
        lags = tuple(_lag(r) for r in conn.execute(LAGS).fetchall())
    return DbJobsSnapshot(jobs, lags, now[0])
