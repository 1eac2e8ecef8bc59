"""OKX balances against the simulator's /ws/v5/private: a refused login stops that collector
alone (status error, no reconnect), a reconnect logs in and subscribes again, balances are
stored exactly once across it, balances_latest reads the newest, and `tcpd run` never shows
a credential (logs, `tcpd status`, collector_status, /metrics)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import ingest
from cli.main import app
from ingest.model import DataType
from ingest.simulator.account import SimulatedAccount
from tests.collector_support import MemorySink, collector_for, simulator, wait_for
from tests.service_support import Service, query, wait_count, write_configs
from tests.storage_support import make_writer

# Real-looking credentials in OKX's formats.
KEY = "3f6a9c1e-8b2d-4e7f-a5c3-9d1b2e4f6a80"
SECRET = "A7C2E9F4B1D8063E5A9C7F2B4D6E8A1C"
PASSPHRASE = "Tcpd-Balance-2026!"
SECRETS = (KEY, SECRET, PASSPHRASE)
ACCOUNT = SimulatedAccount(KEY, SECRET, PASSPHRASE, changes_per_second=20.0)
BALANCE = (DataType.BALANCE,)
ROOT = Path(ingest.__file__).resolve().parent.parent
SERVING = re.compile(r"serving /metrics, /healthz and /readyz on http://127\.0\.0\.1:(\d+)")


@pytest.fixture(autouse=True)
def okx_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKX_API_KEY", KEY)
    monkeypatch.setenv("OKX_API_SECRET", SECRET)
    monkeypatch.setenv("OKX_API_PASSPHRASE", PASSPHRASE)


def assert_no_secret(text: str, where: str) -> None:
    """No credential, and no piece of 8 characters of one (a log line cut short)."""
    for secret in SECRETS:
        for i in range(len(secret) - 7):
            assert secret[i : i + 8] not in text, f"a piece of a credential appears in {where}"


@pytest.mark.parametrize(
    ("change", "clock_ahead", "code", "cause"),
    [
        ({"api_secret": "B" * 32}, 0.0, "60007", "check OKX_API_SECRET"),
        ({"passphrase": "another-one"}, 0.0, "60024", "check OKX_API_PASSPHRASE"),
        ({"api_key": "00000000-0000-4000-8000-000000000000"}, 0.0, "60005", "check OKX_API_KEY"),
        # The exchange's clock 45 s ahead: our timestamp is older than the 30 s window.
        ({}, 45.0, "60006", "check this machine's clock"),
    ],
)
async def test_a_refused_login_stops_that_collector_alone_without_reconnecting(
    change: dict[str, str], clock_ahead: float, code: str, cause: str
) -> None:
    account = dataclasses.replace(ACCOUNT, **change)
    async with simulator(account=account, rate=200.0, total=None) as sim:
        sim.account.clock = lambda: time.time() + clock_ahead
        sink = MemorySink()
        balances = collector_for(
            sim, sink, symbol="account", data_types=BALANCE, health_check_interval=0.1, max_silence=0.5
        )
        trades = collector_for(sim, sink, symbol="BTC-USDT", health_check_interval=0.1, max_silence=5.0)
        await trades.start()
        await balances.start()
        try:
            await wait_for(lambda: balances.get_status()["status"] == "error", 30, "the refusal")
            last_error = balances.get_status()["statistics"]["last_error"]
            assert f"OKX error {code}" in last_error, last_error
            assert cause in last_error, last_error
            assert "not reconnecting" in last_error
            flowing = len(sink.trades)
            # Many health checks and backoffs later: still one connection, one login.
            await asyncio.sleep(3.0)
            assert (sim.counters["private_connections"], sim.counters["logins"]) == (1, 1)
            status = balances.get_status()
            assert status["status"] == "error"
            assert status["statistics"]["restarts"] == 0
            assert sink.market == []
            # The other collector goes on.
            assert trades.get_status()["status"] == "running"
            await wait_for(lambda: len(sink.trades) > flowing + 50, 30, "trades after the refusal")
            assert_no_secret(json.dumps(status) + json.dumps(balances.get_health_status()), "the status")
        finally:
            await balances.stop()
            await trades.stop()


async def test_a_reconnect_logs_in_again_and_resubscribes() -> None:
    async with simulator(account=ACCOUNT) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink, symbol="account", data_types=BALANCE)
        await collector.start()
        try:
            await wait_for(lambda: len(sink.market) >= 6, 30, "the snapshot and some updates")
            assert (sim.counters["logins"], sim.counters["account_subscribes"]) == (1, 1)
            await sim.disconnect_all()
            await wait_for(lambda: sim.counters["account_subscribes"] == 2, 30, "the resubscribe")
            assert sim.counters["logins"] == 2
            assert sim.counters["logins_refused"] == 0
            assert sim.counters["private_connections"] == 2
            seen = len(sink.market)
            await wait_for(lambda: len(sink.market) >= seen + 5, 30, "updates after the reconnect")
            assert collector.get_status()["status"] == "running"
        finally:
            await collector.stop()


def balance_key(detail: dict[str, str]) -> tuple[Any, ...]:
    return (
        detail["ccy"],
        int(detail["uTime"]),
        detail["eq"],
        detail["cashBal"],
        detail["availBal"],
        detail["frozenBal"],
    )


async def test_balances_are_stored_once_across_a_reconnect_and_the_view_shows_the_latest(
    migrated_db_dsn: str,
) -> None:
    dsn = migrated_db_dsn
    writer = make_writer(dsn)
    await writer.start()
    async with simulator(account=dataclasses.replace(ACCOUNT, page_size=2)) as sim:
        collector = collector_for(sim, writer, symbol="account", data_types=BALANCE)
        await collector.start()
        pushed = sim.account.pushed
        await wait_for(lambda: len(pushed) >= 10, 30, "the snapshot and updates")
        await sim.disconnect_all()
        await wait_for(lambda: sim.counters["account_subscribes"] == 2, 30, "the resubscribe")
        at_reconnect = len(pushed)
        await wait_for(lambda: len(pushed) >= at_reconnect + 10, 30, "updates after the reconnect")
        sim.account.changing = False
        await wait_for(lambda: collector.stats.rows_received == len(pushed), 30, "every push received")
        await collector.stop()
    await writer.stop(30)

    # Three currencies in pages of two: each snapshot is two frames; the second snapshot resent
    # every currency as it was (no change while nobody listened), with another eqUsd.
    distinct = {balance_key(d) for d in pushed}
    assert len(pushed) >= len(distinct) + 3
    stored = await query(
        dsn,
        "SELECT symbol, (extract(epoch FROM \"timestamp\") * 1000)::bigint, data->>'equity', "
        "data->>'cash', data->>'available', data->>'frozen' FROM market_data "
        "WHERE exchange = 'okx' AND data_type = 'balance'",
    )
    assert sorted(stored) == sorted(distinct)  # value for value, and each once

    newest: dict[str, dict[str, str]] = {}
    for detail in pushed:
        if detail["ccy"] not in newest or int(detail["uTime"]) > int(newest[detail["ccy"]]["uTime"]):
            newest[detail["ccy"]] = detail
    view = await query(
        dsn,
        "SELECT exchange, currency, equity, cash, available, frozen, as_of "
        "FROM balances_latest ORDER BY currency",
    )
    assert view == [
        (
            "okx",
            ccy,
            Decimal(d["eq"]),
            Decimal(d["cashBal"]),
            Decimal(d["availBal"]),
            Decimal(d["frozenBal"]),
            datetime.fromtimestamp(int(d["uTime"]) / 1000, UTC),
        )
        for ccy, d in sorted(newest.items())
    ]


async def test_tcpd_run_never_shows_a_credential(tmp_path: Path, migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with simulator(account=ACCOUNT, rate=100.0, total=None) as sim:
        args = write_configs(tmp_path, sim, dsn, ["BTC-USDT"], level="DEBUG")
        okx = json.loads((tmp_path / "okx.json").read_text())
        okx["connection"]["private_ws_url"] = sim.private_url
        okx["trading_pairs"].append({"symbol": "account", "data_types": ["balance"]})
        (tmp_path / "okx.json").write_text(json.dumps(okx))
        # The service must run this checkout's code: its package directory on PYTHONPATH.
        root = str(ROOT)
        env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        svc = Service(tmp_path, args, env)
        await svc.start()
        try:
            await wait_for(lambda: SERVING.search(svc.output()) is not None, 60, "the endpoints")
            port = int(SERVING.search(svc.output()).group(1))  # type: ignore[union-attr]
            await wait_for(lambda: sim.counters["account_subscribes"] >= 1, 60, "the balance subscription")
            await sim.disconnect_all()  # a reconnect logs in again, with its own log lines
            await wait_for(lambda: sim.counters["account_subscribes"] >= 2, 60, "the resubscribe")
            # every currency stored (the snapshot after the reconnect at least)
            await wait_count(
                dsn, "SELECT count(DISTINCT symbol) FROM market_data WHERE data_type = 'balance'", 3, 60
            )
            await asyncio.sleep(1.5)  # a status row or two
            metrics = await asyncio.to_thread(_get, port, "/metrics")
        finally:
            assert await svc.terminate() == 0, svc.output()
    output = svc.output()
    assert "logged in to" in output
    assert "okx-account" in output
    assert_no_secret(output, "the service's output and logs")
    assert_no_secret(metrics, "/metrics")
    assert "tcpd_" in metrics
    status_rows = await query(
        dsn, "SELECT collector, status, status_json::text, health_json::text FROM collector_status"
    )
    assert {r[0] for r in status_rows} == {"okx-BTC-USDT", "okx-account"}
    assert_no_secret(repr(status_rows), "collector_status")
    for command in (["status", "--database-url", dsn], ["status", "--json", "--database-url", dsn]):
        shown = CliRunner().invoke(app, command)
        assert shown.exit_code == 0, shown.output
        assert "okx-account" in shown.output
        assert_no_secret(shown.output, "tcpd status")


def _get(port: int, path: str) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


async def test_two_currency_pairs_share_one_logged_in_connection_and_get_their_own_balances() -> None:
    async with simulator(account=ACCOUNT) as sim:
        usdt, btc = MemorySink(), MemorySink()
        collectors = [
            collector_for(sim, usdt, symbol="account:USDT", data_types=BALANCE),
            collector_for(sim, btc, symbol="account:BTC", data_types=BALANCE),
        ]
        for collector in collectors:
            await collector.start()
        try:
            await wait_for(lambda: len(usdt.market) >= 3 and len(btc.market) >= 3, 30, "balances of both")
            assert {r.symbol for r in usdt.market} == {"USDT"}
            assert {r.symbol for r in btc.market} == {"BTC"}
            assert (sim.counters["private_connections"], sim.counters["logins"]) == (1, 1)
            assert sim.counters["account_subscribes"] == 2
        finally:
            for collector in collectors:
                await collector.stop()
