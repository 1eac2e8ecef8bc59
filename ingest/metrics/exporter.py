"""Prometheus metrics of one service, read from its collectors and writer at scrape time.

Labels are bounded by the configuration: exchange and symbol (one pair per collector), table
(raw_trades, market_data, dead_letters). Names follow Prometheus conventions: counters end
in _total, times are seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.collector.base import BaseDataCollector
from ingest.history.gapfill import FillStats
from ingest.metrics.commits import CommitMetrics
from ingest.metrics.db_jobs import DbJobsMetrics
from ingest.storage.db_jobs import DbJobsSnapshot

PAIR = ["exchange", "symbol"]
# Collector statistics exported as counters: (metric name, help, CollectorStatistics field).
_PAIR_COUNTERS = (
    ("tcpd_messages_received", "WebSocket messages received", "messages_received"),
    ("tcpd_rows_received", "Rows parsed from received messages (trades and market data)", "rows_received"),
    ("tcpd_errors", "Errors seen by the collector", "errors"),
    ("tcpd_reconnects", "Reconnect attempts", "reconnect_attempts"),
    ("tcpd_restarts", "Collector restarts", "restarts"),
    ("tcpd_dead_letters", "Refused frames or items kept as dead letters", "dead_letters"),
    ("tcpd_dead_letters_dropped", "Refused frames or items over the per-hour cap (counted, not kept)",
     "dead_letters_dropped"),
    ("tcpd_callbacks_dropped", "Data points not handed to slow callbacks", "callback_dropped"),
)  # fmt: skip
# Gap filler statistics exported per exchange as counters: (metric name, help, FillStats field).
_GAP_FAMILIES = (
    ("tcpd_gaps_found", "Holes in the trade history found by this process", "gaps_found"),
    ("tcpd_gaps_filled", "Gaps filled completely from REST history", "gaps_filled"),
    ("tcpd_gaps_left_open", "Gaps (or their remainders) recorded as not fillable", "gaps_left_open"),
    ("tcpd_rows_backfilled", "Trades put from REST history into gaps", "trades_filled"),
    ("tcpd_rest_requests", "REST history requests made to fill gaps", "rest_requests"),
)  # fmt: skip

# Writer statistics (CopyWriter.stats()) exported without labels: (metric name, help, stats key).
_WRITER_COUNTERS = (
    ("tcpd_duplicates_skipped", "Rows skipped as already stored", "duplicates_skipped"),
    ("tcpd_rows_rejected", "Rows the database refused as given (dead-lettered)", "rows_rejected"),
    ("tcpd_batch_retries", "Batch tries that failed and were retried", "retries"),
)
_WRITER_GAUGES = (
    ("tcpd_writer_queue_rows", "Rows held by the writer queue", "queue_rows"),
    ("tcpd_writer_queue_capacity_rows", "Rows the writer queue holds at most", "queue_capacity"),
    ("tcpd_database_outage_seconds",
     "Seconds the current database outage has lasted (0 when the database takes writes)", "outage_seconds"),
)  # fmt: skip


class ServiceMetrics(Collector):
    """The registry's collector: one scrape reads every collector's statistics and the writer."""

    def __init__(
        self,
        collectors: Callable[[], Sequence[BaseDataCollector]],
        writer_stats: Callable[[], dict[str, Any] | None],
        gap_fills: Callable[[], Mapping[str, FillStats]],
    ) -> None:
        self._collectors = collectors
        self._writer_stats = writer_stats
        self._gap_fills = gap_fills

    def collect(self) -> Iterator[Metric]:
        collectors = self._collectors()
        now = time.monotonic()
        for name, help_text, field in _PAIR_COUNTERS:
            family = CounterMetricFamily(name, help_text, labels=PAIR)
            for c in collectors:
                family.add_metric([c.exchange, c.symbol], getattr(c.stats, field))
            yield family
        healthy = GaugeMetricFamily("tcpd_collector_healthy", "1 when the collector is healthy", labels=PAIR)
        age = GaugeMetricFamily(
            "tcpd_last_data_age_seconds", "Seconds since the collector last received data", labels=PAIR
        )
        for c in collectors:
            healthy.add_metric([c.exchange, c.symbol], 1.0 if c.get_health_status()["is_healthy"] else 0.0)
            last = c.stats.last_data_mono
            if last is not None:
                age.add_metric([c.exchange, c.symbol], now - last)
        yield healthy
        yield age
        stats = self._writer_stats()
        if stats is not None:
            yield from _writer_metrics(stats)
        yield from _gap_metrics(self._gap_fills())


def _gap_metrics(fills: Mapping[str, FillStats]) -> Iterator[Metric]:
    for name, help_text, field in _GAP_FAMILIES:
        family = CounterMetricFamily(name, help_text, labels=["exchange"])
        for exchange, stats in sorted(fills.items()):
            family.add_metric([exchange], getattr(stats, field))
        yield family
    filling = GaugeMetricFamily("tcpd_gaps_filling", "Gaps being filled right now", labels=["exchange"])
    for exchange, stats in sorted(fills.items()):
        filling.add_metric([exchange], stats.gaps_filling)
    yield filling


def _writer_metrics(stats: dict[str, Any]) -> Iterator[Metric]:
    committed = CounterMetricFamily("tcpd_rows_committed", "Rows committed, per table", labels=["table"])
    for table, rows in stats["rows_written"].items():
        committed.add_metric([table], rows)
    yield committed
    for name, help_text, key in _WRITER_COUNTERS:
        yield CounterMetricFamily(name, help_text, value=stats[key])
    for name, help_text, key in _WRITER_GAUGES:
        yield GaugeMetricFamily(name, help_text, value=stats[key])


def service_registry(
    collectors: Callable[[], Sequence[BaseDataCollector]],
    writer_stats: Callable[[], dict[str, Any] | None],
    gap_fills: Callable[[], Mapping[str, FillStats]],
    db_jobs: Callable[[], DbJobsSnapshot | None] | None = None,
) -> tuple[CollectorRegistry, CommitMetrics]:
    """A registry of the service's metrics, and the per-batch metrics for the writer to feed
    (CopyWriter.on_commit = commits.batch_committed); `db_jobs` (the watcher's latest snapshot)
    adds the database jobs' families."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceMetrics(collectors, writer_stats, gap_fills))
    if db_jobs is not None:
        registry.register(DbJobsMetrics(db_jobs))
    commits = CommitMetrics()
    registry.register(commits)
    return registry, commits
