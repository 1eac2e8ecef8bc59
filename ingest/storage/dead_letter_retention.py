"""Dead-letter retention: delete dead letters older than the configured days, every hour.

dead_letters is a plain table (it needs its primary key), so neither a TimescaleDB
retention policy nor drop_chunks applies; sql/0107_dead_letter_retention.sql defines
tcpd_prune_dead_letters(keep, table), and the service runs it at start and then hourly,
on both editions. A failed run (database down) is logged and tried again next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import psycopg

from ingest.db.connection import connect
from ingest.errors import DatabaseError
from ingest.redact import redact_text

logger = logging.getLogger(__name__)

PRUNE_INTERVAL = 3600.0  # seconds between two prunes
PRUNE = b"SELECT tcpd_prune_dead_letters(%s, %s::regclass)"


class DeadLetterRetention:
    """Keeps dead letters for `days`; `run()` prunes now and every `interval` seconds."""

    def __init__(self, conninfo: str, table: str, days: int, interval: float = PRUNE_INTERVAL) -> None:
        self._conninfo = conninfo
        self._table = table
        self.keep = timedelta(days=days)
        self._interval = interval
        self.deleted = 0  # dead letters deleted since start
        self.runs = 0  # prunes that completed

    async def prune_once(self) -> int:
        """Delete the dead letters older than the retention; their count. DatabaseError on failure."""
        conn = await connect(self._conninfo, autocommit=True)
        try:
            cur = await conn.execute(PRUNE, (self.keep, self._table))
            row = await cur.fetchone()
        except psycopg.Error as exc:
            raise DatabaseError(f"dead-letter retention failed: {redact_text(str(exc)).strip()}") from None
        finally:
            await conn.close()
        deleted = int(row[0]) if row else 0
        self.deleted += deleted
        self.runs += 1
        if deleted:
            logger.info("deleted %d dead letters older than %d days", deleted, self.keep.days)
        return deleted

    async def run(self, stop: asyncio.Event) -> None:
        """Prune now and every interval until `stop` is set (or the task is cancelled)."""
        while not stop.is_set():
            try:
                await self.prune_once()
            except DatabaseError as exc:
                logger.warning("dead letters not pruned, trying again in %.0f s: %s", self._interval, exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await stop.wait()
