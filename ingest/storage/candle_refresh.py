"""Candle refresh: Python says when, SQL computes (docs/candles.md, "Materialized candles on the
Apache edition").

- Apache edition: `CandleRefresher.run()` (started by the service) calls
  tcpd_refresh_apache_candles() (sql/0117_candles_materialized.apache.sql) at start and every
  `candles.refresh_interval` seconds. Each run materializes the candles closed since the last one
  and the buckets of rows the last one did not see (late, backfilled). The views are right
  whether or not it ran (they compute what is not materialized from raw_trades), so the interval
  only trades refresh work for query time. A failed run (database down) is logged and retried.
- Either edition: `refresh_candles(conn, start, end)` after writing history into [start, end)
  (`tcpd backfill`, `tcpd candles refresh`). Apache: the same SQL function, which also rebuilds
  every bucket of the range (so it also follows rows deleted there). TSL:
  refresh_continuous_aggregate per timeframe, finest first, each window widened to whole
  intervals, cut at the interval in progress and, where the timeframe's source has a retention
  policy, started no earlier than that retention keeps data plus one day (the margin of sql/0103):
  refreshing where the source rows are gone would delete the candles built from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from ingest.db.connection import connect
from ingest.db.edition import read_server_info
from ingest.errors import DatabaseError
from ingest.redact import redact_text

logger = logging.getLogger(__name__)

REFRESH_APACHE = b"SELECT candle_timeframe, candles_written FROM tcpd_refresh_apache_candles(%s, %s)"
TIMEFRAMES = b"""
SELECT t.timeframe, t.width, t.aggregate_name, f.aggregate_name
FROM candle_timeframes AS t
LEFT JOIN candle_timeframes AS f ON t.built_from = f.timeframe
ORDER BY t.sort_order
"""
RETENTIONS = b"SELECT relation, drop_after FROM tcpd_candle_policies WHERE kind = 'retention'"
LICENSE = b"SELECT current_setting('timescaledb.license', true)"
REFRESH_AGGREGATE = b"CALL refresh_continuous_aggregate(%s::REGCLASS, %s::TIMESTAMPTZ, %s::TIMESTAMPTZ)"
# What 0103's guard keeps between a retention and a refresh window (tcpd_retention_margin()).
RETENTION_MARGIN = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Window:
    """One continuous aggregate refreshed over [start, end)."""

    aggregate: str
    start: datetime
    end: datetime


def floor_to(ts: datetime, width: timedelta, origin: datetime) -> datetime:
    """Start of the interval of `width` (aligned on `origin`) that holds `ts`."""
    return ts - (ts - origin) % width


def tsl_windows(
    start: datetime,
    end: datetime,
    now: datetime,
    timeframes: list[tuple[str, timedelta, str, str | None]],
    retentions: dict[str, timedelta],
) -> list[Window]:
    """Per (timeframe, width, aggregate, source aggregate or None for raw_trades), finest first:
    [start, end) widened to whole intervals, cut at the interval in progress and at what the
    source's retention keeps (plus the margin). Windows left empty are skipped."""
    origin = datetime(1970, 1, 1, tzinfo=start.tzinfo)
    windows = []
    for _tf, width, aggregate, source in timeframes:
        lo = floor_to(start, width, origin)
        hi = floor_to(end, width, origin)
        if hi < end:
            hi += width
        hi = min(hi, floor_to(now, width, origin))
        keep = retentions.get(source or "raw_trades")
        if keep is not None:
            oldest = now - keep + RETENTION_MARGIN
            lo = max(lo, floor_to(oldest, width, origin) + width)
        if hi > lo:
            windows.append(Window(aggregate, lo, hi))
    return windows


def refresh_candles(
    conn: psycopg.Connection[Any], start: datetime | None = None, end: datetime | None = None
) -> dict[str, int] | list[Window]:
    """Make the candles over [start, end) match raw_trades now, on either edition.

    `conn` must be in autocommit (refresh_continuous_aggregate refuses a transaction block).
    Apache: candles written per timeframe (start/end None: only the incremental run).
    TSL: the windows refreshed (start and end are required). DatabaseError on failure.
    """
    try:
        if not read_server_info(conn).has_tsl:
            rows = conn.execute(REFRESH_APACHE, (start, end)).fetchall()
            return {str(tf): int(n) for tf, n in rows}
        if start is None or end is None:
            raise ValueError("refresh_candles on the TSL edition needs start and end")
        now_row = conn.execute("SELECT now()").fetchone()
        assert now_row is not None
        timeframes = [(str(a), b, str(c), d) for a, b, c, d in conn.execute(TIMEFRAMES).fetchall()]
        retentions = {str(r): keep for r, keep in conn.execute(RETENTIONS).fetchall() if keep is not None}
        windows = tsl_windows(start, end, now_row[0], timeframes, retentions)
        for w in windows:
            conn.execute(REFRESH_AGGREGATE, (w.aggregate, w.start, w.end))
            logger.info("refreshed %s over [%s, %s)", w.aggregate, w.start, w.end)
        return windows
    except psycopg.Error as exc:
        raise DatabaseError(f"candle refresh failed: {redact_text(str(exc)).strip()}") from None


class CandleRefresher:
    """Apache edition: materializes candles now and every `interval` seconds (`run()`).

    The edition is asked on each run's connection until known, so a database that is down at
    start-up delays the first refresh but does not stop the loop; on TSL the loop ends at once
    (the continuous aggregates' policies refresh there).
    """

    def __init__(self, conninfo: str, interval: float) -> None:
        self._conninfo = conninfo
        self._interval = interval
        self.tsl = False  # set once the database answered that it runs the TSL edition
        self.runs = 0  # refreshes that completed
        self.candles_written = 0  # since start, every timeframe

    async def refresh_once(self) -> dict[str, int]:
        """One incremental refresh; candles written per timeframe ({} on TSL). DatabaseError on failure."""
        conn = await connect(self._conninfo, autocommit=True)
        try:
            cur = await conn.execute(LICENSE)
            row = await cur.fetchone()
            if row is not None and row[0] == "timescale":
                self.tsl = True
                return {}
            cur = await conn.execute(REFRESH_APACHE, (None, None))
            rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise DatabaseError(f"candle refresh failed: {redact_text(str(exc)).strip()}") from None
        finally:
            await conn.close()
        written = {str(tf): int(n) for tf, n in rows}
        self.runs += 1
        self.candles_written += sum(written.values())
        logger.debug("candles materialized: %s", written)
        return written

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh now and every interval until `stop` is set (or the task is cancelled)."""
        while not stop.is_set():
            try:
                await self.refresh_once()
            except DatabaseError as exc:
                logger.warning("candles not materialized, trying again in %.0f s: %s", self._interval, exc)
            if self.tsl:
                logger.debug("TSL edition: continuous aggregates refresh the candles, no refresh loop")
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await stop.wait()
