"""Process side of the ingest benchmark: the simulator and collector processes, and /proc.

The simulator is `tcpd simulate --exchange okx|binance` (or, for the latency scenario,
benchmarks/ingest_simulator.py, which stamps each message when it is sent); the collector is
`tcpd run` with generated config files for the same venue. CPU and memory are read from
/proc/PID/stat and /proc/PID/status.

`tcpd` is this tree's code: TCPD_CMD is what the console script does (`from cli.main import
main`), run by this interpreter with the repository root as working directory and first on
sys.path, so a worktree measured with another tree's virtualenv runs its own sources.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
# The console script `tcpd`, as code: sys.path[0] is "" (cwd = ROOT), so ROOT's packages load.
TCPD_CMD = [
    sys.executable,
    "-c",
    "import sys; from cli.main import main; sys.argv[0] = 'tcpd'; sys.exit(main())",
]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The line of `tcpd simulate` output that carries the collector's URL, per venue.
_URL = {
    "okx": re.compile(r"public_ws_url: (ws://\S+)"),
    "binance": re.compile(r"^ws_url: (ws://\S+)"),
}
VENUES = tuple(_URL)
_COUNTERS = re.compile(r"stopped: (.*)")


class BenchError(RuntimeError):
    """A process of the benchmark failed: the run is not valid."""


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state) of proc(5); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wakeups(pid: int) -> int:
    """Voluntary context switches of all threads of `pid`: about one per sleep and wake-up."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) and RssAnon (private memory, no shared library pages) of `pid`, in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon"):
            out[key] = int(value.split()[0])
    return out


@dataclass
class Simulator:
    """A simulator process serving OKX v5 or Binance spot on 127.0.0.1; start() waits for its URL.

    Binance: `tcpd simulate --exchange binance --no-live` builds each frame when it publishes
    it (OKX's frames are built before start() returns), one trade per message; at rate 0 it
    publishes 1,000 trades per symbol per step, as fast as the collector reads.
    """

    symbols: list[str]
    rate: float  # trades/s over all symbols, 0 = unlimited
    trades_per_message: int
    total: int
    workdir: Path
    fresh_ts: bool = False  # stamp each message when sent (latency runs)
    exchange: str = "okx"
    url: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    _proc: subprocess.Popen[str] | None = None
    _log: IO[str] | None = None

    def start(self, timeout: float = 300.0) -> None:
        """Launch the process; wait until the frames are built and the port is listening."""
        if self.exchange == "binance":
            if self.fresh_ts or self.trades_per_message != 1:
                raise BenchError("the Binance simulator sends 1 trade/message, stamped when published")
            cmd = [
                *TCPD_CMD, "simulate", "--exchange", "binance", "--port", "0",
                "--symbols", ",".join(self.symbols), "--rate", str(self.rate),
                "--total", str(self.total), "--no-live", "--tickers-rate", "0",
            ]  # fmt: skip
            self._launch(cmd, timeout)
            return
        args = [
            "--port",
            "0",
            "--symbols",
            ",".join(self.symbols),
            "--rate",
            str(self.rate),
            "--trades-per-message",
            str(self.trades_per_message),
            "--total",
            str(self.total),
            "--idle-timeout",
            "3600",
        ]
        if self.fresh_ts:
            cmd = [sys.executable, str(ROOT / "benchmarks" / "ingest_simulator.py"), *args]
        else:
            # A fixed tape that waits for its subscribers, on the public `trades` channel.
            cmd = [*TCPD_CMD, "simulate", *args, "--no-live", "--trades-channel", "trades"]
        self._launch(cmd, timeout)

    def _launch(self, cmd: list[str], timeout: float) -> None:
        url = _URL[self.exchange]
        self._log = (self.workdir / "simulator.err").open("w")
        self._proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if not line:
                raise BenchError(f"simulator exited early: {self._tail()}")
            found = url.search(line)
            if found:
                self.url = found.group(1)
                return
        raise BenchError("simulator did not print its URL in time")

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def stop(self) -> dict[str, int]:
        """SIGINT, wait, and parse the counters it prints (messages, trades, ...)."""
        if self._proc is None:
            return self.counters
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._log is not None:
            self._log.close()
        text = (self.workdir / "simulator.err").read_text()
        found = _COUNTERS.search(text)
        if found:
            for part in found.group(1).split(","):
                key, _, value = part.strip().partition("=")
                if value.isdigit():
                    self.counters[key] = int(value)
        self._proc = None
        return self.counters

    def _tail(self) -> str:
        if self._log is not None:
            self._log.flush()
        return (self.workdir / "simulator.err").read_text()[-2000:]


@dataclass
class Collector:
    """`tcpd run` with generated <exchange>.json / database.json / logging.json in `workdir`."""

    url: str
    dsn: str
    symbols: list[str]
    workdir: Path
    writer: dict[str, Any] = field(default_factory=dict)
    store_raw_data: bool = False
    exchange: str = "okx"
    sections: dict[str, Any] = field(default_factory=dict)  # more top-level keys, e.g. gap_fill
    http_listen: str | None = None  # "127.0.0.1:0": serve /metrics on a free port; None: off
    returncode: int | None = None
    _proc: subprocess.Popen[bytes] | None = None

    def write_configs(self) -> list[str]:
        """Write the three config files; return the `tcpd run` arguments."""
        connection: dict[str, Any]
        if self.exchange == "binance":
            connection = {"ws_url": self.url}
            channel = "trade"
        else:
            base = self.url.rsplit("/ws/v5/", 1)[0]
            connection = {"public_ws_url": self.url, "business_ws_url": base + "/ws/v5/business"}
            channel = "trades"
        if os.environ.get("TCPD_BENCH_LINGER"):  # A/B runs of connection.receive_linger
            connection["receive_linger"] = float(os.environ["TCPD_BENCH_LINGER"])
        venue = {
            "exchange": self.exchange,
            "connection": connection,
            "data_collection": {"store_raw_data": self.store_raw_data},
            "trading_pairs": [
                {"symbol": s, "data_types": ["trade"], "channels": {"trades": channel}} for s in self.symbols
            ],
            **self.sections,
        }
        db = {"database": {"url": self.dsn}, "writer": self.writer, "http": {"listen": self.http_listen}}
        logging_file = {"level": "INFO", "console_output": True, "file_output": False}
        paths = {}
        for name, content in ((self.exchange, venue), ("database", db), ("logging", logging_file)):
            path = self.workdir / f"{name}.json"
            path.write_text(json.dumps(content, indent=2))
            paths[name] = str(path)
        return [
            "--config",
            paths[self.exchange],
            "--database-config",
            paths["database"],
            "--logging-config",
            paths["logging"],
        ]

    def command(self) -> list[str]:
        """The exact command line (for the report)."""
        return [*TCPD_CMD, "run", *self.write_configs()]

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "TCPD_DATABASE_URL"}
        with (self.workdir / "collector.log").open("wb") as log:
            self._proc = subprocess.Popen(self.command(), cwd=ROOT, stdout=log, stderr=log, env=env)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM (the service flushes and exits 0 when nothing was lost); the exit code."""
        if self._proc is None:
            return self.returncode if self.returncode is not None else -1
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self.returncode = self._proc.wait()
        self._proc = None
        return self.returncode

    def log_tail(self, chars: int = 2000) -> str:
        path = self.workdir / "collector.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""
