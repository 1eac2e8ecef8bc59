"""What each committed batch tells the metrics: how long its commit took, how old its trades
were when they became durable, and which dead letters it stored.

The writer calls `CommitMetrics.batch_committed` once per committed batch (CopyWriter.on_commit),
on the event loop; /metrics reads the totals on the same loop, so nothing here locks. The cost
is per batch plus a few list operations per trade (sorted exchange timestamps bisected at the
bucket bounds), not a Histogram.observe() per row.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.rows import DeadLetter, Row, TradeRow

# Commit times of a batch: sub-millisecond COPY to a slow database's seconds.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Exchange timestamp to commit: a healthy stream is well under a second; a database outage
# (rows spooled, committed later) shows as minutes to hours.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
# Dead-letter reasons are free text that may quote what the exchange sent: the label keeps the
# reason's kind only, and at most this many kinds per exchange (the rest count as "other").
MAX_REASONS_PER_EXCHANGE = 32
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def reason_kind(reason: str) -> str:
    """A dead letter's reason as a bounded label: the part before its first colon (the channel
    of a refused item, or the frame's fault), quoted text replaced by '…', at most 48 chars."""
    head = reason.split(":", 1)[0]
    return _QUOTED.sub("'…'", head).strip()[:48] or "unknown"


@dataclass
class _Histogram:
    """Cumulative bucket counts and a sum, as Prometheus exposes a histogram."""

    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: int = 0
    sum: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        for i in range(bisect.bisect_left(self.bounds, value), len(self.bounds)):
            self.counts[i] += 1
        self.total += 1
        self.sum += value

    def observe_ages(self, now_ms: int, sorted_ts_ms: list[int]) -> None:
        """Observe now - ts for every timestamp (ms, ascending) at once: a value <= bound is a
        timestamp >= now - bound."""
        n = len(sorted_ts_ms)
        for i, bound in enumerate(self.bounds):
            self.counts[i] += n - bisect.bisect_left(sorted_ts_ms, now_ms - bound * 1000.0)
        self.total += n
        self.sum += (now_ms * n - sum(sorted_ts_ms)) / 1000.0

    def buckets(self) -> list[tuple[str, float]]:
        pairs = [(repr(float(b)), float(c)) for b, c in zip(self.bounds, self.counts, strict=True)]
        return [*pairs, ("+Inf", float(self.total))]


class CommitMetrics(Collector):
    """Totals over every batch the writer committed since the start."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # wall-clock seconds, as the exchanges' timestamps are
        self._commit = _Histogram(COMMIT_BUCKETS)
        self._latency: dict[str, _Histogram] = {}  # by exchange
        self._dead_letters: dict[str, dict[str, int]] = {}  # exchange -> reason kind -> count

    def batch_committed(self, seconds: float, rows: Sequence[Row]) -> None:
        """A batch of `rows` committed; its successful try took `seconds`."""
        self._commit.observe(seconds)
        now_ms = int(self._clock() * 1000)
        # Comprehensions, as Batch.build splits rows: a few tens of ns a row.
        trades = [r for r in rows if type(r) is TradeRow]
        if len(trades) != len(rows):
            for letter in [r for r in rows if type(r) is DeadLetter]:
                self._count_dead_letter(letter)
        if not trades:
            return
        exchanges = {r.exchange for r in trades}
        for exchange in exchanges:
            mine = trades if len(exchanges) == 1 else [r for r in trades if r.exchange == exchange]
            stamps = sorted([r.ts_ms for r in mine])
            histogram = self._latency.get(exchange)
            if histogram is None:
                histogram = self._latency[exchange] = _Histogram(LATENCY_BUCKETS)
            histogram.observe_ages(now_ms, stamps)

    def _count_dead_letter(self, row: DeadLetter) -> None:
        kinds = self._dead_letters.setdefault(row.exchange, {})
        kind = reason_kind(row.reason)
        if kind not in kinds and len(kinds) >= MAX_REASONS_PER_EXCHANGE:
            kind = "other"
        kinds[kind] = kinds.get(kind, 0) + 1

    def collect(self) -> Iterator[Metric]:
        commit = HistogramMetricFamily(
            "tcpd_batch_commit_seconds", "Seconds a committed batch's successful try took"
        )
        commit.add_metric([], self._commit.buckets(), self._commit.sum)
        yield commit
        latency = HistogramMetricFamily(
            "tcpd_trade_commit_latency_seconds",
            "Seconds from a trade's exchange timestamp to its commit (clock skew included)",
            labels=["exchange"],
        )
        for exchange, histogram in sorted(self._latency.items()):
            latency.add_metric([exchange], histogram.buckets(), histogram.sum)
        yield latency
        stored = CounterMetricFamily(
            "tcpd_dead_letters_stored",
            "Dead letters committed to the dead_letters table, by the kind of their reason",
            labels=["exchange", "reason"],
        )
        for exchange, kinds in sorted(self._dead_letters.items()):
            for kind, count in sorted(kinds.items()):
                stored.add_metric([exchange, kind], count)
        yield stored
