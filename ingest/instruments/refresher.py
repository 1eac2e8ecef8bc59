"""InstrumentRefresher: load an exchange's instruments at start-up and every `interval` seconds.

One owned task per exchange. A failed load (exchange unreachable, rate limited past the retries,
database down) is logged and tried again after `retry_interval`, never fatal: trades are
collected meanwhile, and the volumes of a contract without a row read as spot volumes until its
row arrives (the views join at query time, so the candles are right as soon as it does).
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime

import psycopg

from ingest.db.connection import connect
from ingest.errors import TcpdError
from ingest.instruments.http import RestClient, RetryPolicy, get_json
from ingest.instruments.model import InstrumentRow, InstrumentSource
from ingest.instruments.store import store_instruments
from ingest.redact import redact_text

logger = logging.getLogger(__name__)

USER_AGENT = "tcpd-ingest (instrument metadata)"
STOP_TIMEOUT = 5.0


class InstrumentRefresher:
    """Loads one exchange's instruments into the database; explicit start()/stop()."""

    def __init__(
        self,
        conninfo: str,
        exchange: str,
        source: InstrumentSource,
        *,
        base_url: str | None = None,
        interval: float = 3600.0,
        retry_interval: float = 60.0,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._conninfo = conninfo
        self.exchange = exchange
        self._source = source
        self._base_url = base_url or source.default_base_url
        self._interval = interval
        self._retry_interval = min(retry_interval, interval)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._rng = random.Random()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.loaded = 0  # instruments stored by the last successful load
        self.last_success: datetime | None = None
        self.last_error: str | None = None

    async def fetch(self) -> list[InstrumentRow]:
        """Every instrument the source lists, from the exchange (no database)."""
        rows: list[InstrumentRow] = []
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        async with RestClient(self._base_url, timeout=self._timeout, headers=headers) as client:
            for request in self._source.requests():
                payload = await get_json(client, request.path, request.params, self._retry, self._rng)
                rows.extend(self._source.parse(payload))
        return rows

    async def refresh_once(self) -> int:
        """Fetch and store every instrument now; the number stored. Raises on failure."""
        rows = await self.fetch()
        conn = await connect(self._conninfo)
        try:
            await store_instruments(conn, rows)
        except psycopg.Error as exc:
            raise TcpdError(
                f"storing {len(rows)} {self.exchange} instruments failed: {redact_text(str(exc))}"
            ) from None
        finally:
            await conn.close()
        self.loaded, self.last_success, self.last_error = len(rows), datetime.now(UTC), None
        logger.info("stored %d %s instruments", len(rows), self.exchange)
        return len(rows)

    async def start(self) -> None:
        """Start loading in the background (the first load begins at once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"tcpd-instruments-{self.exchange}")

    async def stop(self) -> None:
        """Cancel the schedule and any load in progress (its transaction rolls back); bounded."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        _done, pending = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        if pending:
            logger.error("%s instrument loader ignored cancellation; stopping without it", self.exchange)

    async def _run(self) -> None:
        while True:
            ok = await self._load()
            await asyncio.sleep(self._interval if ok else self._retry_interval)

    async def _load(self) -> bool:
        try:
            await self.refresh_once()
        except TcpdError as exc:
            self.last_error = str(exc)
            logger.warning(
                "loading %s instruments failed (%s); next try in %.0f s",
                self.exchange,
                exc,
                self._retry_interval,
            )
            return False
        return True
