"""`tcpd run` end to end: simulator on 127.0.0.1 -> service subprocess -> real TimescaleDB."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.collector_support import simulator, wait_for
from tests.service_support import (
    Service,
    count,
    db_trades,
    query,
    sent_tuples,
    sent_tuples_of,
    wait_count,
    wait_rows,
    wait_trades,
    write_configs,
)


@asynccontextmanager
async def service(
    tmp_path: Path, args: list[str], env: dict[str, str] | None = None
) -> AsyncIterator[Service]:
    svc = Service(tmp_path, args, env)
    await svc.start()
    try:
        yield svc
    finally:
        svc.kill()


async def test_trades_arrive_value_for_value(tmp_path: Path, migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with simulator(symbols=("BTC-USDT", "ETH-USDT"), total=4000) as sim:
        args = write_configs(tmp_path, sim, dsn, ["BTC-USDT", "ETH-USDT"], store_raw_data=True)
        # Two exchange files in one process: move ETH-USDT into a second file.
        okx = json.loads((tmp_path / "okx.json").read_text())
        (tmp_path / "okx2.json").write_text(json.dumps({**okx, "trading_pairs": okx["trading_pairs"][1:]}))
        okx["trading_pairs"] = okx["trading_pairs"][:1]
        (tmp_path / "okx.json").write_text(json.dumps(okx))
        url = sim.url
        async with service(tmp_path, [*args, "--config", str(tmp_path / "okx2.json")]) as svc:
            await wait_rows(dsn, "raw_trades", 4000)
            await wait_rows(dsn, "market_data", 4000)
            # While running, the status rows are refreshed every status_interval.
            await wait_count(
                dsn,
                "SELECT count(*) FROM collector_status WHERE status = 'running'"
                " AND (health_json->>'is_healthy')::boolean"
                " AND (status_json->'statistics'->>'rows_received')::int = 4000",
                2,
            )
            assert await svc.terminate() == 0, svc.output()
    log = (tmp_path / "logs" / "tcpd.log").read_text()
    assert "running 2 collector(s): okx-BTC-USDT, okx-ETH-USDT" in log
    # Then a line per collector: what it reads, from where, into which tables of which database.
    for symbol in ("BTC-USDT", "ETH-USDT"):
        assert f"okx-{symbol}: trade from {url} -> raw_trades, market_data in {dsn}" in log
    assert await db_trades(dsn) == sent_tuples(sim)
    raw = await query(dsn, "SELECT data_type, data->>'tradeId', symbol FROM market_data")
    assert sorted(raw) == sorted(("trade", t.trade_id, t.inst_id) for t in sim.sent_trades)
    status = await query(
        dsn, "SELECT collector, status, status_json, health_json FROM collector_status ORDER BY collector"
    )
    assert [(r[0], r[1]) for r in status] == [("okx-BTC-USDT", "stopped"), ("okx-ETH-USDT", "stopped")]
    assert [r[2]["statistics"]["rows_received"] for r in status] == [4000, 4000]
    assert all(r[3]["should_be_running"] is False for r in status)

    result = CliRunner().invoke(app, ["status", "--json", "--database-url", dsn])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["collectors"]
    assert [(r["collector"], r["status_json"]["statistics"]["messages_received"]) for r in shown] == [
        ("okx-BTC-USDT", 2001),
        ("okx-ETH-USDT", 2001),
    ]
    table = CliRunner().invoke(app, ["status", "--database-url", dsn])
    assert table.exit_code == 0
    assert "okx-ETH-USDT" in table.output


async def test_sigterm_under_load_commits_everything_received(tmp_path: Path, migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with simulator(total=None, chunk_trades=50_000) as sim:
        args = write_configs(tmp_path, sim, dsn, ["BTC-USDT"])
        async with service(tmp_path, args) as svc:
            await wait_rows(dsn, "raw_trades", 20_000)
            assert await svc.terminate() == 0, svc.output()
        sent = list(sim.sent_trades)
    (stats,) = await query(dsn, "SELECT status_json->'statistics' FROM collector_status")
    received = stats[0]["rows_received"]
    # Trades the service acknowledged receiving: a prefix of what the simulator wrote to the
    # socket (the rest was still in flight). Exactly those are committed.
    assert received >= 20_000
    assert len(sent) >= received
    assert await db_trades(dsn) == sent_tuples_of(sent[:received])
    assert "not written" in svc.output()
    assert "not written 0" in svc.output()


async def test_connection_drop_reconnects_without_gap_or_duplicate(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    dsn = migrated_db_dsn
    async with simulator(total=6000, rate=4000.0, resend_on_resubscribe=2000) as sim:
        args = write_configs(tmp_path, sim, dsn, ["BTC-USDT"])
        async with service(tmp_path, args) as svc:
            await wait_rows(dsn, "raw_trades", 1000)
            # Frames in flight when the TCP connection is reset are lost like on a real
            # network; what the simulator sends from the reconnect on must all arrive.
            cut = len(sim.sent_trades)
            assert await sim.disconnect_all() == 1
            await wait_for(lambda: len({t.trade_id for t in sim.sent_trades}) == 6000, within=30)
            after = set(sent_tuples_of(sim.sent_trades[cut:]))
            stored = await wait_trades(dsn, lambda rows: after <= set(rows))
            assert await svc.terminate() == 0, svc.output()
    assert sim.counters["subscribes"] == 2
    assert sim.counters["resent_frames"] > 0
    assert len(stored) == len(set(stored))
    assert set(stored) <= set(sent_tuples(sim))
    # The resent overlap arrived twice and is stored once.
    assert len(sim.sent_trades) > len(set(sim.sent_trades)) >= len(stored)
    assert "reconnecting" in svc.output()


async def test_database_restart_loses_no_trade(
    tmp_path: Path, migrated_db_dsn: str, native_engine: object
) -> None:
    dsn = migrated_db_dsn
    async with simulator(total=8000, rate=2000.0) as sim:
        args = write_configs(tmp_path, sim, dsn, ["BTC-USDT"])
        async with service(tmp_path, args) as svc:
            await wait_rows(dsn, "raw_trades", 1000)
            await asyncio.to_thread(native_engine.restart)  # type: ignore[attr-defined]
            await wait_rows(dsn, "raw_trades", 8000, within=60)
            assert await svc.terminate() == 0, svc.output()
    assert await db_trades(dsn) == sent_tuples(sim)
    assert "database writes failing" in svc.output()


async def test_malformed_frames_are_dead_lettered_end_to_end(tmp_path: Path, migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with simulator(total=2000, rate=1000.0) as sim:
        args = write_configs(tmp_path, sim, dsn, ["BTC-USDT"])
        async with service(tmp_path, args) as svc:
            await wait_rows(dsn, "raw_trades", 200)
            assert await sim.inject() == 4
            await wait_rows(dsn, "raw_trades", 2000)
            assert await svc.terminate() == 0, svc.output()
    from ingest.simulator.wire import MALFORMED_FRAMES

    dead = await query(dsn, "SELECT exchange, reason, raw_text FROM dead_letters ORDER BY id")
    assert [d[2] for d in dead] == list(MALFORMED_FRAMES)
    assert all(d[0] == "okx" and d[1] for d in dead)
    assert await db_trades(dsn) == sent_tuples(sim)
    assert await count(dsn, "market_data") == 0


async def test_no_secret_in_any_output(tmp_path: Path, migrated_db_dsn: str) -> None:
    password = "Pa55-w0rd-tcpd-e2e"
    secrets = {
        "OKX_API_KEY": "key-0a1b2c3d4e",
        "OKX_API_SECRET": "secret-9f8e7d6c5b",
        "OKX_API_PASSPHRASE": "phrase-13572468",
    }
    # Trust auth ignores the password, so the run works and still carries it everywhere.
    good = migrated_db_dsn.replace("postgres@", f"postgres:{password}@", 1)
    assert password in good
    bad = good.rsplit("/", 1)[0] + "/no_such_database_e2e"
    async with simulator(total=300, rate=300.0, extra_symbols=("ETH-USDT",)) as sim:
        outputs = []
        for name, dsn, symbols in (("good", good, ["BTC-USDT", "NOPE-USDT"]), ("bad", bad, ["ETH-USDT"])):
            run_dir = tmp_path / name
            run_dir.mkdir()
            args = write_configs(
                run_dir,
                sim,
                None,
                symbols,
                level="DEBUG",
                connection={"ping_interval": 0.2, "pong_timeout": 0.2},
            )
            env = {**secrets, "TCPD_DATABASE_URL": dsn}
            async with service(run_dir, args, env) as svc:
                await asyncio.sleep(2.0)
                if name == "good":
                    # On a loaded machine the process may need more than 2 s to connect;
                    # injecting before that would reach nobody.
                    await wait_for(lambda: "subscribed: trades:BTC-USDT" in svc.output(), within=30)
                    assert await sim.inject() >= 4
                    await asyncio.sleep(0.5)
                await svc.terminate()
            outputs.append(svc.output())
    good_out, bad_out = outputs
    # The error paths really ran: exchange refusal, dead letters, unreachable database.
    assert "60018" in good_out
    assert "dead-lettering" in good_out
    assert "collector status not written" in bad_out
    assert "no_such_database_e2e" in bad_out
    rows = await query(
        migrated_db_dsn,
        "SELECT collector, status, status_json::text || health_json::text FROM collector_status"
        " ORDER BY collector",
    )
    # The refusal reached the status table (status error); the secrets did not.
    assert [(r[0], r[1]) for r in rows] == [("okx-BTC-USDT", "stopped"), ("okx-NOPE-USDT", "error")]
    stored = [" ".join(r[2] for r in rows)]
    for text in [*outputs, *stored]:
        for secret in (password, *secrets.values()):
            assert secret not in text


async def test_bad_config_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "okx.json").write_text('{"exchange": "okx", "connection": {}}')
    (tmp_path / "database.json").write_text('{"database": {"url": "postgresql://x@127.0.0.1/x"}}')
    result = CliRunner().invoke(
        app,
        ["run", "--config", str(tmp_path / "okx.json"), "--database-config", str(tmp_path / "database.json")],
    )
    assert result.exit_code == 2
    assert "public_ws_url" in result.output


def test_status_on_an_unmigrated_database_says_what_to_do(db_dsn: str) -> None:
    result = CliRunner().invoke(app, ["status", "--database-url", db_dsn])
    assert result.exit_code == 1
    assert "collector_status" in result.output
    assert "tcpd db migrate" in result.output


async def test_sigint_stops_gracefully_too(tmp_path: Path, migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    async with simulator(total=500) as sim:
        args = write_configs(tmp_path, sim, dsn, ["BTC-USDT"])
        async with service(tmp_path, args) as svc:
            await wait_rows(dsn, "raw_trades", 500)
            assert await svc.terminate(sig=signal.SIGINT) == 0, svc.output()
    assert await db_trades(dsn) == sent_tuples(sim)
    assert "stop requested" in svc.output()
