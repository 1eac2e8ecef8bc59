"""The per-batch metrics (ingest/metrics/commits.py) against prometheus_client's own Histogram
fed value by value, and the bounded dead-letter reason labels."""

from __future__ import annotations

import random
import time

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ingest.metrics.commits import (
    LATENCY_BUCKETS,
    MAX_REASONS_PER_EXCHANGE,
    CommitMetrics,
    reason_kind,
)
from ingest.rows import DataType, DeadLetter, MarketRow, TradeRow


def _trade(exchange: str, ts_ms: int, n: int) -> TradeRow:
    return TradeRow(exchange, "BTC-USDT", str(n), "1", "1", "buy", ts_ms, "")


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_trade_latency_buckets_equal_prometheus_client_observing_each_trade() -> None:
    rng = random.Random(3)
    clock = [time.time()]
    commits = CommitMetrics(clock=lambda: clock[0])
    ours = CollectorRegistry()
    ours.register(commits)
    reference = CollectorRegistry()
    by_hand = Histogram(
        "tcpd_trade_commit_latency_seconds", "", ["exchange"], buckets=LATENCY_BUCKETS, registry=reference
    )
    for _ in range(20):
        clock[0] += rng.uniform(0, 5)
        now_ms = int(clock[0] * 1000)
        # ages from -0.2 s (an exchange clock ahead) to two hours (rows spooled through an outage)
        ages = [rng.choice((rng.uniform(-200, 2000), rng.uniform(0, 7_200_000))) for _ in range(300)]
        rows = [_trade(rng.choice(("okx", "binance")), int(now_ms - a), i) for i, a in enumerate(ages)]
        rows.append(MarketRow("okx", "BTC-USDT", DataType.TICKER, now_ms - 10**9, "{}"))  # not a trade
        commits.batch_committed(0.01, rows)
        for row in rows:
            if isinstance(row, TradeRow):
                by_hand.labels(row.exchange).observe((now_ms - row.ts_ms) / 1000.0)
    got, want = _samples(ours), _samples(reference)
    for (name, labels), value in want.items():
        if name.endswith("_created"):
            continue
        if name.endswith("_sum"):
            assert abs(got[(name, labels)] - value) < 1e-6 * max(1.0, abs(value))
        else:
            assert got[(name, labels)] == value, (name, labels)
    assert (
        got[("tcpd_trade_commit_latency_seconds_count", (("exchange", "okx"),))]
        + got[("tcpd_trade_commit_latency_seconds_count", (("exchange", "binance"),))]
        == 20 * 300
    )


def test_commit_seconds_histogram_counts_each_batch_once() -> None:
    commits = CommitMetrics()
    registry = CollectorRegistry()
    registry.register(commits)
    for seconds in (0.0005, 0.003, 0.003, 2.0, 45.0):
        commits.batch_committed(seconds, [])
    got = _samples(registry)
    assert got[("tcpd_batch_commit_seconds_count", ())] == 5
    assert got[("tcpd_batch_commit_seconds_bucket", (("le", "0.001"),))] == 1
    assert got[("tcpd_batch_commit_seconds_bucket", (("le", "0.005"),))] == 3
    assert got[("tcpd_batch_commit_seconds_bucket", (("le", "30.0"),))] == 4
    assert got[("tcpd_batch_commit_seconds_bucket", (("le", "+Inf"),))] == 5
    assert abs(got[("tcpd_batch_commit_seconds_sum", ())] - 47.0065) < 1e-9


def test_dead_letter_reasons_are_bounded_labels_without_what_the_exchange_sent() -> None:
    assert reason_kind("trades: field 'px' must be a positive plain decimal string") == "trades"
    assert reason_kind("unknown channel 'secret-looking-channel-name'") == "unknown channel '…'"
    assert reason_kind("invalid JSON") == "invalid JSON"
    commits = CommitMetrics()
    registry = CollectorRegistry()
    registry.register(commits)
    letters = [DeadLetter("okx", 0, f"unknown channel 'c{i}'", "x") for i in range(5)]
    letters += [DeadLetter("okx", 0, f"kind{i}: bad", "x") for i in range(2 * MAX_REASONS_PER_EXCHANGE)]
    letters += [DeadLetter("binance", 0, "invalid JSON", "x")]
    commits.batch_committed(0.01, letters)
    got = {
        labels: value
        for (name, labels), value in _samples(registry).items()
        if name == "tcpd_dead_letters_stored_total"
    }
    okx = {dict(k)["reason"]: v for k, v in got.items() if dict(k)["exchange"] == "okx"}
    assert okx["unknown channel '…'"] == 5
    assert len(okx) == MAX_REASONS_PER_EXCHANGE + 1  # the cap, plus "other"
    assert sum(okx.values()) == 5 + 2 * MAX_REASONS_PER_EXCHANGE
    assert okx["other"] == 2 * MAX_REASONS_PER_EXCHANGE - (MAX_REASONS_PER_EXCHANGE - 1)
    assert got[(("exchange", "binance"), ("reason", "invalid JSON"))] == 1
