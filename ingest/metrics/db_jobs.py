"""Prometheus metrics of the database's scheduled jobs, from the watcher's latest snapshot
(ingest.storage.db_jobs_watch): a scrape reads memory, never the database.

Labels are bounded by the jobs the database has (job_id, proc, target: a few per hypertable
and continuous aggregate) and by the candle aggregates (view). A job the scheduler never ran
has no last_run_success sample; an aggregate with nothing materialized has a lag of +Inf.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.storage.db_jobs import DbJobsSnapshot

JOB = ["job_id", "proc", "target"]


class DbJobsMetrics(Collector):
    """The jobs' families; `snapshot()` returns the latest read (None: none yet, no samples)."""

    def __init__(self, snapshot: Callable[[], DbJobsSnapshot | None]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        if snap is None:
            return
        age = max(time.monotonic() - snap.read_mono, 0.0)
        success = GaugeMetricFamily(
            "tcpd_db_job_last_run_success",
            "1 when the job's last scheduled run succeeded, 0 when it failed (absent: never run)",
            labels=JOB,
        )
        in_a_row = GaugeMetricFamily(
            "tcpd_db_job_consecutive_failures", "Failed scheduled runs of the job in a row", labels=JOB
        )
        failures = CounterMetricFamily(
            "tcpd_db_job_failures", "Failed scheduled runs of the job (job_stats.total_failures)", labels=JOB
        )
        successes = CounterMetricFamily(
            "tcpd_db_job_successes",
            "Successful scheduled runs of the job (job_stats.total_successes)",
            labels=JOB,
        )
        for job in snap.jobs:
            labels = [str(job.job_id), job.proc, job.target]
            if job.last_run_status is not None:
                success.add_metric(labels, 0.0 if job.failing else 1.0)
            in_a_row.add_metric(labels, job.failures_in_a_row)
            failures.add_metric(labels, job.total_failures)
            successes.add_metric(labels, job.total_successes)
        lag = GaugeMetricFamily(
            "tcpd_candle_materialization_lag_seconds",
            "Seconds from the end of the aggregate's newest materialized candle to now, as of "
            "the last read plus its age (+Inf: nothing materialized)",
            labels=["view"],
        )
        for item in snap.lags:
            lag.add_metric([item.aggregate], math.inf if item.lag_seconds is None else item.lag_seconds + age)
        yield from (success, in_a_row, failures, successes, lag)
        gaps = GaugeMetricFamily(
            "tcpd_gaps_open",
            "Gaps of ingest_gaps not filled (tcpd gaps), as of the last read",
            labels=["exchange"],
        )
        for exchange, count in snap.open_gaps:
            gaps.add_metric([exchange], count)
        yield gaps
        yield GaugeMetricFamily(
            "tcpd_db_jobs_read_age_seconds",
            "Seconds since the database's jobs were last read",
            value=age,
        )
