"""The database's own jobs (issue 12): ingest.storage.db_jobs, the service's watcher, its metrics,
/readyz and `tcpd status`, on real engines.

The failing jobs are real: a TSL cluster of this test's own with TimescaleDB's job scheduler on
(engines/tsl.sh with TCPD_TSL_SCHEDULER=on), where every scheduled job of TimescaleDB 2.28.3 on
PostgreSQL 15.20 fails with `cannot drop portal "" while it is being set up`
(../shared/engines/README.md). Nothing is faked: the tests ask the scheduler to run a job now
and read what it recorded. The lag tests use the shared TSL engine (scheduler off), where only
the test refreshes; the Apache engine has no jobs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from cli.main import app
from ingest.db.connection import connect, connect_sync
from ingest.metrics.db_jobs import DbJobsMetrics
from ingest.storage.db_jobs import DbJobsSnapshot, read_db_jobs
from ingest.storage.db_jobs_watch import DbJobsWatcher
from ingest.storage.gaps import Gap, mark_filled, new_gap_id, record_gaps
from tests.collector_support import simulator, wait_for
from tests.service_support import Service, endpoint_port, http_request, write_configs

REPO = Path(__file__).resolve().parent.parent
TSL = REPO / "engines" / "tsl.sh"
PORTAL = 'cannot drop portal "" while it is being set up'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tsl_script(cluster: Path, port: int, action: str) -> str:
    done = subprocess.run(
        [str(TSL), "--dir", str(cluster), "--port", str(port), action],
        env={**os.environ, "TCPD_TSL_SCHEDULER": "on"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"tsl.sh {action}: {done.stderr}"
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.fixture(scope="module")
def scheduled_dsn() -> Iterator[str]:
    """A migrated database on a TSL cluster of its own with the job scheduler ON."""
    if not Path("/opt/tcpd-timescaledb-2.28.3/lib/postgresql/15/bin/postgres").exists():
        if os.environ.get("TCPD_REQUIRE_TSL") == "1":
            pytest.fail("no TSL build in /opt (engines/tsl.sh build) and TCPD_REQUIRE_TSL=1")
        pytest.skip("needs the TSL build of engines/tsl.sh on this machine")
    # Not under pytest's tmp_path: as root the cluster belongs to the postgres OS user.
    base = Path(tempfile.mkdtemp(prefix="tcpd-jobs-"))
    base.chmod(0o755)
    cluster, port = base / "tsl", free_port()
    try:
        admin = tsl_script(cluster, port, "start")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE jobs")
        dsn = admin.rsplit("/", 1)[0] + "/jobs"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION timescaledb")
        from ingest.db.migrations import migrate

        migrate(dsn)
        yield dsn
    finally:
        subprocess.run(
            [str(TSL), "--dir", str(cluster), "--port", str(port), "stop"], capture_output=True, check=False
        )
        shutil.rmtree(base, ignore_errors=True)


def refresh_job(conn: psycopg.Connection[Any], aggregate: str) -> int:
    row = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = %s",
        (aggregate,),
    ).fetchone()
    assert row is not None, f"no refresh policy on {aggregate}"
    return int(row[0])


def run_by_scheduler(dsn: str, job_id: int, within: float = 90.0) -> None:
    """Make the scheduler run `job_id` now; return once job_stats shows a run started after."""
    with connect_sync(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        asked = row[0]
        conn.execute("SELECT alter_job(%s, next_start => now())", (job_id,))
        deadline = time.monotonic() + within
        while True:
            row = conn.execute(
                "SELECT last_run_status FROM timescaledb_information.job_stats"
                " WHERE job_id = %s AND last_run_started_at >= %s AND job_status <> 'Running'",
                (job_id, asked),
            ).fetchone()
            if row is not None and row[0] is not None:
                return
            assert time.monotonic() < deadline, f"the scheduler did not run job {job_id} within {within}s"
            time.sleep(0.2)


async def read(dsn: str) -> DbJobsSnapshot:
    conn = await connect(dsn, autocommit=True)
    async with conn:
        return await read_db_jobs(conn)


def metric_samples(snapshot: DbJobsSnapshot | None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DbJobsMetrics(lambda: snapshot))
    return samples(generate_latest(registry))


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


# -- failing jobs: the real scheduler -----------------------------------------------------------


@pytest.mark.tsl
async def test_a_job_the_scheduler_fails_is_read_with_its_error_and_failures_in_a_row(
    scheduled_dsn: str,
) -> None:
    with connect_sync(scheduled_dsn, autocommit=True) as conn:
        job_id = refresh_job(conn, "candles_1m_agg")
    await asyncio.to_thread(run_by_scheduler, scheduled_dsn, job_id)
    first = {j.job_id: j for j in (await read(scheduled_dsn)).jobs}[job_id]
    await asyncio.to_thread(run_by_scheduler, scheduled_dsn, job_id)
    snapshot = await read(scheduled_dsn)
    job = {j.job_id: j for j in snapshot.jobs}[job_id]

    assert (job.proc, job.kind, job.target) == (
        "policy_refresh_continuous_aggregate",
        "refresh",
        "candles_1m_agg",
    )
    assert job.last_run_status == "Failed"  # the word TimescaleDB 2.28 writes (not "Failure")
    assert job.last_error == PORTAL
    assert job.total_successes == 0
    assert job.last_success is None
    # Never succeeded: every failure is in the row; the second run made one more (or more, if
    # the job's own schedule ran it in between).
    assert job.failures_in_a_row == job.total_failures
    assert job.failures_in_a_row > first.failures_in_a_row >= 1
    assert job.failing
    assert job.degrades
    assert job_id in {j.job_id for j in snapshot.degrading}
    # The other policies fail the same way; retention failing does not degrade the service.
    kinds = {j.kind for j in snapshot.jobs if j.failing}
    assert {"refresh", "compression", "retention"} <= kinds
    assert not any(j.degrades for j in snapshot.jobs if j.kind == "retention")

    got = metric_samples(snapshot)
    labels = (("job_id", str(job_id)), ("proc", job.proc), ("target", "candles_1m_agg"))
    assert got[("tcpd_db_job_last_run_success", labels)] == 0.0
    assert got[("tcpd_db_job_consecutive_failures", labels)] == job.failures_in_a_row
    assert got[("tcpd_db_job_failures_total", labels)] == job.total_failures
    assert got[("tcpd_db_job_successes_total", labels)] == 0
    # Nothing was ever materialized: the lag is infinite, not absent.
    assert got[("tcpd_candle_materialization_lag_seconds", (("view", "candles_1m_agg"),))] == math.inf


@pytest.mark.tsl
async def test_the_watcher_logs_a_failing_job_once_and_keeps_the_snapshot(
    scheduled_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingest.storage.db_jobs_watch")
    watcher = DbJobsWatcher(scheduled_dsn, interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await wait_for(lambda: watcher.reads >= 3, within=30, what="three reads")
    stop.set()
    await asyncio.wait_for(task, 5)  # ends on the flag
    assert watcher.snapshot is not None
    assert watcher.snapshot.degrading
    with connect_sync(scheduled_dsn, autocommit=True) as conn:
        job_id = refresh_job(conn, "candles_1m_agg")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"database job {job_id} ")]
    assert len(lines) == 1, lines  # once, not once per read
    assert "policy_refresh_continuous_aggregate on candles_1m_agg" in lines[0]
    assert PORTAL in lines[0]


@pytest.mark.tsl
async def test_readyz_says_degraded_with_200_and_metrics_and_status_show_the_failing_jobs(
    tmp_path: Path, scheduled_dsn: str
) -> None:
    with connect_sync(scheduled_dsn, autocommit=True) as conn:
        job_id = refresh_job(conn, "candles_1m_agg")
    await asyncio.to_thread(run_by_scheduler, scheduled_dsn, job_id)
    async with simulator(symbols=("BTC-USDT",), total=None, rate=50.0) as sim:
        # This worktree's code in the child process, whatever the venv's editable install is.
        svc = Service(
            tmp_path, write_configs(tmp_path, sim, scheduled_dsn, ["BTC-USDT"]), {"PYTHONPATH": str(REPO)}
        )
        await svc.start()
        try:
            port = await endpoint_port(svc)

            def ready() -> bool:
                return http_request(port, "/readyz")[0] == 200

            await wait_for(ready, within=30, what="/readyz 200")
            status, body = await asyncio.to_thread(http_request, port, "/readyz")
            answer = json.loads(body)
            assert status == 200, answer
            assert answer["ready"] is True
            assert answer["status"] == "degraded"
            assert answer["degraded"] is True
            failing = {j["job_id"]: j for j in answer["failing_jobs"]}
            assert failing[job_id]["target"] == "candles_1m_agg"
            assert failing[job_id]["last_error"] == PORTAL
            assert failing[job_id]["failures_in_a_row"] >= 1
            assert {j["proc"] for j in answer["failing_jobs"]} == {
                "policy_refresh_continuous_aggregate",
                "policy_compression",
            }

            status, body = await asyncio.to_thread(http_request, port, "/metrics")
            got = samples(body)
            labels = (("job_id", str(job_id)), ("proc", "policy_refresh_continuous_aggregate"),
                      ("target", "candles_1m_agg"))  # fmt: skip
            assert got[("tcpd_db_job_last_run_success", labels)] == 0.0
            assert got[("tcpd_db_job_consecutive_failures", labels)] >= 1
            logged = f"database job {job_id} (policy_refresh_continuous_aggregate on candles_1m_agg) failed"
            assert logged in svc.output()
            assert await svc.terminate() == 0, svc.output()
        finally:
            svc.kill()

    shown = CliRunner().invoke(app, ["status", "--json", "--database-url", scheduled_dsn])
    assert shown.exit_code == 0, shown.output
    jobs = {j["job_id"]: j for j in json.loads(shown.output)["database_jobs"]["jobs"]}
    assert jobs[job_id]["last_run_status"] == "Failed"
    assert jobs[job_id]["last_error"] == PORTAL
    table = CliRunner().invoke(app, ["status", "--database-url", scheduled_dsn], terminal_width=80)
    assert table.exit_code == 0, table.output
    assert "Database jobs" in table.output
    assert "candles_1m_agg" in table.output
    assert max(len(line) for line in table.output.splitlines()) <= 80
    row = next(line for line in table.output.splitlines() if "candles_1m_agg" in line)
    assert str(job_id) in row
    assert "Failed" in row


# -- jobs that never ran, and the lag: the shared TSL engine (scheduler off) --------------------


async def test_jobs_the_scheduler_never_ran_are_not_failing(migrated_tsl_dsn: str) -> None:
    snapshot = await read(migrated_tsl_dsn)
    refresh = [j for j in snapshot.jobs if j.kind == "refresh"]
    assert sorted(j.target for j in refresh) == sorted(
        f"candles_{tf}_agg" for tf in ("1m", "5m", "15m", "1h", "4h", "1d")
    )
    assert {(j.last_run_status, j.failures_in_a_row, j.failing) for j in snapshot.jobs} == {(None, 0, False)}
    assert snapshot.degrading == ()
    got = metric_samples(snapshot)
    assert not [k for k in got if k[0] == "tcpd_db_job_last_run_success"]  # never run: no sample
    # A run from a session (CALL run_job) works on this engine but is not the scheduler's:
    # job_stats stays as it was, the aggregate's watermark moves (next test).
    with connect_sync(migrated_tsl_dsn, autocommit=True) as conn:
        job_id = refresh_job(conn, "candles_1m_agg")
        conn.execute("CALL run_job(%s)", (job_id,))
    again = {j.job_id: j for j in (await read(migrated_tsl_dsn)).jobs}[job_id]
    assert (again.last_run_status, again.total_successes, again.failures_in_a_row) == (None, 0, 0)


async def test_the_lag_is_the_end_of_the_newest_materialized_candle_to_now(migrated_tsl_dsn: str) -> None:
    with connect_sync(migrated_tsl_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT date_trunc('minute', now()) - INTERVAL '10 minutes'").fetchone()
        assert row is not None
        anchor: datetime = row[0]
        conn.execute(
            'INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp")'
            " VALUES ('okx', 'BTC-USDT', 'a', 100, 1, 'buy', %s),"
            " ('okx', 'BTC-USDT', 'b', 101, 2, 'sell', %s)",
            (anchor + timedelta(seconds=30), anchor + timedelta(minutes=2, seconds=30)),
        )
        before = {c.aggregate: c for c in (await read(migrated_tsl_dsn)).lags}
        assert before["candles_1m_agg"].materialized_until is None  # not refreshed yet
        assert before["candles_1m_agg"].lag_seconds is None
        conn.execute(
            "CALL refresh_continuous_aggregate('candles_1m_agg', %s::TIMESTAMPTZ, %s::TIMESTAMPTZ)",
            (anchor - timedelta(hours=1), anchor + timedelta(minutes=5)),
        )
    first = await read(migrated_tsl_dsn)
    lag = {c.aggregate: c for c in first.lags}
    # The trade at anchor+2m30s is in the bucket [anchor+2m, anchor+3m): candle ts anchor+3m.
    assert lag["candles_1m_agg"].materialized_until == anchor + timedelta(minutes=3)
    expected = (first.read_at - (anchor + timedelta(minutes=3))).total_seconds()
    assert lag["candles_1m_agg"].lag_seconds == pytest.approx(expected, abs=1.0)
    assert 7 * 60 - 1 <= expected < 9 * 60
    assert lag["candles_5m_agg"].materialized_until is None  # built from 1m, not refreshed
    got = metric_samples(first)
    shown = got[("tcpd_candle_materialization_lag_seconds", (("view", "candles_1m_agg"),))]
    assert shown == pytest.approx(expected, abs=1.0)

    await asyncio.sleep(1.5)  # no refresh: the lag grows with the clock
    second = {c.aggregate: c for c in (await read(migrated_tsl_dsn)).lags}["candles_1m_agg"]
    assert second.materialized_until == anchor + timedelta(minutes=3)
    assert second.lag_seconds is not None
    assert lag["candles_1m_agg"].lag_seconds is not None
    assert second.lag_seconds - lag["candles_1m_agg"].lag_seconds == pytest.approx(1.5, abs=0.5)


async def test_a_database_not_migrated_yet_has_only_timescaledbs_own_jobs(tsl_dsn: str) -> None:
    snapshot = await read(tsl_dsn)
    assert snapshot.lags == ()  # no candle_timeframes yet: no error either
    assert {j.kind for j in snapshot.jobs} <= {"other"}
    assert snapshot.degrading == ()


# -- Apache: no jobs; a database that is down ---------------------------------------------------


async def test_the_apache_edition_has_no_jobs_and_status_says_nothing_of_them(migrated_db_dsn: str) -> None:
    snapshot = await read(migrated_db_dsn)
    assert (snapshot.jobs, snapshot.lags) == ((), ())
    assert metric_samples(snapshot).keys() == {("tcpd_db_jobs_read_age_seconds", ())}
    shown = CliRunner().invoke(app, ["status", "--json", "--database-url", migrated_db_dsn])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["database_jobs"]["jobs"] == []
    table = CliRunner().invoke(app, ["status", "--database-url", migrated_db_dsn])
    assert table.exit_code == 0
    assert "Database jobs" not in table.output


async def test_a_database_that_is_down_is_logged_once_per_stretch(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ingest.storage.db_jobs_watch")
    watcher = DbJobsWatcher(f"postgresql://nobody:secret-Pa55@127.0.0.1:{free_port()}/x", interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await wait_for(
        lambda: sum(r.levelno == logging.DEBUG for r in caplog.records) >= 3,
        within=30,
        what="three failed reads",
    )
    stop.set()
    await asyncio.wait_for(task, 5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("database jobs not read, trying every 0 s:")
    assert "secret-Pa55" not in caplog.text
    assert watcher.snapshot is None
    assert metric_samples(None) == {}


async def test_open_gaps_are_read_per_exchange_and_exported_until_filled(migrated_db_dsn: str) -> None:
    """tcpd_gaps_open counts the rows of ingest_gaps not filled, per exchange (both editions)."""
    start = datetime(2026, 12, 1, tzinfo=UTC)
    gaps = [
        Gap(new_gap_id(), exchange, "BTC-USDT", "trade", start, start + timedelta(seconds=9), "test")
        for exchange in ("okx", "okx", "binance")
    ]
    conn = await connect(migrated_db_dsn, autocommit=True)
    try:
        await record_gaps(conn, gaps)
        assert (await read(migrated_db_dsn)).open_gaps == (("binance", 1), ("okx", 2))
        await mark_filled(conn, gaps[2].gap_id, 0)
        snapshot = await read(migrated_db_dsn)
    finally:
        await conn.close()
    assert snapshot.open_gaps == (("okx", 2),)
    registry = CollectorRegistry()
    registry.register(DbJobsMetrics(lambda: snapshot))
    assert registry.get_sample_value("tcpd_gaps_open", {"exchange": "okx"}) == 2
    assert registry.get_sample_value("tcpd_gaps_open", {"exchange": "binance"}) is None
