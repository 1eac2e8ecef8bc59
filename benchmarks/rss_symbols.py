"""Resident memory of a running `tcpd run` against N symbols, per venue, and the time until
every symbol has data.

    .venv/bin/python benchmarks/rss_symbols.py --dsn postgresql://postgres@127.0.0.1:55490/postgres \\
        --exchanges okx,binance --symbols 1,10,600 --reps 3 --json /tmp/rss_symbols.json

For every repetition, venue and symbol count (interleaved, so a slow spell of the machine
hits every cell alike): a fresh migrated database (`bench_rss<venue><n>_<pid>`, dropped
afterwards), a live simulator (`tcpd simulate --exchange <venue> --rate <n * --rate-per-symbol>`,
trades on the clock, trades only: books and tickers off) and one `tcpd run` process with
generated config files collecting trades of the n symbols (`store_raw_data` false; OKX on the
`trades` channel, Binance on `trade`; Binance opens one connection per trading pair).
`--no-gap-fill` writes `"gap_fill": {"enabled": false}` into the exchange config, to tell the
gap filler's share (it opens a database connection per query, per symbol, at start-up).

Measured: seconds from launching `tcpd run` to every symbol having a row in raw_trades
("all symbols"), the most database connections (pg_stat_activity of the run's database) seen
meanwhile, and the "... failed (...); retrying" lines the collector logged; then, --settle
seconds later, VmRSS, VmHWM and RssAnon from /proc/PID/status (median of --samples samples
0.5 s apart for VmRSS/RssAnon, VmHWM at the end), the process's threads and open sockets.
Reported: the median over repetitions and every run, and MB per extra symbol =
(RSS(max n) - RSS(min n)) / (max n - min n), from the medians. MB = kB / 1024.

`--metrics off,on` measures every cell twice, interleaved (order flipped every other
repetition): with the /metrics endpoint off (`"http": {"listen": null}`) and on
(`"127.0.0.1:0"`, GET /metrics every second by ingest_scraper.MetricsScraper from launch to
the last sample, as Prometheus would but 15 times as often); a run with the endpoint on and no
scrape between the settle's start and the last sample fails. Reported beside the medians: the
paired on - off VmRSS difference per repetition.

Also (on by default, `--no-imports` skips it): which modules an OKX-only `tcpd run` has loaded at the
point where it would connect (benchmarks/rss_baseline.py's probe), and whether any Binance
module is one of them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from ingest_db import connect, fresh_database
from ingest_procs import _URL, ROOT, TCPD_CMD, VENUES, BenchError, Collector, memory_kb
from ingest_scenarios import symbols
from ingest_scraper import MetricsScraper
from rss_baseline import _READ_STATUS, _TCPD_RUN

MB = 1024.0


def _sockets(pid: int) -> int:
    """Open sockets of `pid` (fds pointing at socket:[...]): its connections, the database's
    included."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


def _threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


