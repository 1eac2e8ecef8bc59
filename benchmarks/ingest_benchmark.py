"""End-to-end ingest benchmark: simulator -> `tcpd run` -> COPY -> raw_trades (native TimescaleDB).

A script, not a test: it prints a results table and can write JSON. Each scenario runs in a
fresh database `bench_*` (migrated, dropped afterwards) on the server given by --dsn (an
admin DSN with CREATEDB rights; superuser for the server-side COPY limit), with a fresh
simulator process and a fresh collector process, and checks that every trade sent was
stored exactly once with its values. See benchmarks/README.md and docs/performance.md.

    TCPD_BENCH_DSN=postgresql://postgres@127.0.0.1:55432/postgres \\
        .venv/bin/python benchmarks/ingest_benchmark.py --json /tmp/ingest.json
    # Binance beside OKX, interleaved per repetition (paired binance:okx ratios):
    .venv/bin/python benchmarks/ingest_benchmark.py --dsn ... --only throughput,steady \\
        --exchanges okx,binance
    # the /metrics endpoint off and on (scraped every second), interleaved (paired on:off ratios):
    .venv/bin/python benchmarks/ingest_benchmark.py --dsn ... --only throughput,steady --metrics off,on
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ingest_db import describe, server_settings
from ingest_procs import ROOT, VENUES
from ingest_scenarios import latency, limits, overload, steady, throughput

ALL = ("throughput", "overload", "steady", "latency")
# Not run by default: latency measured with `tcpd simulate` itself, to show its ts bias.
EXTRA = ("latency-stock",)
# Per-run figures compared venue against venue (paired per repetition) with --exchanges.
PAIRED = (
    ("trades_per_s", "trades/s"),
    ("cpu_us_per_trade", "collector CPU us/trade"),
    ("db_backends_cpu_us_per_trade", "server backends CPU us/trade"),
    ("simulator_cpu_us_per_trade", "simulator CPU us/trade"),
    ("vm_hwm_kb", "collector VmHWM"),
    ("wakeups_per_s", "wake-ups/s"),
    ("vm_rss_kb_median", "VmRSS"),
)


METRICS_ON = "+metrics"  # suffix of the keys of runs with the /metrics endpoint on


def venue_key(base: str, exchange: str, metrics: str = "off") -> str:
    """Where a venue's runs are kept: OKX under the historical keys ("1", "steady1"),
    another venue under "<key>-<venue>" ("1-binance", "steady1-binance"); runs with the
    /metrics endpoint on under the same key + "+metrics" ("1+metrics", "steady1-binance+metrics")."""
    key = base if exchange == "okx" else f"{base}-{exchange}"
    return key + METRICS_ON if metrics == "on" else key


def split_key(key: str) -> tuple[str, str, str]:
    """venue_key's inverse: "steady10-binance+metrics" -> ("steady10", "binance", "on")."""
    metrics = "on" if key.endswith(METRICS_ON) else "off"
    base, _, venue = key.removesuffix(METRICS_ON).partition("-")
    return base, venue or "okx", metrics


def _variants(exchanges: list[str], metrics: list[str], repetition: int) -> list[tuple[str, str]]:
    """(venue, metrics) of every run of a repetition, venue by venue with the metrics variants
    alternating, the whole order reversed every other repetition so none always goes first."""
    order = [(ex, m) for ex in exchanges for m in metrics]
    return order if repetition % 2 == 0 else order[::-1]


