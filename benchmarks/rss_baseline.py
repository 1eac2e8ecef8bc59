"""Resident memory of what `tcpd` imports, and of `tcpd run` just before it connects.

Run from the repository root (reads nothing but /proc, connects to nothing):

    .venv/bin/python benchmarks/rss_baseline.py              # all three sections
    .venv/bin/python benchmarks/rss_baseline.py --reps 5 --smaps 30
    .venv/bin/python benchmarks/rss_baseline.py --imports asyncio,psycopg,pydantic,cli.run

Every figure comes from a fresh interpreter (`python -c` with a tiny probe, so this script's
own imports are not counted) reading its /proc/self/status:

1. targets, median of --reps interpreters each: the bare interpreter, `import cli.main`,
   `import cli.run`, and "tcpd run": the real entry point `cli.main.main()` with argv
   `tcpd run --config config/okx.json --database-config config/database.json
   --logging-config config/logging.json`, measured inside `IngestService.run()` (patched to
   return at once), i.e. after typer parsed the arguments, the config files were loaded and
   logging configured, just before the writer and the collectors connect. Also the number of
   modules loaded and whether rich is one of them.
2. per import: one interpreter imports --imports one at a time, in that order, and prints
   the RSS each adds. A module's delta includes everything it imports that was not loaded
   yet, so the order decides who is charged for a shared dependency.
3. mappings: at the "tcpd run" point, /proc/self/smaps Rss summed per mapping (a shared
   library, [heap], or [anon] for unnamed anonymous memory), the --smaps largest.

MB here = kB / 1024, as in ingest_benchmark.py. VmRSS = RssAnon (private memory: the heap,
Python objects) + RssFile (pages of mapped files, shared libraries mostly; clean, shareable,
dropped first under memory pressure) + RssShmem.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_IMPORTS = (
    "asyncio",
    "psycopg",
    "psycopg_pool",
    "pydantic",
    "websockets",
    "orjson",
    "typer",
    "rich.console",
    "ingest.config",
    "ingest.storage",
    "ingest.collector",
    "ingest.service",
    "cli.common",
    "cli.run",
    "cli.main",
)

# Shared by every probe: no import beyond sys before the measured code runs.
_READ_STATUS = """
import sys
def _status():
    keys = ("VmRSS", "RssAnon", "RssFile")
    with open("/proc/self/status") as f:
        return {k: int(v.split()[0]) for k, _, v in (l.partition(":") for l in f) if k in keys}
def _smaps():
    sizes, name = {}, "[anon]"
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                name = head[5] if len(head) > 5 else "[anon]"
            elif head[0] == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(head[1])
    return sizes
def _report(smaps=False):
    out = _status()
    out["modules"] = len(sys.modules)
    out["rich"] = any(m == "rich" or m.startswith("rich.") for m in sys.modules)
    if smaps:
        out["smaps"] = _smaps()
    print("RSS-PROBE " + repr(out), flush=True)
"""

_RUN_ARGS = [
    "run",
    "--config",
    "config/okx.json",
    "--database-config",
    "config/database.json",
    "--logging-config",
    "config/logging.json",
]

# The real `tcpd run` path, cut at IngestService.run(): everything before it (argument
# parsing, config files, logging) happens as in production, nothing connects.
_TCPD_RUN = (
    _READ_STATUS
    + f"""
import ingest.service
async def _stop_here(self):
    _report(smaps=True)
    return 0
ingest.service.IngestService.run = _stop_here
sys.argv = ["tcpd", *{_RUN_ARGS!r}]
from cli.main import main
try:
    main()
except SystemExit as end:
    if end.code not in (0, None):
        raise
"""
)

TARGETS: dict[str, str] = {
    "python (nothing imported)": _READ_STATUS + "_report()",
    "import cli.main": _READ_STATUS + "import cli.main\n_report()",
    "import cli.run": _READ_STATUS + "import cli.run\n_report()",
    "tcpd run, before connecting": _TCPD_RUN,
}

_PER_IMPORT = (
    _READ_STATUS
    + """
