"""What `tcpd run` runs: every collector of every exchange file, one writer, one process.

Start order: writer (opens its pool without waiting for the database) -> collectors ->
status loop. Stop order, each step with a timeout: status loop -> collectors (sockets
closed, frames already received still parsed and put) -> final status write -> writer
(drains its queue, commits, closes its pool). SIGINT/SIGTERM trigger the stop; the
exit code is 0 when everything received was committed, 1 otherwise.

One collector per enabled trading pair, each with its own connection(s): the per-pair
status/health API stays literal, a slow or failing pair does not disturb the others,
and the hot loop is the same either way (one frame -> parse -> put).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from datetime import UTC, datetime

from ingest.collector import BaseDataCollector, CollectorManager, ExchangeFactory
from ingest.collector.from_config import collector_configs
from ingest.config import DatabaseFile, ExchangeFile, read_exchange_credentials
from ingest.errors import ConfigError, TcpdError
from ingest.storage import CollectorStatusRow, CopyWriter

logger = logging.getLogger(__name__)

COLLECTORS_STOP_TIMEOUT = 20.0
STATUS_WRITE_TIMEOUT = 5.0
WRITER_STOP_TIMEOUT = 60.0


def status_rows(collectors: Sequence[BaseDataCollector]) -> list[CollectorStatusRow]:
    """The collector_status rows describing `collectors` now."""
    now = datetime.now(UTC)
    rows = []
    for c in collectors:
        status = c.get_status()
        rows.append(
            CollectorStatusRow(
                collector=c.name,
                exchange=c.exchange,
                symbol=c.symbol,
                status=str(status["status"]),
                status_json=status,
                health_json=c.get_health_status(),
                updated_at=now,
            )
        )
    return rows


class IngestService:
    """The whole ingest process; build it, then `await run()` (or start()/stop())."""

    def __init__(self, database: DatabaseFile, exchanges: Sequence[ExchangeFile]) -> None:
        if not exchanges:
            raise ConfigError("no exchange config given: pass at least one --config file")
        names = [e.exchange for e in exchanges]
        self._database = database
        self._exchanges = list(exchanges)
        self._manager = CollectorManager()
        self._writer: CopyWriter | None = None
        self._status_task: asyncio.Task[None] | None = None
        self._stop_requested = asyncio.Event()
        logger.debug("service configured for exchanges %s", names)

    @property
    def manager(self) -> CollectorManager:
        """The collectors of this service."""
        return self._manager

    async def start(self) -> None:
        """Start the writer, every collector and the periodic status writes."""
        for exchange in self._exchanges:
            # Registering the credentials masks them in every later log line.
            read_exchange_credentials(exchange.exchange.upper())
        writer = CopyWriter(self._database.database.conninfo(), self._database.tables, self._database.writer)
        collectors = [
            ExchangeFactory.create_collector(config, writer)
            for exchange in self._exchanges
            for config in collector_configs(exchange)
        ]
        if not collectors:
            raise ConfigError("no enabled trading pair in the exchange config files")
        for collector in collectors:
            self._manager.add_collector(collector)
        await writer.start()
        self._writer = writer
        await self._manager.start()
        self._status_task = asyncio.create_task(self._status_loop(), name="tcpd-status")
        logger.info(
            "running %d collector(s): %s", len(collectors), ", ".join(self._manager.list_collectors())
        )

    async def stop(self) -> bool:
        """Stop reading, flush everything received, close the pool; True if nothing was lost."""
        if self._status_task is not None:
            self._status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._status_task
            self._status_task = None
        try:
            await asyncio.wait_for(self._manager.stop(), COLLECTORS_STOP_TIMEOUT)
        except TimeoutError:
            logger.error("collectors did not stop within %.0fs", COLLECTORS_STOP_TIMEOUT)
        for collector in self._manager.collectors():
            s = collector.stats
            logger.info(
                "final: %s received %d messages, %d rows, %d errors",
                collector.name,
                s.messages_received,
                s.rows_received,
                s.errors,
            )
        writer = self._writer
        if writer is None:
            return True
        await self._write_status()
        await writer.stop(WRITER_STOP_TIMEOUT)
        self._writer = None
        lost = writer.unwritten + sum(c.stats.rows_lost for c in self._manager.collectors())
        stats = writer.stats()
        logger.info(
            "writer stopped: rows written %s, duplicates skipped %d, not written %d",
            stats["rows_written"],
            stats["duplicates_skipped"],
            lost,
        )
        return lost == 0

    def request_stop(self) -> None:
        """Ask `run()` to stop (signal handlers call this)."""
        if self._stop_requested.is_set():
            logger.warning("already stopping")
        self._stop_requested.set()

    async def run(self) -> int:
        """Start, wait for SIGINT/SIGTERM, stop; returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stop_requested.wait()
            logger.info("stop requested: finishing what was received")
        finally:
            ok = await self.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return 0 if ok else 1

    async def _status_loop(self) -> None:
        interval = self._database.writer.status_interval
        while True:
            await self._write_status()
            await asyncio.sleep(interval)

    async def _write_status(self) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            rows = status_rows(self._manager.collectors())
            await asyncio.wait_for(writer.write_status(rows), STATUS_WRITE_TIMEOUT)
        except TimeoutError:
            logger.warning("collector status write timed out after %.0fs", STATUS_WRITE_TIMEOUT)
        except TcpdError as exc:
            logger.warning("collector status not written: %s", exc)
