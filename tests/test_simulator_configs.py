"""The offline trial without editing a file: `tcpd simulate` at the README's ports, then
`tcpd run --config config/okx-simulator.json` (or binance-simulator.json)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from cli.simulate import SIMULATOR_CONFIGS, run_hint
from ingest.config.loader import load_exchange_file
from ingest.simulator import OkxSimulator, SimulatorSettings
from tests.service_support import Service, query, write_configs

REPO = Path(__file__).resolve().parent.parent


def test_the_simulator_configs_are_the_shipped_configs_pointed_at_the_simulator() -> None:
    for path, url in SIMULATOR_CONFIGS.items():
        venue = path.removeprefix("config/").removesuffix("-simulator.json")
        trial = json.loads((REPO / path).read_text())
        shipped = json.loads((REPO / "config" / f"{venue}.json").read_text())
        # Only the URLs differ: the trial collects what the shipped file collects.
        urls = {k for k in shipped["connection"] if k.endswith("ws_url")}
        assert {k: v for k, v in trial["connection"].items() if k not in urls} == {
            k: v for k, v in shipped["connection"].items() if k not in urls
        }
        assert {k: v for k, v in trial.items() if k != "connection"} == {
            k: v for k, v in shipped.items() if k != "connection"
        }
        assert load_exchange_file(REPO / path).connection.main_ws_url() == url


def test_simulate_says_the_exact_run_line_at_the_shipped_ports_and_which_keys_otherwise() -> None:
    assert run_hint("ws://127.0.0.1:8765/ws/v5/public", "k").startswith(
        "collect from it: tcpd run --config config/okx-simulator.json"
    )
    assert run_hint("ws://127.0.0.1:8766", "k").startswith(
        "collect from it: tcpd run --config config/binance-simulator.json"
    )
    assert run_hint("ws://127.0.0.1:9999/ws/v5/public", "public_ws_url").startswith("put public_ws_url in")


async def test_tcpd_run_collects_from_the_simulator_with_the_shipped_trial_config(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    # What `tcpd simulate --symbols BTC-USDT,ETH-USDT --rate 200` serves (trades-all is its default).
    settings = SimulatorSettings(
        port=8765, symbols=("BTC-USDT", "ETH-USDT"), rate=200.0, total=None, trades_channel="trades-all"
    )
    async with OkxSimulator(settings) as sim:
        args = write_configs(tmp_path, sim, migrated_db_dsn, ["BTC-USDT"])
        args[args.index("--config") + 1] = str(REPO / "config" / "okx-simulator.json")
        svc = Service(tmp_path, args)
        await svc.start()
        try:
            wanted = {(s, t) for s in ("BTC-USDT", "ETH-USDT") for t in ("trade", "orderbook", "ticker")}
            seen: set[tuple[str, str]] = set()
            deadline = time.monotonic() + 30.0
            while seen != wanted and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                rows = await query(migrated_db_dsn, "SELECT DISTINCT symbol, data_type FROM market_data")
                seen = {(r[0], r[1]) for r in rows}
            assert seen == wanted, (seen, svc.output()[-2000:])
            trades = await query(migrated_db_dsn, "SELECT DISTINCT symbol FROM raw_trades")
            assert sorted(r[0] for r in trades) == ["BTC-USDT", "ETH-USDT"]
        finally:
            assert await svc.terminate() == 0, svc.output()[-3000:]
