"""The chaos soak (docs/gaps.md, "The proof"; results in docs/performance.md): a steady
multi-symbol stream from the simulator into `tcpd run` on a native engine for --minutes while
a seeded schedule injects dropped connections, 64008 notices, database restarts and one
database outage, REST 429/5xx bursts and `kill -9` of `tcpd run` followed by a restart. At the
end: every trade published from the first one stored on is stored exactly once, every candle
equals the independent reference, and no gap is open. The schedule, fault code and checks are
tests/chaos_support.py (tests/test_chaos.py runs the three-minute version in CI).

    .venv/bin/python benchmarks/chaos.py --dsn postgresql://postgres@127.0.0.1:55450/postgres \\
        --ctl "engines/native.sh --dir /tmp/native --port 55450" --minutes 30 --seed 1

--dsn is an admin DSN of the server --ctl starts, stops and restarts (it must take
start|stop|restart|status, as engines/native.sh does): the soak restarts and stops that server.
Exit status 1 when a check fails; --json writes the report.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the soak and its reference live in tests/

from engine_control import NativeControl, ScriptController  # noqa: E402
from ingest_db import fresh_database  # noqa: E402

from tests.chaos_support import Soak, SoakPlan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="admin DSN of a native PostgreSQL + TimescaleDB")
    parser.add_argument("--ctl", required=True, help="command controlling that server (start|stop|restart)")
    parser.add_argument("--minutes", type=float, default=30.0, help="how long faults are injected")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=400.0, help="trades/s over all symbols")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds of the database outage")
    parser.add_argument("--mean-pause", type=float, default=40.0, help="mean seconds between faults")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()
    plan = SoakPlan(
        seconds=args.minutes * 60,
        seed=args.seed,
        rate=args.rate,
        outage=args.outage,
        mean_pause=args.mean_pause,
    )
    database = NativeControl(args.dsn, ScriptController(shlex.split(args.ctl)))
    with fresh_database(args.dsn, "chaos") as dsn, tempfile.TemporaryDirectory() as work:
        report = asyncio.run(Soak(plan, dsn, database, Path(work)).run())
    print("\n".join(report.lines()))
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(report), indent=2, default=str))
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
