"""Scale: one `tcpd run` collecting 600 symbols (300 OKX, 300 Binance) at a skewed rate, with
connections shared between pairs or one per pair, interleaved in one run.

    .venv/bin/python benchmarks/scale.py --dsn postgresql://postgres@127.0.0.1:55495/postgres \\
        --reps 3 --json /tmp/scale.json
    # quickly: 20 symbols per venue, 2,000 trades/s, short windows
    .venv/bin/python benchmarks/scale.py --dsn ... --symbols-per-venue 20 --rate 2000 \\
        --reps 1 --settle 3 --window 10

Per repetition and layout (`--layouts`, values of `connection.pairs_per_connection`; default
1 = today's one connection per pair, and 50 = the shipped default; the order flips every other
repetition): a fresh migrated database (`bench_scale<layout>_<pid>`, dropped afterwards), both
simulators trading live (`tcpd simulate --exchange okx|binance --live --skew zipf:S`, --rate
split evenly between the venues; trades on OKX's `trades` channel and Binance's `trade`, books
(OKX books5 / Binance depth20, --books-rate 1 or 10 a second per symbol) and tickers
(--tickers-rate) for every symbol) and one `tcpd run --config okx.json --config binance.json`
collecting trades, order book and ticker of every symbol (`store_raw_data` false, gap filling
off unless --gap-fill: with live simulators it would backfill the start-up's trades at the REST
limits, longer in the slower layout, and muddle the window; writer.status_interval 1 s).

Measured per run:
- connections: ESTABLISHED TCP sockets of the `tcpd run` process to each simulator's port
  (/proc/PID/fd inodes matched in /proc/PID/net/tcp), at the middle of the window; the
  simulators' own counters (connections accepted, so reconnects show) are in the JSON.
- start-up: seconds from launching `tcpd run` until every symbol has a row in raw_trades
  ("trades"), and an orderbook and a ticker row in market_data ("all data"), polled every
  0.5 s with one index probe per symbol still missing.
- after --settle seconds, over --window seconds: CPU (utime+stime of the process, /proc/PID/stat)
  per stored trade (rows of raw_trades whose batch transaction started in the window,
  created_at) and per received message (the sum of statistics.messages_received over the
  collector_status rows, whose deltas are divided by their updated_at span); stored trades/s;
  VmRSS and RssAnon (median of 0.5 s samples), VmHWM at the end; MB per symbol =
  (VmRSS - VmRSS of `tcpd run` before it connects, rss_baseline.py's probe) / symbols.
- latency of trades in the window, exchange timestamp -> committed: a **lower bound** for every
  trade (created_at - timestamp: created_at is the transaction's start) and an **upper bound**
  for a sample of symbols per venue (--latency-ranks, by trade rate: 10 = the 10th busiest,
  -1 = the quietest) from a poller thread like ingest_latency.py's (the wall clock before the
  first poll every --poll-interval that saw the row - timestamp). OKX stamps a trade when its
  ~5 ms chunk is built, Binance when it is published: both within a few ms of sending.

Reported: the median over repetitions per layout and each layout's ratio to layout 1 computed
within each repetition (median of the per-repetition ratios, and every one). The machine has
2 cores shared by both simulators, `tcpd run` and the database server: every figure is for the
whole pipeline on 2 cores. OKX's connect rate (3/s) makes one connection per pair take ~100 s
to start 300 pairs; Binance's (300 per 300 s) admits 300 at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest_db import connect, fresh_database
from ingest_latency import percentile
from ingest_procs import TCPD_CMD, BenchError, Collector, cpu_seconds, memory_kb
from ingest_scenarios import symbols
from rss_baseline import TARGETS, probe
from rss_symbols import LiveSimulator

MB = 1024.0
BINANCE_DEPTH = {1.0: "depth20@1000ms", 10.0: "depth20@100ms"}  # --books-rate -> Binance stream


# -- processes ----------------------------------------------------------------------------------


class SkewedSimulator(LiveSimulator):
    """rss_symbols.LiveSimulator with books, tickers and --skew."""

    def __init__(
        self, exchange: str, syms: list[str], rate: float, workdir: Path, *, skew: str, books: float,
        tickers: float,
    ) -> None:  # fmt: skip
        super().__init__(exchange, syms, rate, workdir)
        self.skew, self.books, self.tickers = skew, books, tickers
        self.counters: dict[str, int] = {}

    def command(self) -> list[str]:
        cmd = [
            *TCPD_CMD, "simulate", "--exchange", self.exchange, "--port", "0",
            "--symbols", ",".join(self.syms), "--rate", str(self.rate), "--live", "--skew", self.skew,
            "--tickers-rate", str(self.tickers),
        ]  # fmt: skip
        if self.exchange == "okx":
            cmd += ["--books-rate", str(self.books), "--trades-channel", "trades", "--idle-timeout", "3600"]
        return cmd

    @property
    def port(self) -> int:
        return int(self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    def stop(self) -> None:
        """SIGINT (it prints its counters), then LiveSimulator's stop."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):  # LiveSimulator.stop() kills it
                self._proc.wait(30)
        super().stop()
        for line in self._err().splitlines():
            if line.startswith("stopped: "):
                for part in line.removeprefix("stopped: ").split(","):
                    key, _, value = part.strip().partition("=")
                    if value.isdigit():
                        self.counters[key] = int(value)