class LiveSimulator:
    """`tcpd simulate` trading on the clock, trades only, until stop()."""

    def __init__(self, exchange: str, syms: list[str], rate: float, workdir: Path) -> None:
        self.exchange, self.syms, self.rate, self.workdir = exchange, syms, rate, workdir
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def command(self) -> list[str]:
        """The `tcpd simulate` command line (subclasses add options)."""
        cmd = [
            *TCPD_CMD, "simulate", "--exchange", self.exchange, "--port", "0",
            "--symbols", ",".join(self.syms), "--rate", str(self.rate), "--live", "--tickers-rate", "0",
        ]  # fmt: skip
        if self.exchange == "okx":
            cmd += ["--books-rate", "0", "--trades-channel", "trades", "--idle-timeout", "3600"]
        return cmd

    def start(self, timeout: float = 120.0) -> None:
        self._log = (self.workdir / f"{self.exchange}-simulator.err").open("w")
        self._proc = subprocess.Popen(
            self.command(), cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if not line:
                raise BenchError(f"{self.exchange} simulator exited early: {self._err()[-2000:]}")
            found = _URL[self.exchange].search(line)
            if found:
                self.url = found.group(1)
                return
        raise BenchError(f"{self.exchange} simulator did not print its URL in time")

    def _err(self) -> str:
        if self._log is not None and not self._log.closed:
            self._log.flush()
        path = self.workdir / f"{self.exchange}-simulator.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._log is not None:
            self._log.close()
        self._proc = None


def _poll(conn: Any) -> tuple[int, int]:
    """(symbols with a row in raw_trades, server backends of this database other than `conn`)."""
    row = conn.execute(
        "SELECT (SELECT count(DISTINCT symbol) FROM raw_trades), (SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid())"
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def measure(
    admin_dsn: str,
    exchange: str,
    n: int,
    *,
    rate_per_symbol: float,
    settle: float,
    samples: int,
    timeout: float,
    gap_fill: bool = True,
    metrics: bool = False,
) -> dict[str, Any]:
    """One run: simulator + `tcpd run` over n symbols; memory after all symbols have data + settle."""
    syms = symbols(n, exchange)
    with (
        fresh_database(admin_dsn, f"rss{exchange}{n}") as dsn,
        tempfile.TemporaryDirectory(prefix=f"tcpd_rss_{exchange}{n}_") as tmp,
    ):
        workdir = Path(tmp)
        sim = LiveSimulator(exchange, syms, rate_per_symbol * n, workdir)
        sim.start()
        sections = {} if gap_fill else {"gap_fill": {"enabled": False}}
        col = Collector(
            sim.url, dsn, syms, workdir, exchange=exchange, sections=sections,
            http_listen="127.0.0.1:0" if metrics else None,
        )  # fmt: skip
        scraper = MetricsScraper(workdir / "collector.log") if metrics else None
        # One connection, opened before the collector starts, so polling never competes with
        # the collector for the server's max_connections.
        poll = connect(dsn)
        try:
            launched = time.monotonic()
            col.start()
            if scraper is not None:
                scraper.start()
            deadline = launched + timeout
            seen = peak_backends = 0
            while True:
                seen, backends = _poll(poll)
                peak_backends = max(peak_backends, backends)
                if seen >= n:
                    break
                if not col.alive():
                    raise BenchError(f"collector exited early:\n{col.log_tail()}")
                if time.monotonic() > deadline:
                    raise BenchError(f"{exchange} {n}: {seen} of {n} symbols had data after {timeout:.0f}s")
                time.sleep(0.2)
            all_data = time.monotonic() - launched
            settle_start = time.time()
            time.sleep(settle)
            rss: list[int] = []
            anon: list[int] = []
            for _ in range(samples):
                sample = memory_kb(col.pid)
                rss.append(sample["VmRSS"])
                anon.append(sample["RssAnon"])
                time.sleep(0.5)
            end = memory_kb(col.pid)
            scraping: dict[str, Any] = {"metrics": "off"}
            if scraper is not None:
                scraper.stop()
                scraping = {"metrics": "on", **scraper.figures(settle_start, time.time())}
                if not scraping["scrapes_in_window"]:
                    raise BenchError(
                        f"{exchange} {n}: /metrics on but scraped {scraping['scrapes']} times, none "
                        f"while settling and sampling (failures {scraper.failures[-3:]})"
                    )
            threads, sockets = _threads(col.pid), _sockets(col.pid)
            backends_settled = _poll(poll)[1]
            exit_code = col.stop()
            log = col.log_tail(10**9)
        finally:
            if scraper is not None:
                scraper.stop()
            poll.close()
            if col.alive():
                col.stop(30)
            sim.stop()
    return {
        "exchange": exchange,
        "symbols": n,
        "gap_fill": gap_fill,
        "seconds_to_all_symbols": all_data,
        "vm_rss_kb": statistics.median(rss),
        "rss_anon_kb": statistics.median(anon),
        "vm_hwm_kb": end["VmHWM"],
        "threads": threads,
        "sockets": sockets,
        # Database connections of the collector: the most seen while symbols were starting,
        # and after the settle; retries the log reports (e.g. the gap filler's, when the server's
        # max_connections is reached).
        "db_backends_peak_startup": peak_backends,
        "db_backends_settled": backends_settled,
        "retry_warnings": sum(1 for line in log.splitlines() if "failed (" in line),
        "exit_code": exit_code,
        **scraping,
    }


def venue_imports() -> dict[str, Any]:
    """Modules loaded by an OKX-only `tcpd run` just before it connects (rss_baseline's probe,
    config/okx.json) and by `import ingest.service`: any from a Binance package?"""
    listing = "print('MODULES ' + ' '.join(sorted(sys.modules)), flush=True)"
    out: dict[str, Any] = {}
    for label, code in (
        ("import ingest.service", _READ_STATUS + "import ingest.service\n" + listing),
        ("tcpd run --config config/okx.json, before connecting",
         _TCPD_RUN.replace("_report(smaps=True)", listing)),
    ):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
        )
        mods = next(
            (line.split()[1:] for line in done.stdout.splitlines() if line.startswith("MODULES ")), []
        )
        if done.returncode != 0 or not mods:
            raise BenchError(f"import probe {label!r} failed:\n{done.stderr[-2000:]}")
        out[label] = {
            "modules": len(mods),
            "binance_modules": [m for m in mods if "binance" in m],
            "okx_modules": len([m for m in mods if ".okx" in m]),
        }
    return out


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


Cell = tuple[str, int, str]  # (venue, symbols, /metrics "off" or "on")


def table(results: dict[Cell, list[dict[str, Any]]], counts: list[int]) -> str:
    lines = [
        f"{'venue':8s} {'symbols':>7s} {'metrics':>7s} {'VmRSS MB':>9s} {'VmHWM MB':>9s} {'RssAnon MB':>10s} "
        f"{'s to all':>8s} {'threads':>7s} {'sockets':>7s} {'db peak':>7s} {'retries':>7s} {'scrapes':>7s}"
        "  VmRSS MB of each run"
    ]
    for (exchange, n, metrics), runs in results.items():
        each = ", ".join(f"{r['vm_rss_kb'] / MB:.1f}" for r in runs)
        m = {k: _median(runs, k) for k in runs[0] if isinstance(runs[0][k], (int, float))}
        scrapes = f"{sum(r['scrapes_in_window'] for r in runs):7d}" if metrics == "on" else f"{'-':>7s}"
        lines.append(
            f"{exchange:8s} {n:7d} {metrics:>7s} {m['vm_rss_kb'] / MB:9.1f} {m['vm_hwm_kb'] / MB:9.1f} "
            f"{m['rss_anon_kb'] / MB:10.1f} {m['seconds_to_all_symbols']:8.1f} "
            f"{m['threads']:7.0f} {m['sockets']:7.0f} {m['db_backends_peak_startup']:7.0f} "
            f"{m['retry_warnings']:7.0f} {scrapes}  {each}"
        )
    lo, hi = min(counts), max(counts)
    variants = dict.fromkeys((ex, metrics) for ex, _, metrics in results)
    if lo != hi:
        for exchange, metrics in variants:
            a, b = results.get((exchange, lo, metrics)), results.get((exchange, hi, metrics))
            if a and b:
                for key, label in (("vm_rss_kb", "VmRSS"), ("vm_hwm_kb", "VmHWM"), ("rss_anon_kb", "anon")):
                    per = (_median(b, key) - _median(a, key)) / (hi - lo) / MB
                    lines.append(
                        f"{exchange}, /metrics {metrics}: {label} MB per extra symbol, ({hi} - {lo}) / "
                        f"{hi - lo}: {per:.4f} ({per * 1024:.1f} kB)"
                    )
    for (exchange, n, metrics), on in results.items():
        off = results.get((exchange, n, "off"))
        if metrics != "on" or not off:
            continue
        pairs = {r["repetition"]: r for r in off}
        for key, label in (("vm_rss_kb", "VmRSS"), ("rss_anon_kb", "RssAnon")):
            diffs = [(r[key] - pairs[r["repetition"]][key]) / MB for r in on if r["repetition"] in pairs]
            if diffs:
                each = ", ".join(f"{d:+.2f}" for d in diffs)
                lines.append(
                    f"{exchange} {n} symbol(s): {label} /metrics on - off, paired per repetition, MB: "
                    f"median {statistics.median(diffs):+.2f} ({each})"
                )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", default=os.environ.get("TCPD_BENCH_DSN"), help="admin DSN (CREATEDB)")
    p.add_argument("--exchanges", default="okx,binance", help=f"comma-separated subset of {','.join(VENUES)}")
    p.add_argument("--symbols", default="1,10,600", help="comma-separated symbol counts")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rate-per-symbol", type=float, default=1.0, help="trades/s per symbol")
    p.add_argument("--settle", type=float, default=10.0, help="seconds after every symbol has data")
    p.add_argument("--samples", type=int, default=5, help="VmRSS samples, 0.5 s apart (median)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for every symbol to have data")
    p.add_argument("--no-imports", action="store_true", help="skip the import check")
    p.add_argument("--no-gap-fill", action="store_true", help='collect with "gap_fill": {"enabled": false}')
    p.add_argument(
        "--metrics",
        default="off",
        help="/metrics endpoint variants, interleaved: off and/or on (scraped every second)",
    )
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    if not a.dsn:
        p.error("give --dsn or set TCPD_BENCH_DSN")
    exchanges = [x.strip() for x in a.exchanges.split(",") if x.strip()]
    if set(exchanges) - set(VENUES):
        p.error(f"--exchanges takes a subset of {','.join(VENUES)}")
    counts = [int(x) for x in a.symbols.split(",") if x.strip()]
    variants = list(dict.fromkeys(x.strip().lower() for x in a.metrics.split(",") if x.strip()))
    if not variants or set(variants) - {"off", "on"}:
        p.error("--metrics takes off, on or off,on")
    report: dict[str, Any] = {"command": " ".join(sys.argv), "loadavg_start": os.getloadavg()}
    if not a.no_imports:
        report["imports"] = venue_imports()
        for label, found in report["imports"].items():
            print(
                f"{label}: {found['modules']} modules, {found['okx_modules']} OKX, "
                f"Binance: {found['binance_modules'] or 'none'}",
                flush=True,
            )
    results: dict[Cell, list[dict[str, Any]]] = {
        (ex, n, m): [] for ex in exchanges for n in counts for m in variants
    }
    cells = list(results)
    failed = False
    for i in range(a.reps):
        for ex, n, m in cells if i % 2 == 0 else cells[::-1]:
            started = time.monotonic()
            try:
                r = measure(a.dsn, ex, n, rate_per_symbol=a.rate_per_symbol, settle=a.settle,
                            samples=a.samples, timeout=a.timeout, gap_fill=not a.no_gap_fill,
                            metrics=m == "on")  # fmt: skip
            except BenchError as exc:
                print(f"  !! {ex} {n} /metrics {m}: {exc}", flush=True)
                failed = True
                continue
            r["repetition"] = i + 1
            results[(ex, n, m)].append(r)
            print(f"[{ex} {n} symbols, /metrics {m}, repetition {i + 1}/{a.reps}, "
                  f"{time.monotonic() - started:.0f}s] {r}", flush=True)  # fmt: skip
    report["loadavg_end"] = os.getloadavg()
    done = {k: v for k, v in results.items() if v}
    text = table(done, counts)
    print("\n" + text)
    if a.json:
        report["runs"] = {f"{ex} {n} metrics {m}": v for (ex, n, m), v in results.items()}
        report["table"] = text
        a.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
