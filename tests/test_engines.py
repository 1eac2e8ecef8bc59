"""The fixture layer itself: right engines, real isolation, enforcement of TCPD_REQUIRE_TSL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from engine_control import NativeControl, connect

import engines

REPO = Path(__file__).resolve().parent.parent


def one(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_db_dsn_has_timescaledb(db_dsn: str) -> None:
    with connect(db_dsn) as conn:
        version = one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        assert version is not None
        conn.execute("CREATE TABLE t (ts timestamptz NOT NULL, v int)")
        conn.execute("SELECT create_hypertable('t', 'ts')")
        conn.execute("INSERT INTO t VALUES (now(), 7)")
        assert one(conn, "SELECT sum(v) FROM t") == 7


def test_native_engine_we_start_is_apache_2_19_3(db_dsn: str, engine_broker: engines.EngineBroker) -> None:
    engine = engine_broker.native()
    ours = engine.origin == "engines/native.sh" or "native.sh" in os.environ.get(
        "TCPD_TEST_NATIVE_CTL", ""
    )
    if not ours:
        pytest.skip(f"native engine comes from {engine.origin}: its edition is not ours to pin")
    with connect(db_dsn) as conn:
        assert one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'") == ("2.19.3")
        assert one(conn, "SHOW timescaledb.license") == "apache"
        assert one(conn, "SHOW server_version_num").startswith("15")


def test_each_fresh_database_is_isolated_and_dropped(engine_broker: engines.EngineBroker) -> None:
    engine = engine_broker.native()
    with engine.fresh_database() as first:
        with connect(first) as conn:
            conn.execute("CREATE TABLE only_here (i int)")
            first_name = one(conn, "SELECT current_database()")
        with engine.fresh_database() as second, connect(second) as conn:
            assert one(conn, "SELECT current_database()") != first_name
            assert one(conn, "SELECT to_regclass('public.only_here')") is None
    with connect(engine.admin_dsn) as conn:
        gone = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (first_name,))
        assert gone.fetchone() is None


def test_tsl_engine_reports_tsl_license(tsl_dsn: str) -> None:
    with connect(tsl_dsn) as conn:
        assert one(conn, "SELECT current_setting('timescaledb.license')") == "timescale"


def test_tsl_continuous_aggregate_matches_group_by(tsl_dsn: str) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [(start + timedelta(minutes=7 * i), Decimal(i) / 8 + Decimal("0.00000001")) for i in range(60)]
    with connect(tsl_dsn) as conn:
        conn.execute("CREATE TABLE ticks (ts timestamptz NOT NULL, price numeric NOT NULL)")
        conn.execute("SELECT create_hypertable('ticks', 'ts')")
        with conn.cursor() as cur, cur.copy("COPY ticks (ts, price) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute(
            "CREATE MATERIALIZED VIEW ticks_1h WITH (timescaledb.continuous) AS"
            " SELECT time_bucket('1 hour', ts) AS bucket, sum(price) AS total, count(*) AS n"
            " FROM ticks GROUP BY 1 WITH NO DATA"
        )
        conn.execute("CALL refresh_continuous_aggregate('ticks_1h', NULL, NULL)")
        cagg = conn.execute("SELECT bucket, total, n FROM ticks_1h ORDER BY 1").fetchall()
    expected: dict[datetime, tuple[Decimal, int]] = {}
    for ts, price in rows:
        bucket = ts.replace(minute=0)
        total, n = expected.get(bucket, (Decimal(0), 0))
        expected[bucket] = (total + price, n + 1)
    assert [(b.astimezone(UTC), t, n) for b, t, n in cagg] == [
        (b, t, n) for b, (t, n) in sorted(expected.items())
    ]


@pytest.mark.tsl
def test_tsl_databases_are_clean_between_uses(engine_broker: engines.EngineBroker) -> None:
    try:
        engine = engine_broker.tsl()
    except engines.EngineUnavailable as exc:
        pytest.skip(f"no TSL engine: {exc}")
    with engine.fresh_database() as dsn, connect(dsn) as conn:
        conn.execute("CREATE SCHEMA scratch")
        conn.execute("CREATE TABLE scratch.x (i int)")
        conn.execute("CREATE TABLE m (ts timestamptz NOT NULL, v int)")
        conn.execute("SELECT create_hypertable('m', 'ts')")
        conn.execute(
            "CREATE MATERIALIZED VIEW m_1d WITH (timescaledb.continuous) AS"
            " SELECT time_bucket('1 day', ts) AS d, count(*) FROM m GROUP BY 1 WITH NO DATA"
        )
        conn.execute("ALTER TABLE m SET (timescaledb.compress)")
        conn.execute("SELECT add_compression_policy('m', interval '7 days')")
        conn.execute("SET TIME ZONE 'Asia/Tokyo'")
    with engine.fresh_database() as dsn, connect(dsn) as conn:
        assert one(conn, "SELECT count(*) FROM timescaledb_information.hypertables") == 0
        assert one(conn, "SELECT count(*) FROM timescaledb_information.jobs WHERE job_id >= 1000") == 0
        assert one(conn, "SELECT to_regnamespace('scratch')") is None
        assert one(conn, "SELECT to_regclass('public.m')") is None
        assert one(conn, "SHOW TIME ZONE") != "Asia/Tokyo"
        assert "public" in one(conn, "SHOW search_path")


def test_tsl_concurrent_clients_get_their_own_answers(tsl_dsn: str) -> None:
    # PGlite multiplexes every connection onto one session: interleaved extended-protocol
    # messages once handed one client's rows to another (engines/pglite/shim.mjs)
    with connect(tsl_dsn) as conn:
        conn.execute("CREATE TABLE landed (client int NOT NULL, n int NOT NULL)")
    problems: list[str] = []

    def client(k: int) -> None:
        try:
            with connect(tsl_dsn) as conn:
                for n in range(15):
                    got = conn.execute("SELECT %s::int * 1000 + %s::int, %s::text", (k, n, f"c{k}"))
                    row = got.fetchone()
                    if row != (k * 1000 + n, f"c{k}"):
                        problems.append(f"client {k} query {n} got {row}")
                with conn.cursor() as cur, cur.copy("COPY landed (client, n) FROM STDIN") as copy:
                    for n in range(50):
                        copy.write_row((k, n))
        except psycopg.Error as exc:
            problems.append(f"client {k}: {exc!r}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert problems == []
    with connect(tsl_dsn) as conn:
        counts = conn.execute("SELECT client, count(*), sum(n) FROM landed GROUP BY 1 ORDER BY 1")
        assert counts.fetchall() == [(k, 50, sum(range(50))) for k in range(6)]


def test_native_engine_restart_keeps_data_and_cuts_connections(
    db_dsn: str, native_engine: NativeControl
) -> None:
    marker = uuid.uuid4().hex
    with connect(db_dsn) as conn:
        conn.execute("CREATE TABLE survives (v text)")
        conn.execute("INSERT INTO survives VALUES (%s)", (marker,))
        before = one(conn, "SELECT pg_postmaster_start_time()")
        native_engine.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with connect(db_dsn) as conn:
        assert one(conn, "SELECT v FROM survives") == marker
        assert one(conn, "SELECT pg_postmaster_start_time()") > before


def test_native_engine_stop_then_start(db_dsn: str, native_engine: NativeControl) -> None:
    native_engine.stop()
    assert not native_engine.is_running()
    with pytest.raises(psycopg.OperationalError):
        connect(db_dsn).close()
    native_engine.start()
    with connect(db_dsn) as conn:
        assert one(conn, "SELECT 1") == 1


def run_pytest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A nested pytest run of this file with a controlled environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TCPD_")}
    base.update(TCPD_TEST_NO_DOCKER="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=base,
        timeout=120,
        check=False,
    )


def test_missing_tsl_engine_skips_or_fails_as_required() -> None:
    # port 9 (discard) on loopback: nothing listens, the connection is refused at once
    env = {
        "TCPD_TEST_TSL_DSN": "postgresql://postgres@127.0.0.1:9/postgres",
    }
    target = ["-k", "test_tsl_engine_reports_tsl_license"]
    relaxed = run_pytest(env, *target)
    assert relaxed.returncode == 0, relaxed.stdout
    assert "1 skipped" in relaxed.stdout
    assert "tsl: unavailable: cannot connect" in relaxed.stdout
    strict = run_pytest({**env, "TCPD_REQUIRE_TSL": "1"}, *target)
    assert strict.returncode == 1, strict.stdout
    assert "1 error" in strict.stdout
    assert "TCPD_REQUIRE_TSL=1" in strict.stdout
    # a TSL test skipped for any reason (here: inside the test) also fails a strict run
    skipped = run_pytest({**env, "TCPD_REQUIRE_TSL": "1"}, "-k", "test_tsl_databases_are_clean_between_uses")
    assert skipped.returncode == 1, skipped.stdout
    assert "1 skipped" in skipped.stdout
    assert "tsl test(s) were skipped: the run FAILS" in skipped.stdout
