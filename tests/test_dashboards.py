"""The compose monitoring profile's dashboards and read-only role (docs/dashboards.md): every SQL
query of the dashboard JSON runs as tcpd_grafana (sql/0119) on migrated databases of both
editions holding trades, and returns the panel's columns with the reference candles' values;
the role cannot write; monitoring/grafana-role.sql gives it LOGIN and a password from the
environment; Prometheus' scrape config is valid. The PromQL expressions run against a real
Prometheus in tests/test_metrics_endpoints.py."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import yaml

from tests.candles_support import (
    TIMEFRAMES,
    Trade,
    bucket_of,
    db_now,
    load_trades,
    open_autocommit,
    reference_candles,
)
from tests.dashboard_support import (
    REPO,
    dashboard_files,
    dashboard_queries,
    interpolate_sql,
)

ROLE = "tcpd_grafana"
PAIRS = (("okx", "BTC-USDT"), ("okx", "ETH-USDT"), ("okx", "IT'S-USDT"), ("binance", "BTC-USDT"))
CANDLE_COLUMNS = ["time", "open", "high", "low", "close", "volume"]


def sql_queries(panel_type: str) -> list[str]:
    return [q.text for q in dashboard_queries() if q.language == "sql" and q.panel_type == panel_type]


def variable_query(name: str) -> str:
    (text,) = [q.text for q in dashboard_queries() if q.where == f"variable {name}"]
    return text


def candles_board() -> dict[str, Any]:
    data = json.loads((REPO / "monitoring/grafana/dashboards/candles.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def recent_trades(now: datetime) -> list[Trade]:
    """Trades every 7 minutes (a little apart per pair) from yesterday 00:00 UTC to 2 minutes ago:
    closed candles of every timeframe, 1m candles within the last day."""
    rng = random.Random(12)
    start = bucket_of(now, TIMEFRAMES["1d"]) - TIMEFRAMES["1d"]
    trades = []
    for n, (exchange, symbol) in enumerate(PAIRS):
        ts = start + timedelta(seconds=30 + 11 * n)
        while ts < now - timedelta(minutes=2):
            price = Decimal(rng.randint(1, 10**7)) / 100
            size = Decimal(rng.randint(1, 10**6)) / 10**4
            trades.append(Trade(len(trades) + 1, exchange, symbol, f"t{len(trades)}", price, size, ts))
            ts += timedelta(minutes=7)
    return trades


@pytest.fixture(params=["apache", "tsl"])
def dsn_with_trades(request: pytest.FixtureRequest) -> tuple[str, list[Trade]]:
    dsn = str(request.getfixturevalue("migrated_db_dsn" if request.param == "apache" else "migrated_tsl_dsn"))
    with open_autocommit(dsn) as conn:
        trades = recent_trades(db_now(conn))
        load_trades(conn, trades)
    return dsn, trades


def as_grafana(conn: psycopg.Connection[Any], text: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one dashboard query as the read-only role (inside the caller's transaction)."""
    conn.execute(f"SET LOCAL ROLE {ROLE}")
    try:
        cur = conn.execute(text.encode())
        assert cur.description is not None
        return [d.name for d in cur.description], cur.fetchall()
    finally:
        conn.execute("RESET ROLE")


def test_dashboards_use_the_provisioned_data_sources() -> None:
    provisioned = yaml.safe_load(
        (REPO / "monitoring/grafana/provisioning/datasources/tcpd.yml").read_text(encoding="utf-8")
    )
    uids = {(d["type"], d["uid"]) for d in provisioned["datasources"]}
    for file in dashboard_files():
        text = file.read_text(encoding="utf-8")
        used = {(d["type"], d["uid"]) for d in _datasources(json.loads(text))}
        assert used, f"{file.name}: no data source"
        assert used <= uids, f"{file.name} uses data sources {used - uids} nobody provisions"


def _datasources(node: Any) -> list[dict[str, str]]:
    if isinstance(node, dict):
        own = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
        return own + [d for value in node.values() for d in _datasources(value)]
    if isinstance(node, list):
        return [d for value in node for d in _datasources(value)]
    return []


def test_timeframe_variable_offers_exactly_the_candle_views() -> None:
    (variable,) = [v for v in candles_board()["templating"]["list"] if v["name"] == "timeframe"]
    # custom: fixed values, never read from the database
    assert variable["type"] == "custom"
    assert variable["query"].split(",") == list(TIMEFRAMES)
    (candles,) = sql_queries("candlestick")
    for tf in TIMEFRAMES:
        assert f"FROM candles_{tf}\n" in candles


def test_every_panel_query_found_and_candlestick_repeats_per_symbol() -> None:
    queries = dashboard_queries()
    assert {q.dashboard for q in queries} == {"candles.json", "ingest-health.json"}
    assert len(sql_queries("candlestick")) == 1
    (panel,) = [p for p in candles_board()["panels"] if p["type"] == "candlestick"]
    assert panel["repeat"] == "symbol"
    assert panel["options"]["mode"] == "candles+volume"