import importlib
prev = _status()
print("RSS-PROBE " + repr({"module": "(start)", **prev}), flush=True)
for name in sys.argv[1:]:
    importlib.import_module(name)
    now = _status()
    delta = {k: now[k] - prev[k] for k in now}
    print("RSS-PROBE " + repr({"module": name, "total": now["VmRSS"], **delta}), flush=True)
    prev = now
"""
)


def probe(code: str, *args: str) -> list[dict[str, Any]]:
    """Run `code` in a fresh interpreter (cwd: the repository root); its RSS-PROBE lines, parsed."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"probe failed (exit {done.returncode}):\n{done.stderr}")
    # The probe prints plain dicts of str/int/bool; repr() keeps this script free of eval.
    lines = [line.removeprefix("RSS-PROBE ") for line in done.stdout.splitlines()]
    return [_literal(line) for line in lines if line.startswith("{")]


def _literal(text: str) -> dict[str, Any]:
    value = ast.literal_eval(text)
    assert isinstance(value, dict)
    return value


def mb(kb: float) -> str:
    return f"{kb / 1024:6.1f}"


def targets_section(reps: int) -> dict[str, Any]:
    """Print the median VmRSS/RssAnon/RssFile of each target over `reps` fresh interpreters.

    Returns the last probe of the last target ("tcpd run"), the one that carries smaps.
    """
    print(f"== targets: median of {reps} fresh interpreters, MB ==")
    print(f"{'target':32s} {'VmRSS':>6s} {'anon':>6s} {'file':>6s}  modules  rich  (VmRSS of each run)")
    last_run: dict[str, Any] = {}
    for label, code in TARGETS.items():
        runs = [probe(code)[0] for _ in range(reps)]
        med = {k: statistics.median(r[k] for r in runs) for k in ("VmRSS", "RssAnon", "RssFile")}
        each = ", ".join(mb(r["VmRSS"]).strip() for r in runs)
        print(
            f"{label:32s} {mb(med['VmRSS'])} {mb(med['RssAnon'])} {mb(med['RssFile'])}"
            f"  {runs[0]['modules']:7d}  {'yes' if runs[0]['rich'] else 'no':4s}  ({each})"
        )
        last_run = runs[-1]
    return last_run


def per_import_section(modules: list[str]) -> None:
    print("\n== per import, one interpreter, in this order: RSS added, MB ==")
    print(f"{'module':28s} {'VmRSS':>6s} {'anon':>6s} {'file':>6s}  {'total':>6s}")
    for row in probe(_PER_IMPORT, *modules):
        if row["module"] == "(start)":
            print(f"{'(start)':28s} {'':6s} {'':6s} {'':6s}  {mb(row['VmRSS'])}")
            continue
        print(
            f"{row['module']:28s} {mb(row['VmRSS'])} {mb(row['RssAnon'])} {mb(row['RssFile'])}"
            f"  {mb(row['total'])}"
        )


def smaps_section(run: dict[str, Any], top: int) -> None:
    sizes: dict[str, int] = run["smaps"]
    print(f"\n== mappings of 'tcpd run, before connecting': Rss per mapping, {top} largest, MB ==")
    for name, kb in sorted(sizes.items(), key=lambda item: -item[1])[:top]:
        print(f"{mb(kb)}  {name}")
    libs = sum(kb for name, kb in sizes.items() if ".so" in name)
    print(f"{mb(libs)}  (all shared libraries)  of {mb(sum(sizes.values()))} total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="fresh interpreters per target (median)")
    parser.add_argument("--smaps", type=int, default=20, help="mappings to list")
    parser.add_argument("--imports", default=",".join(DEFAULT_IMPORTS), help="comma-separated modules")
    args = parser.parse_args()
    run = targets_section(args.reps)
    per_import_section([m for m in args.imports.split(",") if m])
    smaps_section(run, args.smaps)


if __name__ == "__main__":
    main()
