"""When did each trade become visible? A poller for the latency scenario.

raw_trades.created_at is now() of the inserting transaction, i.e. its START, so
created_at - ts is only a lower bound of the latency. The commit time is what a reader
sees, so a thread polls raw_trades every `interval` seconds and records, per trade, the
wall clock just before the first query whose snapshot contains it. A row committed between
two polls is thus stamped up to `interval` + one query late: an upper bound. Both bounds
are reported.

The query stays small: trade ids are 1..N and their ts never decreases, so it asks only
for rows with ts >= ts of the highest contiguously seen id, through the
(exchange, symbol, "timestamp" DESC) index.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ingest_db import connect


@dataclass(frozen=True, slots=True)
class Seen:
    """One trade as the poller first saw it (times in epoch seconds)."""

    ts: float  # the exchange timestamp (simulator send time, ms resolution)
    created: float  # transaction start (created_at)
    visible: float  # wall clock before the first poll that saw it


@dataclass
class VisibilityPoller:
    """Poll raw_trades for trades 1..total of one symbol; run() in a thread."""

    dsn: str
    symbol: str
    total: int
    interval: float = 0.005
    seen: dict[int, Seen] = field(default_factory=dict)
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="visibility-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_all(self, timeout: float) -> bool:
        """Block until every trade was seen (True) or `timeout` passed (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.seen) >= self.total:
                return True
            time.sleep(0.05)
        return len(self.seen) >= self.total

    def _run(self) -> None:
        low = 0  # every id <= low was seen
        low_ts_ms = 0
        with connect(self.dsn) as conn:
            while not self._stop.is_set() and len(self.seen) < self.total:
                started = time.time()
                rows = conn.execute(
                    'SELECT trade_id::bigint, (extract(epoch FROM "timestamp") * 1000)::bigint, '
                    "extract(epoch FROM created_at)::float8 FROM raw_trades "
                    "WHERE exchange = 'okx' AND symbol = %s "
                    "AND \"timestamp\" >= 'epoch'::timestamptz + %s * interval '1 millisecond'",
                    (self.symbol, low_ts_ms),
                ).fetchall()
                self.polls += 1
                for trade_id, ts_ms, created in rows:
                    if trade_id not in self.seen:
                        self.seen[trade_id] = Seen(ts_ms / 1000, created, started)
                while low + 1 in self.seen:
                    low += 1
                if low:
                    low_ts_ms = int(self.seen[low].ts * 1000)
                pause = self.interval - (time.time() - started)
                if pause > 0:
                    time.sleep(pause)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return ordered[k]
