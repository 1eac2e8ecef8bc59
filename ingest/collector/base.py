"""BaseDataCollector: lifecycle, statistics, health and callbacks shared by every collector.

A subclass implements one coroutine, `_collect()`, that connects and reads until it is
cancelled (and reconnects on its own). The base class owns three tasks per running
collector: the collect task, the health task (restarts a collector that went silent)
and the callback task. `stop()` cancels all three and waits for them, with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

from ingest.collector.callbacks import CallbackDispatcher, DataCallback
from ingest.collector.params import CollectorParams
from ingest.collector.stats import CollectorStatistics, health_issues, silent_since, since, wall_iso
from ingest.errors import LoginRefused
from ingest.model import DataType, ExchangeCollectorConfig
from ingest.redact import redact_text

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
# A sink whose queue is at least this full is reported as backpressure in health issues.
PRESSURE_RATIO = 0.8
# A reader waiting in put() this long is reported as held up (shorter waits are routine).
HOLDUP_AFTER = 1.0


@runtime_checkable
class ReportsStats(Protocol):
    """What the collector reads from a sink to report backpressure (the CopyWriter has it)."""

    def stats(self) -> dict[str, Any]: ...


def sink_stats(sink: object) -> dict[str, Any]:
    """The sink's stats() ({} when it has none, or they fail: never break a health check)."""
    if not isinstance(sink, ReportsStats):
        return {}
    try:
        return sink.stats()
    except Exception:
        logger.debug("sink stats unavailable", exc_info=True)
        return {}


def sink_pressure(stats: dict[str, Any]) -> str | None:
    """A health issue sentence when the sink's queue is nearly full, else None."""
    try:
        rows = int(stats.get("queue_rows", 0))
        capacity = int(stats.get("queue_capacity", 0))
    except (TypeError, ValueError):
        return None
    issues = []
    if capacity > 0 and rows >= capacity * PRESSURE_RATIO:
        issues.append(f"writer backpressure: queue {rows}/{capacity} rows ({100 * rows // capacity}% full)")
    spool = stats.get("spool")
    if isinstance(spool, dict):
        issues += spool_issues(spool)
    return "; ".join(issues) or None


def spool_issues(spool: dict[str, Any]) -> list[str]:
    """Health sentences for the writer's disk spool (ingest.storage.spool stats)."""
    issues = []
    if spool.get("bytes", 0) > 0 and spool.get("segments", 0) > 0:
        issues.append(
            f"writer spool in use: {spool['bytes']} bytes on disk, oldest row spooled "
            f"{spool.get('oldest_row_age', 0.0):.0f}s ago ({spool.get('oldest_row_time')})"
        )
    if spool.get("rows_lost", 0) > 0:
        issues.append(
            f"rows lost: {spool['rows_lost']} (spool full; ranges in ingest_gaps, `tcpd gaps`; "
            f"{spool.get('loss_ranges_unrecorded', 0)} not recorded yet)"
        )
    return issues


def holdup(stats: dict[str, Any], reader_waiting: float | None) -> str | None:
    """Why reading is held up on our side (None: it is not, so silence is the exchange's).

    A reader that waits in put() for room in a full writer queue reads nothing: the data
    and heartbeat clocks stop, but restarting would only drop what it holds and what its
    connection buffered. `reader_waiting`: seconds the longest-waiting reader has waited.
    """
    parts = []
    if reader_waiting is not None and reader_waiting >= HOLDUP_AFTER:
        parts.append(f"a reader has waited {reader_waiting:.1f}s for room in the writer queue")
    if stats.get("outage"):
        parts.append(
            f"database writes failing for {float(stats.get('outage_seconds') or 0.0):.0f}s "
            f"({stats.get('last_error') or 'no error text'})"
        )
    return "writer backpressure / database unreachable: " + "; ".join(parts) if parts else None


