"""What `tcpd run` runs: every collector of every exchange file, one writer, one process.

Start order: writer (opens its pool without waiting for the database) -> gap fillers
(ingest.history, one per exchange) -> collectors -> instrument loaders (ingest.instruments: in
the background, never fatal) -> status loop.
Stop order, each step with a timeout: instrument loaders -> status loop -> collectors (sockets
closed, frames already received still parsed and put) -> gap fillers (fills in progress stop,
their gaps stay open for the next start) -> final status write -> writer
(drains its queue, commits, closes its pool). SIGINT/SIGTERM trigger the stop; a second
SIGINT/SIGTERM cuts the remaining steps short (rows not committed by then are counted and
logged as lost). The exit code is 0 when everything received was committed, 1 otherwise.

No step of the stop waits without a bound, and none relies on a task honouring
cancellation: Python 3.11's asyncio.wait_for() returns normally, swallowing the
cancellation, when the awaited call finishes in the same loop turn as the cancel, which
once left `tcpd run` looping in its status task forever after SIGTERM. So loops end on a
flag as well as on cancel, timeouts use asyncio.timeout() (no inner task), and every wait
for a task has a timeout after which the stop goes on without it.

One collector per enabled trading pair, each with its own connection(s): the per-pair
status/health API stays literal, a slow or failing pair does not disturb the others,
and the hot loop is the same either way (one frame -> parse -> put).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ingest.collector import BaseDataCollector, CollectorManager, ExchangeFactory
from ingest.collector.continuity import TradeContinuity
from ingest.collector.from_config import collector_configs
from ingest.config import DatabaseFile, ExchangeFile, read_exchange_credentials
from ingest.errors import ConfigError, TcpdError
from ingest.exchanges.registry import get_venue
from ingest.history.from_config import gap_fillers
from ingest.history.gapfill import GapFiller
from ingest.model import DataType
from ingest.redact import redact_text
from ingest.storage import CollectorStatusRow, CopyWriter
from ingest.storage.candle_refresh import CandleRefresher
from ingest.storage.dead_letter_retention import DeadLetterRetention

if TYPE_CHECKING:
    from ingest.instruments.refresher import InstrumentRefresher
    from ingest.metrics.commits import CommitMetrics
    from ingest.metrics.endpoints import Endpoints

logger = logging.getLogger(__name__)

COLLECTORS_STOP_TIMEOUT = 20.0
STATUS_WRITE_TIMEOUT = 5.0
WRITER_STOP_TIMEOUT = 60.0
# How long a task cancelled by the stop (timed out, or cut short by a second signal) gets
# to unwind before the stop goes on without it.
CANCEL_GRACE = 2.0
# What writer.stop() may take beyond its flush timeout: cancelling its workers and closing
# the pool (psycopg_pool's close() waits up to 5 s).
WRITER_CLOSE_GRACE = 10.0


def status_rows(
    collectors: Sequence[BaseDataCollector], writer: Mapping[str, Any] | None = None
) -> list[CollectorStatusRow]:
    """The collector_status rows describing `collectors` now; `writer` (CopyWriter.stats())
    adds the shared writer queue's fill to each status_json, under "writer"."""
    now = datetime.now(UTC)
    queue = None
    if writer is not None:
        queue = {key: writer[key] for key in ("queue_rows", "queue_capacity", "queue_fill")}
    rows = []
    for c in collectors:
        status = c.get_status()
        if queue is not None:
            status["writer"] = queue
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

    def __init__(self, database: DatabaseFile, exchanges: Sequence[ExchangeFile[Any]]) -> None:
        if not exchanges:
            raise ConfigError("no exchange config given: pass at least one --config file")
        names = [e.exchange for e in exchanges]
        self._database = database
        self._exchanges = list(exchanges)
        self._manager = CollectorManager()
        self._writer: CopyWriter | None = None
        self._fillers: dict[str, GapFiller] = {}
        self._status_task: asyncio.Task[None] | None = None
        self._instruments: list[InstrumentRefresher] = []  # built by start(), after the collectors
        self._retention_task: asyncio.Task[None] | None = None
        self._candle_task: asyncio.Task[None] | None = None
        self.dead_letter_retention = DeadLetterRetention(
            database.database.conninfo(), database.tables.dead_letters, database.dead_letters.retention_days
        )
        # Apache edition only (it ends at once on TSL): materialized candles, sql/0117.
        self.candle_refresher = CandleRefresher(
            database.database.conninfo(), database.candles.refresh_interval
        )
        self._endpoints: Endpoints | None = None
        self._commit_metrics: CommitMetrics | None = None
        self._stop_requested = asyncio.Event()
        self._closing = asyncio.Event()  # set when stop() begins: ends the status loop
        self._force = asyncio.Event()  # a second signal: cut the remaining stop steps short
        logger.debug("service configured for exchanges %s", names)

    @property
    def manager(self) -> CollectorManager:
        """The collectors of this service."""
        return self._manager

    async def start(self) -> None:
        """Start the writer, every collector and the periodic status writes."""
        await self._start_endpoints()  # first: an address in use stops the start at once
        for exchange in self._exchanges:
            # Registering the credentials masks them in every later log line.
            read_exchange_credentials(get_venue(exchange.exchange).credentials)
        writer = CopyWriter(
            self._database.database.conninfo(),
            self._database.tables,
            self._database.writer,
            spool=self._database.spool,
            pool=self._database.database,
        )
        self._fillers = gap_fillers(self._database.database.conninfo(), self._exchanges, writer)
        collectors = []
        for exchange in self._exchanges:
            for config in collector_configs(exchange):
                filler = self._fillers.get(config.exchange)
                continuity = None
                if filler is not None and DataType.TRADE in config.data_types:
                    continuity = TradeContinuity(filler, writer, config.exchange, config.symbol)
                collectors.append(ExchangeFactory.create_collector(config, writer, continuity))
        if not collectors:
            raise ConfigError("no enabled trading pair in the exchange config files")
        for collector in collectors:
            self._manager.add_collector(collector)
        await writer.start()
        self._writer = writer
        if self._commit_metrics is not None:
            writer.on_commit = self._commit_metrics.batch_committed
        for filler in self._fillers.values():
            await filler.start()
        await self._manager.start()
        # Imported here, not with this module: the instrument loaders bring the HTTP client
        # (httpcore, ~1.5 MB), which nothing before them needs (tests/test_memory_imports.py).
        from ingest.instruments.from_config import instrument_refreshers

        self._instruments = instrument_refreshers(self._database.database.conninfo(), self._exchanges)
        for refresher in self._instruments:  # loads at once, then on its schedule; never fatal
            await refresher.start()
        self._status_task = asyncio.create_task(self._status_loop(), name="tcpd-status")
        self._retention_task = asyncio.create_task(
            self.dead_letter_retention.run(self._closing), name="tcpd-dead-letter-retention"
        )
        self._candle_task = asyncio.create_task(self.candle_refresher.run(self._closing), name="tcpd-candles")
        logger.info(
            "running %d collector(s): %s", len(collectors), ", ".join(self._manager.list_collectors())
        )
        for collector in collectors:
            logger.info("%s", self._where(collector))

    async def _start_endpoints(self) -> None:
        http = self._database.http
        if http.listen is None:
            return
        # Imported only when serving: prometheus_client is not needed otherwise.
        from ingest.metrics.endpoints import Endpoints
        from ingest.metrics.exporter import service_registry

        registry, self._commit_metrics = service_registry(
            self._manager.collectors,
            lambda: None if self._writer is None else self._writer.stats(),
            lambda: {exchange: filler.stats for exchange, filler in self._fillers.items()},
        )
        endpoints = Endpoints(http.host, http.port, registry, self.readiness)
        try:
            await endpoints.start()
        except OSError as exc:
            raise ConfigError(
                f"http.listen {http.listen}: cannot listen there ({exc.strerror or exc}); "
                "set http.listen in the database config to a free address, or null for no endpoints"
            ) from None
        self._endpoints = endpoints
        logger.info("serving /metrics, /healthz and /readyz on http://%s:%d", http.host, endpoints.port)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready: the database answers and every collector that should run is healthy."""
        from ingest.metrics.endpoints import READY_TIMEOUT

        writer = self._writer
        database = writer is not None and await writer.database_reachable(READY_TIMEOUT)
        health = {c.name: c.get_health_status() for c in self._manager.collectors()}
        unhealthy = sorted(n for n, h in health.items() if h["should_be_running"] and not h["is_healthy"])
        detail = {"database_reachable": database, "unhealthy_collectors": unhealthy, "collectors": health}
        return database and bool(health) and not unhealthy, detail

    def _where(self, collector: BaseDataCollector) -> str:
        """One line for the start-up log: what a collector reads, from where, into what."""
        config = collector.config
        urls = [sub.url for sub in getattr(collector, "subscriptions", [])]
        tables = self._database.tables
        into = []
        if DataType.TRADE in config.data_types:
            into.append(tables.raw_trades)
        if config.store_raw_data or any(d is not DataType.TRADE for d in config.data_types):
            into.append(tables.market_data)
        kinds = ", ".join(d.value for d in config.data_types)
        database = self._database.database.url  # str() masks its password (SecretDsn)
        return f"{collector.name}: {kinds} from {', '.join(urls)} -> {', '.join(into)} in {database}"

    async def stop(self) -> bool:
        """Stop reading, flush everything received, close the pool; True if nothing was lost.

        Bounded: at most about COLLECTORS_STOP_TIMEOUT + STATUS_WRITE_TIMEOUT +
        WRITER_STOP_TIMEOUT (plus a few seconds to close the pool), and much less when the
        database is up. `force_stop()` during it skips what is left (rows lost are counted).
        """
        self._closing.set()
        endpoints, self._endpoints = self._endpoints, None
        if endpoints is not None:
            await endpoints.close()
        await asyncio.gather(*(refresher.stop() for refresher in self._instruments))
        status_task, self._status_task = self._status_task, None
        if status_task is not None:
            status_task.cancel()
            _done, pending = await asyncio.wait({status_task}, timeout=STATUS_WRITE_TIMEOUT + CANCEL_GRACE)
            if pending:
                logger.error("status loop ignored cancellation; stopping without it")
        retention_task, self._retention_task = self._retention_task, None
        if retention_task is not None:
            # It ends on the _closing flag; a prune still running is cancelled (the next start prunes).
            retention_task.cancel()
            await asyncio.wait({retention_task}, timeout=CANCEL_GRACE)
        candle_task, self._candle_task = self._candle_task, None
        if candle_task is not None:  # the same; the views are right without its last run
            candle_task.cancel()
            await asyncio.wait({candle_task}, timeout=CANCEL_GRACE)
        collectors = asyncio.create_task(self._manager.stop(), name="tcpd-stop-collectors")
        await self._step(collectors, COLLECTORS_STOP_TIMEOUT, "stopping the collectors")
        # Fills in progress stop here; their gaps stay recorded and open (the next start goes
        # on), and what they fetched is in the writer's queue, flushed below.
        await asyncio.gather(*(filler.stop() for filler in self._fillers.values()))
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
        if not self._force.is_set():
            await self._write_status()
        stopping = asyncio.create_task(writer.stop(WRITER_STOP_TIMEOUT), name="tcpd-stop-writer")
        flushed = await self._step(
            stopping, WRITER_STOP_TIMEOUT + WRITER_CLOSE_GRACE, "flushing the writer", cancel=False
        )
        if not flushed:
            # abort() makes writer.stop() give up waiting now and count what it could not write.
            writer.abort()
            await self._step(stopping, WRITER_CLOSE_GRACE, "closing the writer", force_ends=False)
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

    async def _step(
        self,
        task: asyncio.Task[None],
        timeout: float,  # noqa: ASYNC109 - a deadline for someone else's task
        what: str,
        *,
        cancel: bool = True,
        force_ends: bool = True,
    ) -> bool:
        """Wait for one stop step; True if it finished in time without an error (logged).

        A second signal (when `force_ends`) or the timeout ends the wait; the task is then
        cancelled (when `cancel`) and given CANCEL_GRACE seconds to unwind.
        """
        waits: set[asyncio.Future[Any]] = {task}
        forced = asyncio.ensure_future(self._force.wait())
        if force_ends:
            waits.add(forced)
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forced.cancel()
        if task.done():
            if task.cancelled():
                return False
            exc = task.exception()
            if exc is not None:
                # Logged, not raised: the steps after this one (the flush above all) must run.
                logger.error("%s failed: %s: %s", what, type(exc).__name__, redact_text(str(exc)))
                return False
            return True
        why = (
            "cut short by a second signal" if self._force.is_set() and force_ends else f"over {timeout:.0f}s"
        )
        logger.error("%s: %s", what, why)
        if cancel:
            task.cancel()
            _done, pending = await asyncio.wait({task}, timeout=CANCEL_GRACE)
            if pending:
                logger.error("%s: ignored cancellation; going on without it", what)
        return False

    def request_stop(self) -> None:
        """Ask `run()` to stop (signal handlers call this); a second call forces the stop."""
        if self._stop_requested.is_set():
            self.force_stop()
        self._stop_requested.set()

    def force_stop(self) -> None:
        """Cut a running stop short: stop waiting for sockets and the database."""
        if not self._force.is_set():
            logger.warning(
                "second stop signal: not waiting any longer; rows not yet written are counted as lost"
            )
        self._force.set()

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
        # Ends on the flag too, not only on cancel (see the module docstring).
        while not self._closing.is_set():
            await self._write_status()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._closing.wait()

    async def _write_status(self) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            rows = status_rows(self._manager.collectors(), writer.stats())
            async with asyncio.timeout(STATUS_WRITE_TIMEOUT):
                await writer.write_status(rows)
        except TimeoutError:
            logger.warning("collector status write timed out after %.0fs", STATUS_WRITE_TIMEOUT)
        except TcpdError as exc:
            logger.warning("collector status not written: %s", exc)