@dataclass
class TwoVenueCollector(Collector):
    """`tcpd run` with an okx.json and a binance.json (trades, books, tickers of every symbol)."""

    venues: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # venue -> (url, symbols)
    pairs_per_connection: int = 50
    books: float = 1.0
    gap_fill: bool = False

    def write_configs(self) -> list[str]:
        args: list[str] = []
        for venue, (url, syms) in self.venues.items():
            if venue == "okx":
                base = url.rsplit("/ws/v5/", 1)[0]
                connection: dict[str, Any] = {
                    "public_ws_url": url,
                    "business_ws_url": base + "/ws/v5/business",
                }
                channels = {"trades": "trades", "orderbook": "books5", "ticker": "tickers"}
            else:
                connection = {"ws_url": url}
                channels = {"trades": "trade", "orderbook": BINANCE_DEPTH[self.books], "ticker": "ticker"}
            connection["pairs_per_connection"] = self.pairs_per_connection
            config: dict[str, Any] = {
                "exchange": venue,
                "connection": connection,
                "data_collection": {"store_raw_data": False},
                "trading_pairs": [
                    {"symbol": s, "data_types": ["trade", "orderbook", "ticker"], "channels": channels}
                    for s in syms
                ],
            }
            if not self.gap_fill:
                config["gap_fill"] = {"enabled": False}
            path = self.workdir / f"{venue}.json"
            path.write_text(json.dumps(config, indent=2))
            args += ["--config", str(path)]
        files = {
            "database": {
                "database": {"url": self.dsn},
                "writer": {"status_interval": 1.0},
                "http": {"listen": None},
            },
            "logging": {"level": "INFO", "console_output": True, "file_output": False},
        }
        for name, content in files.items():
            (self.workdir / f"{name}.json").write_text(json.dumps(content, indent=2))
            args += [f"--{name}-config", str(self.workdir / f"{name}.json")]
        return args


# -- /proc and database probes ------------------------------------------------------------------