class BaseDataCollector(ABC):
    """One collector: one exchange, one symbol, some data types. Start/stop explicitly."""

    def __init__(self, config: ExchangeCollectorConfig, params: CollectorParams) -> None:
        self.config = config
        self.params = params
        self.name = params.name
        self.exchange = config.exchange
        self.symbol = config.symbol
        self.stats = CollectorStatistics()
        self._status = "stopped"
        self._should_run = False
        # The venue refused the login (LoginRefused): the health loop does not restart it.
        self._refused = False
        self._callbacks = CallbackDispatcher(
            self.name, params.buffer_size, params.callback_timeout, self.stats
        )
        self._collect_task: asyncio.Task[None] | None = None
        self._aux_tasks: set[asyncio.Task[None]] = set()

    # -- what subclasses provide -------------------------------------------------------
    @abstractmethod
    async def _collect(self) -> None:
        """Connect, subscribe and read until cancelled; reconnect on failures."""

    def _sink_for_health(self) -> object:
        """The sink whose backpressure should appear in health issues (None: no sink)."""
        return None

    def _reader_waiting_since(self) -> float | None:
        """Since when (time.monotonic) the longest-waiting reader waits in the sink's put()
        (None: none does); collectors with readers say."""
        return None

    def _holdup(self, now: float, stats: dict[str, Any]) -> str | None:
        return holdup(stats, since(self._reader_waiting_since(), now))

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> bool:
        """Start collecting in the background; True when running (or already running)."""
        if self._collect_task is not None and not self._collect_task.done():
            return True
        self._should_run = True
        self._refused = False
        self._status = "running"
        self.stats.started_mono = time.monotonic()
        self.stats.connected_mono = None
        self._collect_task = asyncio.create_task(self._collect_guarded(), name=f"{self.name}-collect")
        if not self._aux_tasks:
            for coro, suffix in ((self._health_loop(), "health"), (self._callbacks.run(), "callbacks")):
                task = asyncio.create_task(coro, name=f"{self.name}-{suffix}")
                self._aux_tasks.add(task)
                task.add_done_callback(self._aux_tasks.discard)
        logger.info("%s: started (%s)", self.name, ", ".join(d.value for d in self.config.data_types))
        return True

    async def stop(self, force: bool = False) -> None:
        """Stop reading and cancel every task; `force` skips the graceful close handshake."""
        self._should_run = False
        tasks = [t for t in (self._collect_task, *self._aux_tasks) if t is not None]
        try:
            if not force:
                await self._close_gracefully()
        finally:
            # Also when this stop is itself cancelled (a timed-out or forced service stop):
            # the readers must not outlive it.
            for task in tasks:
                task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            if pending:
                logger.error(
                    "%s: %d task(s) did not stop within %.0fs", self.name, len(pending), STOP_TIMEOUT
                )
        self._collect_task = None
        self._aux_tasks.clear()
        self.stats.connected_mono = None
        if self._status != "error":
            self._status = "stopped"
        logger.info(
            "%s: stopped; messages_received=%d rows_received=%d errors=%d",
            self.name,
            self.stats.messages_received,
            self.stats.rows_received,
            self.stats.errors,
        )

    async def restart(self) -> bool:
        """Stop, then start again; counts a restart."""
        await self.stop()
        self.stats.restarts += 1
        self.stats.last_restart_mono = time.monotonic()
        self._status = "stopped"
        return await self.start()

    async def _close_gracefully(self) -> None:  # noqa: B027 - optional hook
        """Subclasses close their sockets politely here before tasks are cancelled."""

    def add_data_callback(self, data_type: DataType, callback: DataCallback) -> None:
        """Call `callback(MarketDataPoint)` for every row of `data_type`, off the hot path."""
        self._callbacks.add(data_type, callback)

    # -- state reported to subclasses ----------------------------------------------------
    def _set_error(self, message: str) -> None:
        self._status = "error"
        self.stats.last_error = redact_text(message)
        logger.error("%s: %s", self.name, self.stats.last_error)

    async def _collect_guarded(self) -> None:
        try:
            await self._collect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the last line of defence: report, never die silently
            while isinstance(exc, ExceptionGroup) and exc.exceptions:
                exc = exc.exceptions[0]
            self.stats.errors += 1
            if isinstance(exc, LoginRefused):
                # The same credentials would be refused again: no restart until start().
                self._refused = True
                self._set_error(str(exc))
                return
            self._set_error(f"collector failed: {type(exc).__name__}: {exc}")
            logger.debug("%s: collect task failed", self.name, exc_info=True)

    async def _restart_collect(self, reason: str) -> None:
        """Replace the collect task (used by the health loop, which must survive it)."""
        logger.warning("%s: restarting: %s", self.name, reason)
        task = self._collect_task
        if task is not None:
            task.cancel()
            # asyncio.wait, not wait_for(shield(...)): it never raises the old task's
            # CancelledError, and on Python 3.11 wait_for can swallow the cancel that
            # stop() sends this health loop, which would then keep running.
            _done, pending = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if pending:
                logger.error("%s: old collect task ignored cancellation for %.0fs", self.name, STOP_TIMEOUT)
        if not self._should_run:
            return
        self.stats.restarts += 1
        self.stats.last_restart_mono = time.monotonic()
        self.stats.started_mono = time.monotonic()
        self.stats.connected_mono = None
        self._status = "running"
        self._collect_task = asyncio.create_task(self._collect_guarded(), name=f"{self.name}-collect")

    async def _health_loop(self) -> None:
        interval = min(self.config.health_check_interval, self.params.max_silence / 2)
        held_up = False  # a restart is being held off: said once per stretch
        while True:
            await asyncio.sleep(interval)
            if not self._should_run:
                continue
            now = time.monotonic()
            task = self._collect_task
            silent = since(silent_since(self.stats), now)
            if task is None or task.done():
                if self.config.auto_restart and not self._refused:
                    await self._restart_collect("collect task ended")
            elif silent is not None and silent > self.params.max_silence:
                # Backpressure is not silence: a restart would drop what the readers hold.
                reason = self._holdup(now, sink_stats(self._sink_for_health()))
                if reason is None:
                    held_up = False
                    await self._restart_collect(
                        f"no data for {silent:.1f}s (max_silence {self.params.max_silence:.1f}s)"
                    )
                elif not held_up:
                    held_up = True
                    logger.warning("%s: no data for %.1fs, not restarting: %s", self.name, silent, reason)
            else:
                held_up = False

    # -- reporting -----------------------------------------------------------------------
    def _last_heartbeat(self) -> float | None:
        """Any frame proves the connection alive, a pong included."""
        marks = [m for m in (self.stats.last_heartbeat_mono, self.stats.last_message_mono) if m]
        return max(marks) if marks else None

    @property
    def is_running(self) -> bool:
        """True while the collect task is alive."""
        return self._collect_task is not None and not self._collect_task.done()

    def get_status(self) -> dict[str, Any]:
        """The spec's status dictionary; JSON-serializable (stored in collector_status)."""
        now = time.monotonic()
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "status": self._status,
            "should_be_running": self._should_run,
            "symbols": [self.symbol],
            "data_types": [d.value for d in self.config.data_types],
            "auto_restart": self.config.auto_restart,
            "health": {
                "time_since_heartbeat": since(self._last_heartbeat(), now),
                "time_since_data": since(self.stats.last_data_mono, now),
                "max_silence_duration": self.params.max_silence,
            },
            "statistics": self.stats.as_dict(now),
        }

    def get_health_status(self) -> dict[str, Any]:
        """The spec's health dictionary: is_healthy plus the issues that make it unhealthy."""
        now = time.monotonic()
        sink = sink_stats(self._sink_for_health())  # asked once for both sentences
        issues = health_issues(
            should_run=self._should_run,
            is_running=self.is_running,
            status=self._status,
            stats=self.stats,
            now=now,
            max_silence=self.params.max_silence,
            heartbeat_limit=self.params.ping_interval + self.params.pong_timeout,
            sink_pressure=sink_pressure(sink),
            holdup=self._holdup(now, sink),
        )
        return {
            "is_healthy": not issues,
            "issues": issues,
            "status": self._status,
            "last_heartbeat": wall_iso(self._last_heartbeat()),
            "last_data_received": wall_iso(self.stats.last_data_mono),
            "should_be_running": self._should_run,
            "is_running": self.is_running,
        }