def paired_ratios(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """b / a per repetition for every PAIRED figure both have: {key: {"runs": [...], "median": x}}."""
    out: dict[str, dict[str, Any]] = {}
    for key, _ in PAIRED:
        runs = [
            rb[key] / ra[key] for ra, rb in zip(a, b, strict=True) if ra.get(key) and rb.get(key) is not None
        ]
        if runs:
            out[key] = {"runs": runs, "median": statistics.median(runs)}
    return out


def _median(results: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def _repeat(label: str, reps: int, fn: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i in range(reps):
        started = time.monotonic()
        result = fn()
        result["repetition"] = i + 1
        out.append(result)
        shown = {
            k: (round(v, 3) if isinstance(v, float) else v)
            for k, v in result.items()
            if k not in ("first_created", "last_created")
        }
        print(f"[{label} {i + 1}/{reps}, {time.monotonic() - started:.0f}s] {shown}", flush=True)
    return out


def run_throughput(dsn: str, a: argparse.Namespace) -> dict[str, Any]:
    """Interleaved per repetition: pipeline 1/msg of every venue in --exchanges with every
    --metrics variant, then (OKX) pipeline 10/msg and limits, so ratios are paired."""
    rows: dict[str, list[dict[str, Any]]] = {"1": [], "10": [], "limits": [], "raw": []}
    for ex in a.exchanges:
        for m in a.metrics:
            rows.setdefault(venue_key("1", ex, m), [])
        rows.setdefault(venue_key("raw", ex), [])
    for i in range(a.reps):
        for ex, m in _variants(a.exchanges, a.metrics, i):
            rows[venue_key("1", ex, m)] += _repeat(
                f"throughput 1/msg {ex}{', metrics on' if m == 'on' else ''}",
                1,
                partial(
                    throughput, dsn, tpm=1, total=a.trades_1, timeout=a.timeout, exchange=ex,
                    metrics=m == "on", scrape_interval=a.scrape_interval,
                ),
            )  # fmt: skip
        if "okx" in a.exchanges and "10" in a.throughput:
            rows["10"] += _repeat(
                "throughput 10/msg", 1, lambda: throughput(dsn, tpm=10, total=a.trades_10, timeout=a.timeout)
            )
        if "okx" in a.exchanges and "limits" in a.throughput:
            rows["limits"] += _repeat(
                "limits", 1, lambda: limits(dsn, total=a.trades_1, ts_ms=int(time.time() * 1000))
            )
        if a.with_raw:
            for ex in a.exchanges if i % 2 == 0 else a.exchanges[::-1]:
                rows[venue_key("raw", ex)] += _repeat(
                    f"throughput 1/msg store_raw_data {ex}",
                    1,
                    partial(
                        throughput,
                        dsn,
                        tpm=1,
                        total=a.trades_1,
                        timeout=a.timeout,
                        store_raw_data=True,
                        exchange=ex,
                    ),
                )
        print(f"-- repetition {i + 1} done", flush=True)
    out: dict[str, Any] = {"runs": rows}
    for ex in a.exchanges:
        if ex != "okx" and "okx" in a.exchanges:
            out[f"paired_{ex}_to_okx_1msg"] = paired_ratios(rows["1"], rows[venue_key("1", ex)])
            if a.with_raw:
                out[f"paired_{ex}_to_okx_raw"] = paired_ratios(rows["raw"], rows[venue_key("raw", ex)])
    if "on" in a.metrics and "off" in a.metrics:
        out["metrics_on_to_off"] = {
            venue_key("1", ex): paired_ratios(rows[venue_key("1", ex)], rows[venue_key("1", ex, "on")])
            for ex in a.exchanges
        }
    if not rows["limits"]:
        return out
    ratios_b = [
        p["trades_per_s"] / lim["binary_copy_trades_per_s"]
        for p, lim in zip(rows["1"], rows["limits"], strict=True)
    ]
    ratios_s = [
        p["trades_per_s"] / lim["server_copy_trades_per_s"]
        for p, lim in zip(rows["1"], rows["limits"], strict=True)
    ]
    return {
        **out,
        "ratio_1msg_to_binary_copy_median": statistics.median(ratios_b),
        "ratio_1msg_to_server_copy_median": statistics.median(ratios_s),
        "ratios_1msg_to_binary_copy": ratios_b,
        "ratios_1msg_to_server_copy": ratios_s,
    }


def _table(report: dict[str, Any]) -> str:
    lines = [f"{'measurement':<66} {'median':>12} {'runs':>26}  goal"]

    def add(name: str, runs: list[dict[str, Any]], key: str, fmt: str, goal: str) -> None:
        if not runs:
            return
        each = ", ".join(format(r[key], fmt) for r in runs if r.get(key) is not None)
        lines.append(f"{name:<66} {format(_median(runs, key), fmt):>12} {each:>26}  {goal}")

    def add_ratios(name: str, ratios: dict[str, dict[str, Any]]) -> None:
        for key, label in PAIRED:
            if key in ratios:
                each = ", ".join(f"{x:.2f}" for x in ratios[key]["runs"])
                lines.append(f"{f'{name}: {label}':<66} {ratios[key]['median']:>12.2f} {each:>26}")

    t = report.get("throughput")
    if t:
        r = t["runs"]
        add("throughput 1 trade/msg, trades/s", r["1"], "trades_per_s", ",.0f", ">= 100,000")
        add("throughput 10 trades/msg, trades/s", r["10"], "trades_per_s", ",.0f", ">= 200,000")
        add("throughput 1/msg store_raw_data=true, trades/s", r["raw"], "trades_per_s", ",.0f", "")
        for key in sorted(k for k in r if k not in ("1", "10", "limits", "raw") and r[k]):
            base, venue, metrics = split_key(key)
            venue += " /metrics on" if metrics == "on" else ""
            what = "1/msg store_raw_data=true" if base == "raw" else "1 trade/msg"
            add(f"{venue} throughput {what}, trades/s", r[key], "trades_per_s", ",.0f", "")
            add(f"{venue} collector CPU {what}, us/trade", r[key], "cpu_us_per_trade", ".2f", "")
            add(
                f"{venue} server backends CPU {what}, us/trade",
                r[key],
                "db_backends_cpu_us_per_trade",
                ".2f",
                "",
            )
            add(f"{venue} simulator CPU {what}, us/trade", r[key], "simulator_cpu_us_per_trade", ".2f", "")
            add(f"{venue} collector VmHWM {what}, MB", r[key], "vm_hwm_mb", ".1f", "")
            _add_scrapes(add, f"{venue} {what}", r[key])
        for key in sorted(k for k in t if k.startswith("paired_")):
            venue, _, what = key.removeprefix("paired_").partition("_to_okx_")
            add_ratios(f"{venue}:okx {what} (paired)", t[key])
        for key, ratios in t.get("metrics_on_to_off", {}).items():
            add_ratios(f"/metrics on:off {split_key(key)[1]} 1 trade/msg (paired)", ratios)
    if t and t["runs"]["limits"]:
        r = t["runs"]
        add("limit: binary COPY from Python, trades/s", r["limits"], "binary_copy_trades_per_s", ",.0f", "")
        add(
            "limit: server-side COPY FROM file, trades/s", r["limits"], "server_copy_trades_per_s", ",.0f", ""
        )
        lines.append(
            f"{'ratio 1/msg pipeline : binary COPY (paired, median)':<66} "
            f"{t['ratio_1msg_to_binary_copy_median']:>12.2f}"
        )
        lines.append(
            f"{'ratio 1/msg pipeline : server COPY (paired, median)':<66} "
            f"{t['ratio_1msg_to_server_copy_median']:>12.2f}"
        )
        add("collector CPU at full speed 1/msg, us/trade", r["1"], "cpu_us_per_trade", ".2f", "")
        add("collector CPU at full speed 10/msg, us/trade", r["10"], "cpu_us_per_trade", ".2f", "")
        add(
            "server backends CPU at full speed 1/msg, us/trade",
            r["1"],
            "db_backends_cpu_us_per_trade",
            ".2f",
            "",
        )
        add(
            "server backends CPU at full speed 10/msg, us/trade",
            r["10"],
            "db_backends_cpu_us_per_trade",
            ".2f",
            "",
        )
        add("simulator CPU at full speed 1/msg, us/trade", r["1"], "simulator_cpu_us_per_trade", ".2f", "")
        add(
            "server backend CPU, binary COPY limit, us/trade",
            r["limits"],
            "binary_copy_backend_cpu_us_per_trade",
            ".2f",
            "",
        )
        add(
            "server backend CPU, server COPY limit, us/trade",
            r["limits"],
            "server_copy_backend_cpu_us_per_trade",
            ".2f",
            "",
        )
        add("collector VmHWM at full speed 1/msg, MB", r["1"], "vm_hwm_mb", ".1f", "")
        add("collector VmHWM at full speed 10/msg, MB", r["10"], "vm_hwm_mb", ".1f", "")
    steady_keys = sorted(
        (k for k in report if k.startswith("steady") and not k.startswith("steady_paired")),
        key=lambda k: (int(split_key(k)[0][6:]), k),
    )
    for key in steady_keys:
        base, venue, metrics = split_key(key)
        n = base[6:]
        label = (
            f"{'1 collector' if n == '1' else n + ' collectors'}{'' if venue == 'okx' else ', ' + venue}"
            f"{', /metrics on' if metrics == 'on' else ''}"
        )
        s = report[key]
        rate = f"{s[0]['rate']:,.0f}"
        add(
            f"steady {rate} trades/s, {label}: CPU us/trade",
            s,
            "cpu_us_per_trade",
            ".2f",
            "<= 10" if n == "1" else "",
        )
        add(f"steady {rate} trades/s, {label}: wake-ups/s", s, "wakeups_per_s", ",.0f", "")
        add(f"steady {rate} trades/s, {label}: VmRSS MB", s, "vm_rss_mb", ".1f", "")
        add(f"steady {rate} trades/s, {label}: VmHWM MB", s, "vm_hwm_mb", ".1f", "")
        add(f"steady {rate} trades/s, {label}: RssAnon MB (private)", s, "rss_anon_mb", ".1f", "")
        add(
            f"steady {rate} trades/s, {label}: RSS MB per collector",
            s,
            "rss_mb_per_collector",
            ".1f",
            "< 50",
        )
        _add_scrapes(add, f"steady {rate} trades/s, {label}", s)
    for key in sorted(k for k in report if k.startswith("steady_paired")):
        n, _, venue = key.removeprefix("steady_paired").partition("-")
        add_ratios(f"{venue}:okx steady, {n} symbol(s) (paired)", report[key])
    for key, ratios in report.get("metrics_on_to_off_steady", {}).items():
        base, venue, _ = split_key(key)
        add_ratios(f"/metrics on:off steady, {base[6:]} symbol(s), {venue} (paired)", ratios)
    for key in sorted(k for k in report if k.startswith("latency")):
        s = report[key]
        d = s[0]["batch_max_delay"]
        if key.startswith("latency-stock"):
            d = f"{d} (tcpd simulate ts)"
        add(f"latency 1,000 msg/s delay={d}: p50 ms (visible, upper)", s, "p50_ms_upper", ".1f", "")
        add(
            f"latency 1,000 msg/s delay={d}: p99 ms (visible, upper)",
            s,
            "p99_ms_upper",
            ".1f",
            "< 50 (floor 100)",
        )
        add(f"latency 1,000 msg/s delay={d}: p50 ms (tx start, lower)", s, "p50_ms_lower", ".1f", "")
        add(f"latency 1,000 msg/s delay={d}: p99 ms (tx start, lower)", s, "p99_ms_lower", ".1f", "")
    o = report.get("overload")
    if o:
        add("overload: trades stored / sent", o, "stored_over_sent", ".6f", "1 (no loss)")
        add("overload: trades/s through the slowed writer", o, "trades_per_s", ",.0f", "")
        add("overload: collector VmHWM MB", o, "vm_hwm_mb", ".1f", "")
    ok = all(r.get("exactly_once", True) for runs in _all_runs(report) for r in runs)
    lines.append(f"every run stored every trade exactly once with its values: {'YES' if ok else 'NO'}")
    return "\n".join(lines)


def _add_scrapes(
    add: Callable[[str, list[dict[str, Any]], str, str, str], None], name: str, runs: list[dict[str, Any]]
) -> None:
    """The scraper's figures, for runs with the /metrics endpoint on."""
    if runs and runs[0].get("metrics") == "on":
        every = f"1/{runs[0].get('scrape_interval', 1.0):g}s"
        add(f"{name}: /metrics scrapes in the window ({every})", runs, "scrapes_in_window", ",.0f", ">= 1")
        add(f"{name}: /metrics scrape, ms", runs, "scrape_ms_median", ".1f", "")
        add(f"{name}: /metrics scrape failures", runs, "scrape_failures", ",.0f", "0")


def _all_runs(report: dict[str, Any]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    for key, value in report.items():
        if key == "throughput":
            out.extend(value["runs"].values())
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out.append(value)
    return out


def _derive(report: dict[str, Any]) -> None:
    """Add MB figures and ratios used by the table."""
    for runs in _all_runs(report):
        for r in runs:
            for src, dst in (
                ("vm_hwm_kb", "vm_hwm_mb"),
                ("vm_rss_kb_median", "vm_rss_mb"),
                ("vm_rss_kb_per_collector", "rss_mb_per_collector"),
                ("rss_anon_kb_median", "rss_anon_mb"),
            ):
                if r.get(src) is not None:
                    r[dst] = r[src] / 1024
            if "stored" in r and r.get("sent"):
                r["stored_over_sent"] = r["stored"] / r["sent"]


def _code() -> str:
    """Which sources `tcpd` runs (ingest_procs.TCPD_CMD, cwd ROOT) and the commit they are at."""
    where = subprocess.run(
        [sys.executable, "-c", "import ingest; print(ingest.__file__)"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    head = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cI %s"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    # This process migrates the databases with its own `ingest` (ingest_db): the same tree?
    own = getattr(sys.modules.get("ingest"), "__file__", "?")
    mixed = "" if own == where else f"; this script migrates with {own} (set PYTHONPATH={ROOT})"
    return f"{where} at {head[:100]}{' (+ uncommitted changes)' if dirty else ''}{mixed}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="End-to-end ingest benchmark (see benchmarks/README.md).")
    p.add_argument(
        "--dsn",
        default=os.environ.get("TCPD_BENCH_DSN"),
        help="admin DSN of a native server (CREATEDB; superuser for the server COPY limit); "
        "default: env TCPD_BENCH_DSN",
    )
    p.add_argument(
        "--only",
        default=",".join(ALL),
        help=f"comma-separated subset of {','.join(ALL)} (also: {','.join(EXTRA)})",
    )
    p.add_argument("--reps", type=int, default=3, help="repetitions of every scenario (>= 3 for claims)")
    p.add_argument("--trades-1", type=int, default=1_000_000, help="trades per 1/msg throughput run")
    p.add_argument("--trades-10", type=int, default=2_000_000, help="trades per 10/msg throughput run")
    p.add_argument("--with-raw", action="store_true", help="also run 1/msg with store_raw_data=true")
    p.add_argument(
        "--throughput",
        default="1,10,limits",
        help="the throughput scenario's parts: 1 (1/msg, always run), 10 (10/msg), limits (the COPY limits)",
    )
    p.add_argument(
        "--exchanges",
        default="okx",
        help=f"comma-separated venues ({','.join(VENUES)}) for the throughput 1/msg and steady "
        "scenarios, interleaved per repetition (paired <venue>:okx ratios); 10/msg, limits, "
        "latency and overload are OKX only",
    )
    p.add_argument("--overload-trades", type=int, default=400_000)
    p.add_argument("--overload-batch", type=int, default=50, help="writer batch_max_rows when overloaded")
    p.add_argument(
        "--scrape-interval",
        type=float,
        default=1.0,
        help="seconds between two GETs of /metrics with --metrics on (Prometheus' usual: 15)",
    )
    p.add_argument("--steady-rate", type=float, default=10_000.0)
    p.add_argument("--steady-collectors", default="1,10", help="collectors (symbols) of the steady runs")
    p.add_argument(
        "--metrics",
        default="off",
        help="comma-separated /metrics endpoint variants of the throughput 1/msg and steady runs: off "
        "(http.listen null) and/or on (127.0.0.1:0, scraped every second by the benchmark); "
        "interleaved per repetition, paired on:off ratios. Must include off",
    )
    p.add_argument("--steady-window", type=float, default=15.0)
    p.add_argument("--latency-rate", type=float, default=1000.0)
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--latency-delays", default="0.1,0.02", help="writer batch_max_delay values to try")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--json", type=Path, help="write every result here")
    a = p.parse_args(argv)
    if not a.dsn:
        p.error("give --dsn or set TCPD_BENCH_DSN")
    wanted = {w.strip() for w in a.only.split(",") if w.strip()}
    if wanted - set(ALL) - set(EXTRA):
        p.error(f"unknown scenario(s): {', '.join(sorted(wanted - set(ALL) - set(EXTRA)))}")
    a.exchanges = list(dict.fromkeys(x.strip().lower() for x in a.exchanges.split(",") if x.strip()))
    if not a.exchanges or set(a.exchanges) - set(VENUES):
        p.error(f"--exchanges takes a comma-separated subset of {','.join(VENUES)}")
    a.metrics = list(dict.fromkeys(x.strip().lower() for x in a.metrics.split(",") if x.strip()))
    if "off" not in a.metrics or set(a.metrics) - {"off", "on"}:
        p.error("--metrics takes off or off,on (off is the reference of every ratio)")
    a.steady_collectors = [int(x) for x in a.steady_collectors.split(",") if x.strip()]
    if a.scrape_interval <= 0:
        p.error("--scrape-interval takes seconds > 0 (a run with the endpoint on must be scraped)")
    a.throughput = {x.strip() for x in a.throughput.split(",") if x.strip()}
    if a.throughput - {"1", "10", "limits"}:
        p.error("--throughput takes a subset of 1,10,limits")

    report: dict[str, Any] = {
        "command": " ".join(
            ["benchmarks/ingest_benchmark.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "server": describe(a.dsn),
        "cpus": os.cpu_count(),
        "settings": server_settings(a.dsn),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code": _code(),
        "loadavg_start": os.getloadavg(),
    }
    print(
        f"server {report['server']}: {report['settings']}; {report['cpus']} CPUs; "
        f"load {report['loadavg_start']}; code {report['code']}",
        flush=True,
    )
    if "throughput" in wanted:
        report["throughput"] = run_throughput(a.dsn, a)
    if "steady" in wanted:
        for n in a.steady_collectors:
            for ex in a.exchanges:
                for m in a.metrics:
                    report[venue_key(f"steady{n}", ex, m)] = []
            for i in range(a.reps):
                for ex, m in _variants(a.exchanges, a.metrics, i):
                    report[venue_key(f"steady{n}", ex, m)] += _repeat(
                        f"steady {n} {ex}{', metrics on' if m == 'on' else ''} (repetition {i + 1}/{a.reps})",
                        1,
                        partial(steady, a.dsn, n_symbols=n, rate=a.steady_rate, warmup=3.0,
                                window=a.steady_window, exchange=ex, metrics=m == "on",
                                scrape_interval=a.scrape_interval),
                    )  # fmt: skip
            for ex in a.exchanges:
                if ex != "okx" and "okx" in a.exchanges:
                    report[f"steady_paired{n}-{ex}"] = paired_ratios(
                        report[f"steady{n}"], report[venue_key(f"steady{n}", ex)]
                    )
                if "on" in a.metrics:
                    report.setdefault("metrics_on_to_off_steady", {})[venue_key(f"steady{n}", ex)] = (
                        paired_ratios(
                            report[venue_key(f"steady{n}", ex)], report[venue_key(f"steady{n}", ex, "on")]
                        )
                    )
    if "latency" in wanted:
        for d in (float(x) for x in a.latency_delays.split(",") if x.strip()):
            report[f"latency{d}"] = _repeat(
                f"latency delay={d}",
                a.reps,
                partial(latency, a.dsn, rate=a.latency_rate, seconds=a.latency_seconds, batch_max_delay=d),
            )
    if "latency-stock" in wanted:
        last = float(a.latency_delays.split(",")[-1])
        report[f"latency-stock{last}"] = _repeat(
            f"latency delay={last}, tcpd simulate",
            a.reps,
            partial(
                latency,
                a.dsn,
                rate=a.latency_rate,
                seconds=a.latency_seconds,
                batch_max_delay=last,
                fresh_ts=False,
            ),
        )
    if "overload" in wanted:
        report["overload"] = _repeat(
            "overload",
            a.reps,
            lambda: overload(a.dsn, total=a.overload_trades, batch_rows=a.overload_batch, timeout=a.timeout),
        )
    report["loadavg_end"] = os.getloadavg()
    _derive(report)
    table = _table(report)
    print("\n" + table)
    report["table"] = table
    if a.json:
        a.json.write_text(json.dumps(report, indent=2, default=str))
    ok = all(r.get("exactly_once", True) for runs in _all_runs(report) for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