def connections_to(pid: int, ports: dict[str, int]) -> dict[str, int]:
    """ESTABLISHED TCP connections of process `pid` to each of `ports` (venue -> port)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    by_port = {port: venue for venue, port in ports.items()}
    out = dict.fromkeys(ports, 0)
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            remote_port, state, inode = int(cols[2].rsplit(":", 1)[1], 16), cols[3], cols[9]
            if state == "01" and inode in inodes and remote_port in by_port:
                out[by_port[remote_port]] += 1
    return out


_MISSING = {
    "trades": "SELECT s FROM unnest(%s::text[]) AS s WHERE NOT EXISTS "
    "(SELECT 1 FROM raw_trades WHERE exchange = %s AND symbol = s)",
    "orderbook": "SELECT s FROM unnest(%s::text[]) AS s WHERE NOT EXISTS "
    "(SELECT 1 FROM market_data WHERE exchange = %s AND symbol = s AND data_type = 'orderbook')",
    "ticker": "SELECT s FROM unnest(%s::text[]) AS s WHERE NOT EXISTS "
    "(SELECT 1 FROM market_data WHERE exchange = %s AND symbol = s AND data_type = 'ticker')",
}


def messages_received(conn: Any) -> tuple[int, float]:
    """(sum of statistics.messages_received over collector_status, newest updated_at epoch)."""
    row = conn.execute(
        "SELECT coalesce(sum((status_json->'statistics'->>'messages_received')::bigint), 0), "
        "coalesce(extract(epoch FROM max(updated_at))::float8, 0) FROM collector_status"
    ).fetchone()
    return (int(row[0]), float(row[1])) if row else (0, 0.0)


@dataclass
class LatencyPoller:
    """Upper-bound latency for a few (venue, symbol): like ingest_latency.VisibilityPoller, for
    live symbols with any trade ids. Rows from `margin` s before the newest ts seen are asked
    for each poll (a batch may commit after a newer one); each trade is stamped once."""

    dsn: str
    targets: list[tuple[str, str]]
    since: float  # epoch: trades with an older ts are not measured
    interval: float = 0.01
    margin: float = 0.1
    latencies_ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="latency-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        newest = dict.fromkeys(self.targets, self.since)
        seen: dict[tuple[str, str], dict[str, float]] = {t: {} for t in self.targets}
        for t in self.targets:
            self.latencies_ms[t] = []
        with connect(self.dsn) as conn:
            while not self._stop.wait(self.interval):
                for target in self.targets:
                    started = time.time()
                    rows = conn.execute(
                        'SELECT trade_id, extract(epoch FROM "timestamp")::float8 FROM raw_trades '
                        'WHERE exchange = %s AND symbol = %s AND "timestamp" >= to_timestamp(%s)',
                        (*target, max(self.since, newest[target] - self.margin)),
                    ).fetchall()
                    known = seen[target]
                    for trade_id, ts in rows:
                        if trade_id not in known:
                            known[trade_id] = ts
                            self.latencies_ms[target].append((started - ts) * 1000)
                            newest[target] = max(newest[target], ts)
                    if len(known) > 10_000:  # forget ids far below the margin
                        low = newest[target] - 10 * self.margin
                        seen[target] = {k: v for k, v in known.items() if v >= low}


def _window_rows(conn: Any, start: float, end: float) -> dict[str, Any]:
    """Per venue: trades whose batch started in [start, end), their created_at - ts percentiles
    (ms), and market_data rows per data type."""
    out: dict[str, Any] = {}
    rows = conn.execute(
        "SELECT exchange, count(*), percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
        '(ORDER BY extract(epoch FROM created_at - "timestamp")) FROM raw_trades '
        "WHERE created_at >= to_timestamp(%s) AND created_at < to_timestamp(%s) GROUP BY exchange",
        (start, end),
    ).fetchall()
    for venue, count, pcts in rows:
        out[venue] = {"trades": int(count), "p50_ms_lower": pcts[0] * 1000, "p99_ms_lower": pcts[1] * 1000}
    for venue, data_type, count in conn.execute(
        "SELECT exchange, data_type, count(*) FROM market_data WHERE created_at >= to_timestamp(%s) "
        "AND created_at < to_timestamp(%s) GROUP BY exchange, data_type",
        (start, end),
    ).fetchall():
        out.setdefault(venue, {})[f"{data_type}_rows"] = int(count)
    return out


# -- one run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    per_venue: int
    rate: float
    skew: str
    books: float
    tickers: float
    settle: float
    window: float
    timeout: float
    latency_ranks: tuple[int, ...]
    poll_interval: float
    gap_fill: bool


def measure(admin_dsn: str, layout: int, o: Options, baseline_kb: float) -> dict[str, Any]:
    """One run of both simulators and one `tcpd run` with pairs_per_connection = `layout`."""
    venue_syms = {v: symbols(o.per_venue, v) for v in ("okx", "binance")}
    with (
        fresh_database(admin_dsn, f"scale{layout}") as dsn,
        tempfile.TemporaryDirectory(prefix=f"tcpd_scale{layout}_") as tmp,
    ):
        workdir = Path(tmp)
        sims = {
            v: SkewedSimulator(v, s, o.rate / 2, workdir, skew=o.skew, books=o.books, tickers=o.tickers)
            for v, s in venue_syms.items()
        }
        col = TwoVenueCollector(
            "", dsn, [], workdir, venues={}, pairs_per_connection=layout, books=o.books, gap_fill=o.gap_fill
        )
        poll = connect(dsn)
        poller: LatencyPoller | None = None
        try:
            for sim in sims.values():
                sim.start()
            col.venues = {v: (sims[v].url, venue_syms[v]) for v in sims}
            ports = {v: sim.port for v, sim in sims.items()}
            launched = time.monotonic()
            col.start()
            missing = {(kind, v): list(s) for kind in _MISSING for v, s in venue_syms.items()}
            done_at: dict[str, float] = {}
            peak = dict.fromkeys(ports, 0)
            while missing:
                for key in list(missing):
                    kind, venue = key
                    left = [r[0] for r in poll.execute(_MISSING[kind], (missing[key], venue)).fetchall()]
                    if left:
                        missing[key] = left
                    else:
                        del missing[key]
                        done_at[f"{venue} {kind}"] = time.monotonic() - launched
                if col.alive():
                    for v, n in connections_to(col.pid, ports).items():
                        peak[v] = max(peak[v], n)
                else:
                    raise BenchError(f"collector exited early:\n{col.log_tail()}")
                if missing and time.monotonic() - launched > o.timeout:
                    left_n = {f"{v} {k}": len(s) for (k, v), s in missing.items()}
                    raise BenchError(f"layout {layout}: still without data after {o.timeout:.0f}s: {left_n}")
                time.sleep(0.5)
            time.sleep(o.settle)
            # The window.
            targets = []
            for v, syms in venue_syms.items():
                for rank in o.latency_ranks:
                    sym = syms[min(rank, len(syms)) - 1] if rank > 0 else syms[rank]
                    if (v, sym) not in targets:
                        targets.append((v, sym))
            start = time.time()
            poller = LatencyPoller(dsn, targets, start, o.poll_interval)
            poller.start()
            cpu0, msgs0 = cpu_seconds(col.pid), messages_received(poll)
            rss: list[int] = []
            anon: list[int] = []
            conns: dict[str, int] = {}
            while time.time() - start < o.window:
                sample = memory_kb(col.pid)
                rss.append(sample["VmRSS"])
                anon.append(sample["RssAnon"])
                if not conns and time.time() - start >= o.window / 2:
                    conns = connections_to(col.pid, ports)
                time.sleep(0.5)
            cpu1, end = cpu_seconds(col.pid), time.time()
            msgs1 = messages_received(poll)
            hwm = memory_kb(col.pid)["VmHWM"]
            poller.stop()
            rows = _window_rows(poll, start, end)
            exit_code = col.stop()
            retries = sum(1 for line in col.log_tail(10**9).splitlines() if "failed (" in line)
        finally:
            if poller is not None:
                poller.stop()
            poll.close()
            if col.alive():
                col.stop(30)
            for sim in sims.values():
                sim.stop()
    seconds = end - start
    cpu = cpu1 - cpu0
    trades = sum(r.get("trades", 0) for r in rows.values())
    msg_span = msgs1[1] - msgs0[1]
    msg_rate = (msgs1[0] - msgs0[0]) / msg_span if msg_span > 0 else float("nan")
    upper = {f"{v} {s}": vals for (v, s), vals in poller.latencies_ms.items()} if poller else {}
    all_upper = [x for vals in upper.values() for x in vals]
    n_symbols = 2 * o.per_venue
    return {
        "pairs_per_connection": layout,
        "connections": sum(conns.values()),
        "connections_per_venue": conns,
        "connections_peak_startup": peak,
        "simulator_counters": {v: s.counters for v, s in sims.items()},
        "seconds_to_all_trades": max(t for k, t in done_at.items() if k.endswith(" trades")),
        "seconds_to_all_data": max(done_at.values()),
        "seconds_to": done_at,
        "window_s": seconds,
        "trades_per_s": trades / seconds,
        "messages_per_s": msg_rate,
        "cpu_share": cpu / seconds,
        "cpu_us_per_trade": cpu / trades * 1e6 if trades else float("nan"),
        "cpu_us_per_message": cpu / seconds / msg_rate * 1e6 if msg_rate > 0 else float("nan"),
        "vm_rss_kb": statistics.median(rss),
        "rss_anon_kb": statistics.median(anon),
        "vm_hwm_kb": hwm,
        "kb_per_symbol": (statistics.median(rss) - baseline_kb) / n_symbols,
        "p99_ms_lower": max((r.get("p99_ms_lower", 0.0) for r in rows.values()), default=float("nan")),
        "p99_ms_upper": percentile(all_upper, 0.99) if all_upper else float("nan"),
        "p99_ms_upper_per_symbol": {k: percentile(v, 0.99) if v else None for k, v in upper.items()},
        "upper_samples": len(all_upper),
        "per_venue": rows,
        "retry_warnings": retries,
        "exit_code": exit_code,
    }


# -- report -------------------------------------------------------------------------------------

COLUMNS = (  # key, header, format, scale
    ("connections", "conns", "{:6.0f}", 1.0),
    ("seconds_to_all_trades", "s trades", "{:8.1f}", 1.0),
    ("seconds_to_all_data", "s all", "{:6.1f}", 1.0),
    ("trades_per_s", "trades/s", "{:8.0f}", 1.0),
    ("messages_per_s", "msg/s", "{:7.0f}", 1.0),
    ("cpu_share", "CPU", "{:5.2f}", 1.0),
    ("cpu_us_per_trade", "µs/trade", "{:8.1f}", 1.0),
    ("cpu_us_per_message", "µs/msg", "{:6.1f}", 1.0),
    ("vm_rss_kb", "RSS MB", "{:6.1f}", 1 / MB),
    ("kb_per_symbol", "kB/sym", "{:6.1f}", 1.0),
    ("p99_ms_lower", "p99 lo", "{:6.1f}", 1.0),
    ("p99_ms_upper", "p99 up", "{:6.1f}", 1.0),
)


def _med(runs: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in runs if r[key] == r[key]]  # NaN != NaN
    return float(statistics.median(vals)) if vals else float("nan")


def table(results: dict[int, list[dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    head = f"{'layout':>7s} " + " ".join(f"{h:>{len(f.format(0))}s}" for _, h, f, _ in COLUMNS)
    lines = [head]
    for layout, runs in results.items():
        if runs:
            cells = " ".join(f.format(_med(runs, k) * s) for k, _, f, s in COLUMNS)
            lines.append(f"{layout:7d} {cells}")
    ratios: dict[str, Any] = {}
    base = {r["repetition"]: r for r in results.get(1, [])}
    for layout, runs in results.items():
        if layout == 1 or not base:
            continue
        per_key: dict[str, list[float]] = {}
        for r in runs:
            b = base.get(r["repetition"])
            if b is None:
                continue
            for key, *_ in COLUMNS:
                if b[key] and b[key] == b[key] and r[key] == r[key]:
                    per_key.setdefault(key, []).append(r[key] / b[key])
        ratios[f"{layout}:1"] = {k: {"median": statistics.median(v), "runs": v} for k, v in per_key.items()}
        cells = " ".join(
            f"{statistics.median(per_key[k]):>{len(f.format(0))}.2f}"
            if k in per_key
            else " " * len(f.format(0))
            for k, _, f, _ in COLUMNS
        )
        lines.append(f"{str(layout) + ':1':>7s} {cells}")
    lines.append(
        "layout = pairs_per_connection; conns = connections to both simulators mid-window; s trades / "
        "s all = launch until every symbol has a trade / also a book and a ticker row; CPU = cores "
        "used by tcpd run; p99 lo = created_at - ts (all trades), p99 up = seen by the poller - ts "
        "(sample symbols); N:1 rows = median of per-repetition ratios to layout 1."
    )
    return "\n".join(lines), ratios


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", default=os.environ.get("TCPD_BENCH_DSN"), help="admin DSN (CREATEDB)")
    p.add_argument("--layouts", default="1,50", help="pairs_per_connection values; 1 is the reference")
    p.add_argument("--symbols-per-venue", type=int, default=300)
    p.add_argument("--rate", type=float, default=20_000.0, help="trades/s over all symbols (half per venue)")
    p.add_argument("--skew", default="zipf:1.2", help="simulators' --skew (zipf:S)")
    p.add_argument(
        "--books-rate", type=float, default=1.0, choices=sorted(BINANCE_DEPTH), help="books/s per symbol"
    )
    p.add_argument("--tickers-rate", type=float, default=1.0, help="tickers/s per symbol")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--settle", type=float, default=5.0, help="seconds after every symbol has data")
    p.add_argument("--window", type=float, default=30.0, help="seconds of the steady window")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for every symbol to have data")
    p.add_argument(
        "--latency-ranks", default="10,-1", help="symbols per venue polled for latency, by rate rank"
    )
    p.add_argument("--poll-interval", type=float, default=0.01)
    p.add_argument("--gap-fill", action="store_true", help="collect with gap filling on")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    if not a.dsn:
        p.error("give --dsn or set TCPD_BENCH_DSN")
    layouts = [int(x) for x in a.layouts.split(",") if x.strip()]
    if 1 not in layouts:
        layouts.insert(0, 1)
    o = Options(
        a.symbols_per_venue, a.rate, a.skew, a.books_rate, a.tickers_rate, a.settle, a.window, a.timeout,
        tuple(int(x) for x in a.latency_ranks.split(",")), a.poll_interval, a.gap_fill,
    )  # fmt: skip
    baseline = probe(TARGETS["tcpd run, before connecting"])[-1]["VmRSS"]
    report: dict[str, Any] = {
        "command": " ".join(sys.argv), "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
        "baseline_vm_rss_kb": baseline, "options": o.__dict__,
    }  # fmt: skip
    print(f"{os.cpu_count()} CPUs (shared), load {os.getloadavg()[0]:.2f}; tcpd run before connecting: "
          f"{baseline / MB:.1f} MB", flush=True)  # fmt: skip
    results: dict[int, list[dict[str, Any]]] = {n: [] for n in layouts}
    failed = False
    for i in range(a.reps):
        for layout in layouts if i % 2 == 0 else layouts[::-1]:
            started = time.monotonic()
            try:
                r = measure(a.dsn, layout, o, baseline)
            except BenchError as exc:
                print(f"  !! layout {layout}, repetition {i + 1}: {exc}", flush=True)
                failed = True
                continue
            r["repetition"] = i + 1
            results[layout].append(r)
            brief = {k: r[k] for k, *_ in COLUMNS} | {"connections_per_venue": r["connections_per_venue"]}
            took = time.monotonic() - started
            print(f"[layout {layout}, repetition {i + 1}/{a.reps}, {took:.0f}s] {brief}", flush=True)
    report["loadavg_end"] = os.getloadavg()
    text, ratios = table(results)
    print("\n" + text)
    if a.json:
        report |= {"runs": {str(k): v for k, v in results.items()}, "ratios": ratios, "table": text}
        a.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
