"""A Prometheus stand-in for the benchmarks: GET /metrics of a running `tcpd run` every second.

`tcpd run` with `"http": {"listen": "127.0.0.1:0"}` picks a free port and logs it
("serving /metrics, /healthz and /readyz on http://127.0.0.1:N"); the scraper reads that line
from the collector's log, then scrapes from a thread on a fixed 1 s period (Prometheus' usual
interval is 15 s, so this is pessimistic) until stop(). It keeps the wall clock of every
successful scrape, so a scenario can count the scrapes inside its measured window: a run
with the endpoint on and no scrape in its window measured nothing and is refused.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

_SERVING = re.compile(r"serving /metrics, /healthz and /readyz on (http://\S+)")
_COMMITTED = re.compile(rb'^tcpd_rows_committed_total\{table="raw_trades"\} (\S+)$', re.MULTILINE)


class MetricsScraper:
    """GETs /metrics every `interval` seconds from a thread; start() returns at once."""

    def __init__(self, log: Path, interval: float = 1.0, timeout: float = 5.0) -> None:
        self.log, self.interval, self.timeout = log, interval, timeout
        self.url = ""
        self.times: list[float] = []  # time.time() at the end of each successful scrape
        self.seconds: list[float] = []  # how long each successful scrape took
        self.failures: list[str] = []
        self.rows_committed: float | None = None  # raw_trades rows, as the last scrape said
        self.body_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics-scraper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 1)

    def between(self, t0: float, t1: float) -> int:
        """Successful scrapes that ended in [t0, t1] (epoch seconds)."""
        return sum(1 for t in self.times if t0 <= t <= t1)

    def figures(self, t0: float, t1: float) -> dict[str, Any]:
        """What a scenario reports about the scraping of its run, window [t0, t1]."""
        return {
            "scrapes": len(self.times),
            "scrapes_in_window": self.between(t0, t1),
            "scrape_failures": len(self.failures),
            "scrape_ms_median": statistics.median(self.seconds) * 1000 if self.seconds else None,
            "scrape_ms_max": max(self.seconds) * 1000 if self.seconds else None,
            "metrics_bytes": self.body_bytes,
            "scraped_rows_committed": self.rows_committed,
        }

    def _find_url(self) -> bool:
        while not self._stop.is_set():
            if self.log.exists():
                found = _SERVING.search(self.log.read_text(errors="replace"))
                if found:
                    self.url = found.group(1).rstrip("/") + "/metrics"
                    return True
            self._stop.wait(0.05)
        return False

    def _loop(self) -> None:
        if not self._find_url():
            return
        due = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                # The URL is the loopback address `tcpd run` logged, never user input.
                with urllib.request.urlopen(self.url, timeout=self.timeout) as answer:  # noqa: S310
                    body = answer.read()
                    status = answer.status
            except OSError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            else:
                if status == 200 and b"\ntcpd_" in body:
                    self.seconds.append(time.monotonic() - started)
                    self.times.append(time.time())
                    self.body_bytes = len(body)
                    found = _COMMITTED.search(body)
                    if found:
                        self.rows_committed = float(found.group(1))
                else:
                    self.failures.append(f"HTTP {status}, {len(body)} bytes")
            due += self.interval
            self._stop.wait(max(0.0, due - time.monotonic()))
