"""The chaos soak (docs/gaps.md, "The proof"): a steady multi-symbol stream from the simulator
into `tcpd run` (a real subprocess) on a real database while a seeded schedule injects faults;
at the end every trade the simulator published from the first one stored on is stored exactly
once, value for value, every candle equals the independent reference of tests/candles_support,
and no gap is left open.

Used by tests/test_chaos.py (the short soak, part of CI) and benchmarks/chaos.py (30 minutes,
figures in docs/performance.md). Faults, one at a time, each followed by a wait until it has
healed (everything published up to the fault's end is stored and no gap is open):

- drop: every WebSocket connection reset (TCP abort, buffered frames lost), and new ones
  refused for `drop_outage` seconds, while the exchange trades on;
- notice_64008: OKX's "reconnect soon" notice, then the close (the handover's test);
- db_restart: the database server restarted (connections cut);
- db_outage: the database server stopped for `outage` seconds (once per soak);
- rest_errors: every REST history request fails (429 and 503 in turn) for `rest_burst`
  seconds, starting with a drop, so the gap it opens is filled only after the burst;
- kill_9: SIGKILL of `tcpd run`, a pause, a new `tcpd run` (as a supervisor would).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol

import psycopg

from ingest.db.connection import connect_sync
from ingest.simulator import OkxSimulator, SentTrade, SimulatorSettings
from tests.candles_support import (
    TIMEFRAMES,
    Candle,
    Key,
    Trade,
    assert_matches,
    bucket_of,
    db_now,
    fetch_view,
    reference_candles,
)
from tests.service_support import Service, query, write_configs

FAULT_KINDS = ("drop", "notice_64008", "db_restart", "db_outage", "rest_errors", "kill_9")
REST_ERROR_ANSWERS = 10_000  # queued per rest_errors fault, 429 and 503 in turn, healed after the burst
# Spot, a linear and an inverse swap (their contract values are the simulator's, which are the
# ones tests/candles_support.INSTRUMENTS knows), and a second spot pair.
SYMBOLS = ("BTC-USDT", "ETH-USDT", "ETH-USDT-SWAP", "BTC-USD-SWAP")


class Database(Protocol):
    """What the soak needs of the server (tests/engine_control.NativeControl has it)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def restart(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SoakPlan:
    """What a soak runs. `seconds`: how long faults are injected; after that the stream goes on
    until the last fault healed. Long soaks draw kinds from bags holding each kind once (so
    every kind comes early), with exactly one db_outage; pauses between faults are exponential
    with mean `mean_pause` seconds, from 5 s to 3x the mean."""

    seconds: float
    seed: int = 1
    symbols: tuple[str, ...] = SYMBOLS
    rate: float = 400.0  # trades/s over all symbols
    outage: float = 60.0
    mean_pause: float = 40.0
    heal_within: float = 240.0  # a fault not healed by then fails the soak
    kill_pause: float = 2.0  # seconds `tcpd run` stays dead after kill_9
    rest_burst: float = 10.0  # seconds REST fails in a rest_errors fault
    drop_outage: float = 3.0  # seconds the WebSocket handshake is refused after a drop

    def schedule(self) -> Iterator[tuple[float, str]]:
        """(pause before the fault, kind), deterministic for the seed; endless."""
        rng = random.Random(self.seed)
        bag: list[str] = []
        first_bag = True
        while True:
            if not bag:
                bag = [k for k in FAULT_KINDS if first_bag or k != "db_outage"]
                rng.shuffle(bag)
                first_bag = False
            pause = min(max(rng.expovariate(1 / self.mean_pause), 5.0), 3 * self.mean_pause)
            yield pause, bag.pop()


def short_plan(seed: int = 1) -> SoakPlan:
    """Every kind at least once in 150 s, with a 20 s outage: about three minutes in all, so
    that whole 1m candles exist to compare."""
    return SoakPlan(seconds=150.0, seed=seed, outage=20.0, mean_pause=8.0, heal_within=120.0)


@dataclass(slots=True)
class Fault:
    kind: str
    at: float  # seconds since the soak started
    action: float = 0.0  # seconds the fault itself lasted (an outage's length, a restart's)
    healed: float | None = None  # seconds from the fault's end to healed
    gaps: int = 0  # gaps recorded from the fault's start to healed
    filled: int = 0  # trades those gaps took from REST


@dataclass(slots=True)
class SoakReport:
    plan: SoakPlan
    faults: list[Fault] = field(default_factory=list)
    trades_published: int = 0  # from the first trade stored on, over all symbols
    trades_stored: int = 0
    candles_compared: dict[str, int] = field(default_factory=dict)
    gaps: list[tuple[Any, ...]] = field(default_factory=list)  # (symbol, reason, rows_filled, filled)
    starts: int = 0  # `tcpd run` processes started
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A human summary: one line per fault, then the totals and problems."""
        out = [f"{'at s':>7}  {'fault':<13} {'lasted s':>8}  {'healed s':>8}  {'gaps':>4}  {'from REST':>9}"]
        for f in self.faults:
            healed = "NOT HEALED" if f.healed is None else f"{f.healed:.1f}"
            out.append(f"{f.at:7.1f}  {f.kind:<13} {f.action:8.1f}  {healed:>8}  {f.gaps:4d}  {f.filled:9d}")
        filled = sum(1 for g in self.gaps if g[3])
        out += [
            f"trades published {self.trades_published}, stored {self.trades_stored}"
            f" ({len(self.plan.symbols)} symbols, {self.plan.rate:g}/s, seed {self.plan.seed},"
            f" {self.seconds:.0f} s, {self.starts} starts of tcpd run)",
            "candles compared: " + ", ".join(f"{tf} {n}" for tf, n in self.candles_compared.items()),
            f"gaps recorded {len(self.gaps)}, filled {filled}, open {len(self.gaps) - filled},"
            f" trades filled from REST {sum(int(g[2] or 0) for g in self.gaps)}",
        ]
        out += [f"PROBLEM: {p}" for p in self.problems] or ["all checks passed"]
        return out


class Soak:
    """One soak against `dsn` (migrated, empty) whose server `database` controls."""

    def __init__(self, plan: SoakPlan, dsn: str, database: Database, workdir: Path) -> None:
        self.plan = plan
        self.dsn = dsn
        self.database = database
        self.workdir = workdir
        self.report = SoakReport(plan)
        self._service: Service | None = None
        self._args: list[str] = []
        self._first: dict[str, int] = {}  # per symbol: the first trade id stored
        self._verified: dict[str, int] = {}  # per symbol: ids first..verified are all stored
        self._started = 0.0
        self._sim: OkxSimulator

    async def run(self) -> SoakReport:
        plan = self.plan
        settings = SimulatorSettings(
            symbols=plan.symbols,
            total=None,
            rate=plan.rate,
            live=True,
            trades_channel="trades-all",
            trades_per_message=5,
            chunk_trades=10,  # ten timestamps per second and symbol, several trades on each
            idle_timeout=7200.0,
            record=False,  # the checks read the generator's history, not a record of sends
        )
        self._started = time.monotonic()
        async with OkxSimulator(settings) as sim:
            self._sim = sim
            self._args = write_configs(
                self.workdir,
                sim,
                self.dsn,
                list(plan.symbols),
                channels={"trades": "trades-all"},
                database_extra={"spool": {"directory": str(self.workdir / "spool")}},
            )
            await self._start_service()
            try:
                await self._first_trades(sim)
                await self._inject(sim)
                final = {s: sim.published_count(s) for s in plan.symbols}
                await self._until_healed(final, plan.heal_within, "the end")
                await self._stop_service()
            finally:
                if self._service is not None:
                    self._service.kill()
            await self._check_trades(sim)
            await self._check_candles(sim)
            await self._check_gaps()
        self.report.seconds = time.monotonic() - self._started
        return self.report

    # -- the service -------------------------------------------------------------

    async def _start_service(self) -> None:
        self.report.starts += 1
        run_dir = self.workdir / f"run-{self.report.starts}"
        run_dir.mkdir()
        self._service = Service(run_dir, self._args)
        await self._service.start()

    async def _stop_service(self) -> None:
        assert self._service is not None
        code = await self._service.terminate(within=120)
        if code != 0:
            self.report.problems.append(f"tcpd run exited {code} on SIGTERM: {self._tail()}")
        self._service = None

    def _tail(self) -> str:
        return self._service.output()[-3000:] if self._service is not None else ""

    # -- faults ------------------------------------------------------------------

    async def _inject(self, sim: OkxSimulator) -> None:
        plan = self.plan
        for pause, kind in plan.schedule():
            await asyncio.sleep(pause)
            fault = Fault(kind, self._elapsed())
            totals = await self._gap_totals()
            self.report.faults.append(fault)
            began = time.monotonic()
            await self._fault(sim, kind)
            fault.action = time.monotonic() - began
            ended = time.monotonic()
            # healed: the first trade of every symbol published after the fault's end is stored,
            # and every trade before it (the gap filled), and no gap is open
            targets = {s: sim.published_count(s) + 1 for s in plan.symbols}
            if not await self._until_healed(targets, plan.heal_within, f"{kind} at {fault.at:.0f}s"):
                return
            fault.healed = time.monotonic() - ended
            fault.gaps, fault.filled = (a - b for a, b in zip(await self._gap_totals(), totals, strict=True))
            if self._elapsed() >= plan.seconds and {f.kind for f in self.report.faults} >= set(FAULT_KINDS):
                return

    async def _fault(self, sim: OkxSimulator, kind: str) -> None:
        if kind == "drop":
            await sim.disconnect_all(refuse_for=self.plan.drop_outage)
            await asyncio.sleep(self.plan.drop_outage)
        elif kind == "notice_64008":
            await sim.notice_and_close(delay=2.0)
        elif kind == "db_restart":
            await asyncio.to_thread(self.database.restart)
        elif kind == "db_outage":
            await asyncio.to_thread(self.database.stop)
            await asyncio.sleep(self.plan.outage)
            await asyncio.to_thread(self.database.start)
        elif kind == "rest_errors":
            for _ in range(REST_ERROR_ANSWERS // 2):  # more than a burst can use up
                sim.history.fail_next(1, HTTPStatus.TOO_MANY_REQUESTS)
                sim.history.fail_next(1, HTTPStatus.SERVICE_UNAVAILABLE)
            await sim.disconnect_all(refuse_for=self.plan.drop_outage)  # a gap to fill while REST fails
            await asyncio.sleep(self.plan.rest_burst)
            sim.history.heal()
        elif kind == "kill_9":
            assert self._service is not None
            assert self._service.proc is not None
            self._service.kill()
            await self._service.proc.wait()
            await asyncio.sleep(self.plan.kill_pause)
            await self._start_service()
        else:
            raise ValueError(f"unknown fault {kind!r}")

    # -- healing -----------------------------------------------------------------

    async def _first_trades(self, sim: OkxSimulator) -> None:
        """Wait for a first stored trade of every symbol: the soak's history starts there."""
        deadline = time.monotonic() + 60
        while len(self._first) < len(self.plan.symbols):
            if time.monotonic() > deadline:
                raise AssertionError(f"no first trade of every symbol within 60 s: {self._tail()}")
            await asyncio.sleep(0.5)
            rows = await query(
                self.dsn,
                "SELECT symbol, min(trade_id::bigint) FROM raw_trades WHERE exchange = 'okx' GROUP BY symbol",
            )
            self._first = {r[0]: int(r[1]) for r in rows}
        self._verified = {s: first - 1 for s, first in self._first.items()}

    async def _until_healed(self, targets: dict[str, int], within: float, what: str) -> bool:
        """Wait until every trade up to `targets` is stored and no gap is open; False (and a
        problem in the report) when that takes longer than `within` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if await self._complete(targets) and not await self._open_gaps():
                    return True
            except psycopg.OperationalError:
                pass  # the server is down or restarting
            await asyncio.sleep(0.5)
        missing = {s: t - self._verified[s] for s, t in targets.items() if self._verified[s] < t}
        self.report.problems.append(
            f"not healed {within:.0f}s after {what}: trades not stored per symbol {missing}; {self._tail()}"
        )
        return False

    async def _complete(self, targets: dict[str, int]) -> bool:
        """Advance the verified prefix of every symbol towards its target; all there?"""
        for symbol, target in targets.items():
            lo = self._verified[symbol] + 1
            if lo > target:
                continue
            rows = await query(
                self.dsn,
                "SELECT trade_id::bigint FROM raw_trades WHERE exchange = 'okx' AND symbol = "
                f"'{symbol}' AND \"timestamp\" >= {self._ts_sql(symbol, lo)} "
                f"AND trade_id::bigint BETWEEN {lo} AND {target} ORDER BY 1",
            )
            verified = lo - 1
            for (trade_id,) in rows:
                if trade_id != verified + 1:
                    break
                verified = trade_id
            self._verified[symbol] = verified
        return all(self._verified[s] >= t for s, t in targets.items())

    def _ts_sql(self, symbol: str, trade_id: int) -> str:
        """A lower bound of trade `trade_id`'s timestamp (that of the trade before it: ts never
        decreases with the id), so the index on time narrows the scan."""
        before = self._sim.published_trades(symbol, trade_id - 1, trade_id - 1)
        return f"to_timestamp({before[0].ts_ms / 1000})" if before else "'-infinity'"

    async def _gap_totals(self) -> tuple[int, int]:
        """(gaps recorded, trades filled from REST) so far."""
        row = (await query(self.dsn, "SELECT count(*), coalesce(sum(rows_filled), 0) FROM ingest_gaps"))[0]
        return int(row[0]), int(row[1])

    async def _open_gaps(self) -> int:
        return int((await query(self.dsn, "SELECT count(*) FROM ingest_gaps WHERE filled_at IS NULL"))[0][0])

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    # -- the end checks ----------------------------------------------------------

    async def _check_trades(self, sim: OkxSimulator) -> None:
        """raw_trades from each symbol's first stored trade on == what the simulator published,
        value for value, each once, up to at least the last fault's healing point."""
        stored = await query(
            self.dsn,
            'SELECT symbol, trade_id, price, size, side, (extract(epoch FROM "timestamp") * 1000)::bigint'
            " FROM raw_trades WHERE exchange = 'okx' ORDER BY symbol, trade_id::bigint",
        )
        by_symbol: dict[str, list[tuple[Any, ...]]] = {}
        for row in stored:
            by_symbol.setdefault(row[0], []).append(row)
        self.report.trades_stored = len(stored)
        for symbol in self.plan.symbols:
            rows = by_symbol.get(symbol, [])
            first = self._first[symbol]
            last = int(rows[-1][1]) if rows else first - 1
            tape = sim.published_trades(symbol, first, last)
            self.report.trades_published += len(tape)
            want = [(t.inst_id, t.trade_id, Decimal(t.price), Decimal(t.size), t.side, t.ts_ms) for t in tape]
            got = [(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]
            if got != want:
                missing = len({w[1] for w in want} - {g[1] for g in got})
                self.report.problems.append(
                    f"{symbol}: raw_trades differs from the published trades {first}..{last}: {len(got)}"
                    f" rows for {len(want)} trades, {missing} missing, first difference at"
                    f" {next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)}"
                )
            if last < self._verified[symbol]:
                self.report.problems.append(
                    f"{symbol}: stored up to {last}, healed up to {self._verified[symbol]}"
                )

    async def _check_candles(self, sim: OkxSimulator) -> None:
        """Every candles_<tf> row of the soak's symbols equals the reference computed from the
        published trades, for every interval that starts after the trade before the symbol's
        first stored one (an earlier interval is partial: trades from before the service first
        ran are not stored), and none ends after the symbol's watermark."""
        tapes = {s: sim.published_trades(s) for s in self.plan.symbols}
        now, watermarks, views = await asyncio.to_thread(self._read_candles)
        trades = [_trade(t) for s, tape in tapes.items() for t in tape[self._first[s] - 1 :]]
        for tf, width in TIMEFRAMES.items():
            opens = {s: _first_whole(tapes[s], self._first[s], width) for s in self.plan.symbols}
            expected = {
                k: c
                for k, c in reference_candles(trades, width, now).items()
                if k[2] >= opens[k[1]] and c["ts"] <= watermarks.get(k[1], now)
            }
            actual = {k: c for k, c in views[tf].items() if k[1] in opens and k[2] >= opens[k[1]]}
            self.report.candles_compared[tf] = len(expected)
            try:
                assert_matches(actual, expected, f"candles_{tf}")
            except AssertionError as exc:
                self.report.problems.append(str(exc))

    def _read_candles(self) -> tuple[datetime, dict[str, datetime], dict[str, dict[Key, Candle]]]:
        """now(), the watermarks and every candles view of okx, in one transaction."""
        with connect_sync(self.dsn) as conn, conn.transaction():
            now = db_now(conn)
            rows = conn.execute(
                "SELECT symbol, committed_through FROM ingest_watermarks WHERE exchange = 'okx'"
            )
            watermarks = {r[0]: r[1] for r in rows.fetchall()}
            views = {
                tf: {k: c for k, c in fetch_view(conn, f"candles_{tf}").items() if k[0] == "okx"}
                for tf in TIMEFRAMES
            }
        return now, watermarks, views

    async def _check_gaps(self) -> None:
        rows = await query(
            self.dsn,
            "SELECT symbol, reason, rows_filled, filled_at IS NOT NULL FROM ingest_gaps ORDER BY recorded_at",
        )
        self.report.gaps = rows
        open_gaps = [r for r in rows if not r[3]]
        if open_gaps:
            self.report.problems.append(f"gaps left open: {open_gaps}")


def _trade(t: SentTrade) -> Trade:
    """A published trade as the reference takes it (one fill; tradeId is the exchange's order)."""
    n = int(t.trade_id)
    return Trade(n, "okx", t.inst_id, t.trade_id, Decimal(t.price), Decimal(t.size), _utc(t.ts_ms), 1, n)


def _utc(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


def _first_whole(tape: list[SentTrade], first: int, width: timedelta) -> datetime:
    """The start of the first interval of `width` holding no trade from before id `first`."""
    if first <= 1:
        return datetime.min.replace(tzinfo=UTC)
    return bucket_of(_utc(tape[first - 2].ts_ms), width) + width
