"""The service's watch over the database's scheduled jobs: read them (ingest.storage.db_jobs)
now and every `interval` seconds, keep the latest snapshot for /metrics and /readyz, and log
what changes.

Each read opens its own short connection (the writer's pool stays the writer's) and is bounded
by READ_TIMEOUT. A database that cannot be read is logged once per stretch, with the recovery;
the last snapshot is kept meanwhile (the writer's outage metrics and /readyz's
database_reachable say the database is down). A job that starts failing is logged once, with its
error, and once more when it runs again successfully. On the Apache edition a read finds no
jobs (it asks the edition and stops there); on TSL the jobs of a schema migrated later show up
at the next read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from ingest.db.connection import connect
from ingest.errors import DatabaseError
from ingest.redact import redact_text
from ingest.storage.db_jobs import DbJob, DbJobsSnapshot, read_db_jobs

logger = logging.getLogger(__name__)

WATCH_INTERVAL = 30.0  # seconds between two reads
READ_TIMEOUT = 10.0  # seconds one read (connect included) may take


class DbJobsWatcher:
    """Owns no task itself: the service runs `run(stop)` as one of its tasks."""

    def __init__(self, conninfo: str, interval: float = WATCH_INTERVAL) -> None:
        self._conninfo = conninfo
        self._interval = interval
        self.snapshot: DbJobsSnapshot | None = None  # the latest successful read
        self.reads = 0  # successful reads since start
        self._unreadable = False  # the last read failed (logged once per stretch)
        self._failing: set[int] = set()  # job ids logged as failing

    async def read_once(self) -> DbJobsSnapshot:
        """One read; it becomes `snapshot`. DatabaseError (or TimeoutError) on failure."""
        async with asyncio.timeout(READ_TIMEOUT):
            conn = await connect(self._conninfo, autocommit=True)
            try:
                snapshot = await read_db_jobs(conn)
            except psycopg.Error as exc:
                reason = redact_text(str(exc)).strip()
                raise DatabaseError(f"cannot read the database's jobs: {reason}") from None
            finally:
                await conn.close()
        self.snapshot = snapshot
        self.reads += 1
        self._log_changes(snapshot.jobs)
        return snapshot

    def _log_changes(self, jobs: tuple[DbJob, ...]) -> None:
        failing = {j.job_id for j in jobs if j.failing}
        for job in jobs:
            if job.failing and job.job_id not in self._failing:
                logger.warning(
                    "database job %d (%s%s) failed %d time(s) in a row: %s",
                    job.job_id,
                    job.proc,
                    f" on {job.target}" if job.target else "",
                    job.failures_in_a_row,
                    job.last_error or "no error recorded",
                )
            elif job.job_id in self._failing and not job.failing:
                logger.info("database job %d (%s) runs again", job.job_id, job.proc)
        self._failing = failing

    async def run(self, stop: asyncio.Event) -> None:
        """Read now and every interval until `stop` is set (or the task is cancelled)."""
        while not stop.is_set():
            try:
                await self.read_once()
            except (DatabaseError, TimeoutError) as exc:
                reason = str(exc) or f"no answer within {READ_TIMEOUT:.0f} s"
                if not self._unreadable:
                    logger.warning("database jobs not read, trying every %.0f s: %s", self._interval, reason)
                else:
                    logger.debug("database jobs still not read: %s", reason)
                self._unreadable = True
            else:
                if self._unreadable:
                    logger.info("database jobs read again")
                self._unreadable = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await stop.wait()