def test_sql_queries_return_the_panels_columns_and_values_as_the_read_only_role(
    dsn_with_trades: tuple[str, list[Trade]],
) -> None:
    dsn, trades = dsn_with_trades
    (candles,) = sql_queries("candlestick")
    with open_autocommit(dsn) as conn, conn.transaction():
        now = db_now(conn)  # one now() for the queries and the reference
        time_from, time_to = now - timedelta(days=3), now

        def run(text: str, **variables: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            return as_grafana(conn, interpolate_sql(text, variables, time_from, time_to))

        columns, rows = run(variable_query("exchange"))
        assert (columns, rows) == (["exchange"], [("binance",), ("okx",)])
        columns, rows = run(variable_query("symbol"), exchange="okx")
        assert columns == ["symbol"]
        assert sorted(r[0] for r in rows) == sorted(s for e, s in PAIRS if e == "okx")

        compared = 0
        for exchange, symbol in PAIRS:
            mine = [t for t in trades if (t.exchange, t.symbol) == (exchange, symbol)]
            for tf, width in TIMEFRAMES.items():
                columns, rows = run(candles, exchange=exchange, symbol=symbol, timeframe=tf)
                assert columns == CANDLE_COLUMNS
                expected = {
                    c["ts"]: (c["ts"], c["open"], c["high"], c["low"], c["close"], c["volume"])
                    for (_, _, start), c in reference_candles(mine, width, now).items()
                    if time_from <= start <= time_to
                }
                assert rows, f"{exchange} {symbol} {tf}: no candle"
                assert rows == [expected[ts] for ts in sorted(expected)], f"{exchange} {symbol} {tf}"
                compared += len(rows)
        assert compared > len(trades)  # every trade is in a candle of each of six timeframes


def test_read_only_role_cannot_write(migrated_db_dsn: str) -> None:
    with open_autocommit(migrated_db_dsn) as conn:
        conn.execute(f"SET ROLE {ROLE}")
        assert conn.execute("SELECT count(*) FROM raw_trades").fetchone() == (0,)
        for statement in (
            'INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp")'
            " VALUES ('okx', 'BTC-USDT', '1', 1, 1, 'buy', now())",
            "DELETE FROM dead_letters",
            "UPDATE instruments SET symbol = symbol",
            "CREATE TABLE grafana_was_here (x int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.encode())


def test_migration_runs_again_where_the_role_exists(migrated_db_dsn: str) -> None:
    """Roles are per cluster: a second database's migration finds tcpd_grafana there already."""
    script = (REPO / "sql/0119_grafana_reader.sql").read_bytes()
    with open_autocommit(migrated_db_dsn) as conn:
        conn.execute(script)
        row = conn.execute(
            "SELECT has_table_privilege(%s, 'candles_1h', 'SELECT'),"
            " has_table_privilege(%s, 'raw_trades', 'INSERT')",
            (ROLE, ROLE),
        ).fetchone()
    assert row == (True, False)


def _psql() -> str:
    found = shutil.which("psql")
    if found is None:
        pytest.skip("psql is not installed")
    return found


def test_grafana_role_script_sets_login_and_password_from_the_environment(migrated_db_dsn: str) -> None:
    script = str(REPO / "monitoring/grafana-role.sql")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    empty = subprocess.run(
        [_psql(), migrated_db_dsn, "--no-psqlrc", "--file", script],
        env={**env, "TCPD_GRAFANA_DB_PASSWORD": ""}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert empty.returncode != 0
    assert "TCPD_GRAFANA_DB_PASSWORD is empty" in empty.stderr
    password = "it's a 'test' password"
    done = subprocess.run(
        [_psql(), migrated_db_dsn, "--no-psqlrc", "--file", script],
        env={**env, "TCPD_GRAFANA_DB_PASSWORD": password}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    with open_autocommit(migrated_db_dsn) as conn:
        row = conn.execute(
            "SELECT rolcanlogin, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", (ROLE,)
        ).fetchone()
    assert row == (True, True)
    # a login session of the role (the test servers trust loopback) is read-only
    info = psycopg.conninfo.conninfo_to_dict(migrated_db_dsn)
    info["user"] = ROLE
    with psycopg.connect(psycopg.conninfo.make_conninfo(**info), autocommit=True) as grafana:
        assert grafana.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            grafana.execute("CREATE TABLE scratch (x int)")


def test_prometheus_scrape_config_is_valid() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("TCPD_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("promtool is not installed (TCPD_REQUIRE_PROMETHEUS=1): apt-get install prometheus")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    config = REPO / "monitoring/prometheus.yml"
    done = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    scrape = yaml.safe_load(config.read_text(encoding="utf-8"))["scrape_configs"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    listen = compose["services"]["ingester"]["command"].split("--http-listen ")[1].split()[0]
    assert scrape[0]["static_configs"][0]["targets"] == [f"ingester:{listen.rsplit(':', 1)[1]}"]
