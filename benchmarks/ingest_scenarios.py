"""The ingest benchmark's scenarios: each runs simulator -> `tcpd run` -> raw_trades once.

Every scenario gets a fresh migrated database and fresh processes, checks that every
trade sent was stored exactly once with its values, and returns a flat dict of results.
throughput and steady take `exchange` ("okx", the default, or "binance": the same scenario
against `tcpd simulate --exchange binance`, whose messages carry one trade each) and `metrics`
(True: `tcpd run` serves /metrics on a free loopback port and ingest_scraper.MetricsScraper
GETs it every second during the run; a run with no scrape inside its measured window fails).
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ingest_db import (
    backend_pids,
    connect,
    count_created_between,
    count_rows,
    fresh_database,
    last_trade_visible,
    limit_rows,
    load_binary_copy,
    load_server_copy,
    verify,
    write_text_file,
)
from ingest_latency import VisibilityPoller, percentile
from ingest_procs import BenchError, Collector, Simulator, cpu_seconds, memory_kb, wakeups
from ingest_scraper import MetricsScraper

SYMBOL = "BTC-USDT"
SYMBOLS = {"okx": SYMBOL, "binance": "BTCUSDT"}  # the first symbol of each venue
_QUEUE = re.compile(r"queue (\d+)/")


def symbols(n: int, exchange: str = "okx") -> list[str]:
    """n symbols: OKX-like instIds BTC-USDT, S1-USDT, S2-USDT, ... or Binance-like
    BTCUSDT, S1USDT, S2USDT, ..."""
    if exchange == "binance":
        return [SYMBOLS["binance"]] + [f"S{i}USDT" for i in range(1, n)]
    return [SYMBOL] + [f"S{i}-USDT" for i in range(1, n)]


class Run:
    """One simulator + one collector on a fresh database; use as a context manager."""

    def __init__(
        self,
        admin_dsn: str,
        name: str,
        *,
        syms: list[str],
        rate: float,
        tpm: int,
        total: int,
        writer: dict[str, Any] | None = None,
        store_raw_data: bool = False,
        fresh_ts: bool = False,
        exchange: str = "okx",
        metrics: bool = False,
        scrape_interval: float = 1.0,
    ) -> None:
        self.admin_dsn, self.name, self.syms = admin_dsn, name, syms
        self.metrics, self.scrape_interval = metrics, scrape_interval
        self.total, self.tpm, self.exchange = total, tpm, exchange
        self._db = fresh_database(admin_dsn, name)
        self._tmp = tempfile.TemporaryDirectory(prefix=f"tcpd_bench_{name}_")
        self.workdir = Path(self._tmp.name)
        self.sim = Simulator(syms, rate, tpm, total, self.workdir, fresh_ts=fresh_ts, exchange=exchange)
        self._writer, self._store_raw = writer or {}, store_raw_data
        self.dsn = ""
        self.col: Collector | None = None
        self.scraper: MetricsScraper | None = None
        self.exit_code: int | None = None

    def __enter__(self) -> Run:
        self.dsn = self._db.__enter__()
        try:
            self.sim.start()
            self.col = Collector(
                self.sim.url,
                self.dsn,
                self.syms,
                self.workdir,
                self._writer,
                self._store_raw,
                exchange=self.exchange,
                http_listen="127.0.0.1:0" if self.metrics else None,
            )
        except BaseException:
            self.sim.stop()
            self._db.__exit__(None, None, None)
            raise
        return self

    def start_collector(self) -> float:
        assert self.col is not None
        started = time.time()
        self.col.start()
        if self.metrics:
            self.scraper = MetricsScraper(self.workdir / "collector.log", self.scrape_interval)
            self.scraper.start()
        return started

    def scrape_figures(self, t0: float, t1: float) -> dict[str, Any]:
        """The endpoint's state and, when on, the scrapes of the run and of its window [t0, t1].

        Raises BenchError when the endpoint was on and nothing scraped it inside the window."""
        if self.scraper is None:
            return {"metrics": "on" if self.metrics else "off"}
        figures = {"metrics": "on", "scrape_interval": self.scrape_interval, **self.scraper.figures(t0, t1)}
        if not figures["scrapes_in_window"]:
            raise BenchError(
                f"{self.name}: /metrics on but scraped {figures['scrapes']} times, none in the measured "
                f"window (url {self.scraper.url or 'never logged'}, failures {self.scraper.failures[-3:]})"
            )
        return figures

    def finish(self) -> dict[str, Any]:
        """Stop collector (flushes) and simulator; verify the table. Returns checks."""
        assert self.col is not None
        if self.scraper is not None:
            self.scraper.stop()
        self.exit_code = self.col.stop()
        counters = self.sim.stop()
        per_symbol = self.total // len(self.syms)
        v = verify(self.dsn, self.syms, per_symbol, exchange=self.exchange)
        sent = counters.get("trades", -1)
        ok = v.ok(self.total) and sent == self.total and self.exit_code == 0
        if not ok:
            print(
                f"  !! {self.name}: sent={sent} rows={v.rows} distinct={v.distinct_trades} "
                f"inconsistent={v.inconsistent} sample_mismatch={v.sample_mismatches} "
                f"exit={self.exit_code}\n{self.col.log_tail()}"
            )
        return {
            "sent": sent,
            "stored": v.rows,
            "distinct": v.distinct_trades,
            "inconsistent_rows": v.inconsistent,
            "rows_with_raw_data": v.with_raw,
            "sample_checked": v.sample_checked,
            "sample_mismatches": v.sample_mismatches,
            "exit_code": self.exit_code,
            "exactly_once": ok,
            "first_created": v.first_created,
            "last_created": v.last_created,
        }

    def __exit__(self, *exc: object) -> None:
        if self.scraper is not None:
            self.scraper.stop()
        if self.col is not None and self.col.alive():
            self.col.stop(30)
        self.sim.stop()
        self._db.__exit__(None, None, None)
        self._tmp.cleanup()


def _wait_last_trade(
    dsn: str,
    syms: list[str],
    per_symbol: int,
    col: Collector,
    timeout: float,
    poll: float = 0.01,
    exchange: str = "okx",
) -> float:
    """Wall clock when the last trade of every symbol and the full count are visible."""
    deadline = time.monotonic() + timeout
    pending = list(syms)
    with connect(dsn) as conn:
        while time.monotonic() < deadline:
            if not col.alive():
                raise BenchError(f"collector exited early:\n{col.log_tail()}")
            pending = [s for s in pending if not last_trade_visible(conn, s, str(per_symbol), exchange)]
            if not pending:
                now = time.time()
                # The last id can commit just before an earlier batch (two writer workers).
                if count_rows(conn) >= per_symbol * len(syms):
                    return now
            time.sleep(poll)
    raise BenchError(f"not all trades visible after {timeout:.0f}s:\n{col.log_tail()}")


def throughput(
    admin_dsn: str,
    *,
    tpm: int,
    total: int,
    timeout: float,
    store_raw_data: bool = False,
    exchange: str = "okx",
    metrics: bool = False,
    scrape_interval: float = 1.0,
) -> dict[str, Any]:
    """Full speed, one symbol. Throughput = trades / (last commit - first batch start).

    OKX frames are pre-built; Binance's simulator builds each frame as it publishes it (its
    CPU is reported as simulator_cpu_us_per_trade)."""
    name = f"tput{tpm}{'raw' if store_raw_data else ''}{'' if exchange == 'okx' else exchange}"
    symbol = SYMBOLS[exchange]
    with Run(
        admin_dsn,
        name,
        syms=[symbol],
        rate=0,
        tpm=tpm,
        total=total,
        store_raw_data=store_raw_data,
        exchange=exchange,
        metrics=metrics,
        scrape_interval=scrape_interval,
    ) as run:
        assert run.col is not None
        sim_cpu0 = cpu_seconds(run.sim.pid)  # frames are built already
        launched = run.start_collector()
        pid = run.col.pid
        done = _wait_last_trade(run.dsn, [symbol], total, run.col, timeout, exchange=exchange)
        cpu = cpu_seconds(pid)
        sim_cpu = cpu_seconds(run.sim.pid) - sim_cpu0
        with connect(run.dsn) as conn:
            db_cpu = sum(cpu_seconds(p) for p in backend_pids(conn))
        mem = memory_kb(pid)
        checks = run.finish()
        scraping = run.scrape_figures(checks["first_created"], done)
    elapsed = done - checks["first_created"]
    return {
        "scenario": f"throughput {tpm}/msg",
        "exchange": exchange,
        "trades_per_message": tpm,
        "trades": total,
        "store_raw_data": store_raw_data,
        "seconds_first_batch_to_last_commit": elapsed,
        "trades_per_s": total / elapsed,
        "seconds_launch_to_last_commit": done - launched,
        "collector_cpu_s": cpu,
        "cpu_us_per_trade": cpu / total * 1e6,
        "db_backends_cpu_us_per_trade": db_cpu / total * 1e6,
        "simulator_cpu_us_per_trade": sim_cpu / total * 1e6,
        "vm_hwm_kb": mem.get("VmHWM"),
        "vm_rss_kb": mem.get("VmRSS"),
        **scraping,
        **checks,
    }


def limits(admin_dsn: str, *, total: int, ts_ms: int, with_raw: bool = False) -> dict[str, Any]:
    """The same rows (1 symbol) by one binary COPY from Python and by a server-side COPY.

    with_raw=False stores raw_data NULL, as the collector does with store_raw_data off.
    """
    rows = limit_rows(SYMBOL, total, ts_ms, with_raw=with_raw)
    path = write_text_file(rows)
    try:
        with fresh_database(admin_dsn, "limits") as dsn:
            binary, binary_cpu = load_binary_copy(dsn, rows)
            with connect(dsn) as conn:
                stored_b = count_rows(conn)
                conn.execute("TRUNCATE raw_trades")
            server, server_cpu = load_server_copy(dsn, path)
            with connect(dsn) as conn:
                stored_s = count_rows(conn)
    finally:
        path.unlink()
    return {
        "scenario": "limits",
        "raw_data": with_raw,
        "trades": total,
        "binary_copy_s": binary,
        "binary_copy_trades_per_s": total / binary,
        "server_copy_s": server,
        "server_copy_trades_per_s": total / server,
        "binary_copy_backend_cpu_us_per_trade": binary_cpu / total * 1e6,
        "server_copy_backend_cpu_us_per_trade": server_cpu / total * 1e6,
        "exactly_once": stored_b == total and stored_s == total,
    }


def overload(admin_dsn: str, *, total: int, batch_rows: int, timeout: float) -> dict[str, Any]:
    """A full-speed burst into a writer slowed by tiny batches: backpressure, nothing dropped."""
    writer = {"batch_max_rows": batch_rows, "status_interval": 1.0}
    with Run(admin_dsn, "overload", syms=[SYMBOL], rate=0, tpm=1, total=total, writer=writer) as run:
        assert run.col is not None
        launched = run.start_collector()
        pid = run.col.pid
        issues: set[str] = set()
        peak_queue = 0
        deadline = time.monotonic() + timeout
        with connect(run.dsn) as conn:
            while not last_trade_visible(conn, SYMBOL, str(total)):
                if time.monotonic() > deadline or not run.col.alive():
                    raise BenchError(f"overload run did not finish:\n{run.col.log_tail()}")
                row = conn.execute("SELECT health_json->'issues' FROM collector_status").fetchone()
                for issue in row[0] if row and row[0] else []:
                    issues.add(str(issue).split(":")[0])
                    found = _QUEUE.search(str(issue))
                    if found:
                        peak_queue = max(peak_queue, int(found.group(1)))
                time.sleep(0.5)
            done = time.time()
        mem = memory_kb(pid)
        checks = run.finish()
    return {
        "scenario": "overload",
        "trades": total,
        "batch_max_rows": batch_rows,
        "seconds": done - launched,
        "trades_per_s": total / (done - checks["first_created"]),
        "health_issues_seen": sorted(issues),
        "backpressure_reported": any("backpressure" in i for i in issues),
        "peak_queue_rows": peak_queue,
        "vm_hwm_kb": mem.get("VmHWM"),
        **checks,
    }


def steady(
    admin_dsn: str, *, n_symbols: int, rate: float, warmup: float, window: float, exchange: str = "okx",
    metrics: bool = False, scrape_interval: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """Paced at `rate` trades/s over `n_symbols` collectors: CPU per trade and RSS over a window."""
    syms = symbols(n_symbols, exchange)
    total = int(rate * (warmup + window + 3))
    total -= total % n_symbols
    name = f"steady{n_symbols}{'' if exchange == 'okx' else exchange}"
    with Run(
        admin_dsn,
        name,
        syms=syms,
        rate=rate,
        tpm=1,
        total=total,
        exchange=exchange,
        metrics=metrics,
        scrape_interval=scrape_interval,
    ) as run:
        assert run.col is not None
        run.start_collector()
        pid = run.col.pid
        with connect(run.dsn) as conn:
            while count_rows(conn) == 0:
                time.sleep(0.05)
        time.sleep(warmup)
        t1, c1, w1 = time.time(), cpu_seconds(pid), wakeups(pid)
        rss: list[int] = []
        anon: list[int] = []
        while time.time() < t1 + window:
            time.sleep(0.5)
            sample = memory_kb(pid)
            rss.append(sample["VmRSS"])
            anon.append(sample["RssAnon"])
        t2, c2, w2 = time.time(), cpu_seconds(pid), wakeups(pid)
        mem = memory_kb(pid)
        stored = count_created_between(run.dsn, t1, t2)
        _wait_last_trade(run.dsn, syms, total // n_symbols, run.col, 60, exchange=exchange)
        checks = run.finish()
        scraping = run.scrape_figures(t1, t2)
    return {
        "scenario": f"steady {n_symbols} collector(s)",
        "exchange": exchange,
        "collectors": n_symbols,
        "rate": rate,
        "window_s": t2 - t1,
        "trades_in_window": stored,
        "trades_per_s_in_window": stored / (t2 - t1),
        "collector_cpu_s": c2 - c1,
        "cpu_us_per_trade": (c2 - c1) / stored * 1e6 if stored else None,
        "cpu_share_of_one_core": (c2 - c1) / (t2 - t1),
        "wakeups_per_s": (w2 - w1) / (t2 - t1),
        "vm_rss_kb_median": statistics.median(rss),
        "vm_rss_kb_max": max(rss),
        "vm_hwm_kb": mem.get("VmHWM"),
        "vm_rss_kb_per_collector": statistics.median(rss) / n_symbols,
        "rss_anon_kb_median": statistics.median(anon),
        "trades": total,
        **scraping,
        **checks,
    }


def latency(
    admin_dsn: str,
    *,
    rate: float,
    seconds: float,
    batch_max_delay: float,
    warmup: float = 2.0,
    interval: float = 0.005,
    fresh_ts: bool = True,
) -> dict[str, Any]:
    """Paced 1 trade/msg at `rate`: exchange ts -> committed, by a visibility poller.

    fresh_ts=False uses `tcpd simulate` itself, whose paced ts is stamped per chunk (for
    showing that bias); True uses benchmarks/ingest_simulator.py (stamped when sent).
    """
    total = int(rate * seconds)
    writer = {"batch_max_delay": batch_max_delay}
    with Run(
        admin_dsn,
        "latency",
        syms=[SYMBOL],
        rate=rate,
        tpm=1,
        total=total,
        writer=writer,
        fresh_ts=fresh_ts,
    ) as run:
        poller = VisibilityPoller(run.dsn, SYMBOL, total, interval)
        poller.start()
        run.start_collector()
        try:
            if not poller.wait_all(seconds + 60):
                raise BenchError(f"latency: saw {len(poller.seen)} of {total} trades")
        finally:
            poller.stop()
        checks = run.finish()
    seen = sorted(poller.seen.items())
    t0 = seen[0][1].ts + warmup
    kept = [s for _, s in seen if s.ts >= t0]
    upper = [(s.visible - s.ts) * 1000 for s in kept]
    lower = [(s.created - s.ts) * 1000 for s in kept]
    span = kept[-1].ts - kept[0].ts if len(kept) > 1 else float("nan")
    return {
        "scenario": f"latency {rate:.0f} msg/s, batch_max_delay {batch_max_delay}",
        "simulator": "benchmarks/ingest_simulator.py" if fresh_ts else "tcpd simulate",
        "rate": rate,
        "batch_max_delay": batch_max_delay,
        "trades": total,
        "measured": len(kept),
        "sent_rate": len(kept) / span if span else None,
        "poll_interval_ms": interval * 1000,
        "polls": poller.polls,
        "p50_ms_upper": percentile(upper, 0.5),
        "p99_ms_upper": percentile(upper, 0.99),
        "max_ms_upper": max(upper),
        "p50_ms_lower": percentile(lower, 0.5),
        "p99_ms_lower": percentile(lower, 0.99),
        **checks,
    }
