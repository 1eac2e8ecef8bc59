"""`--skew zipf:S`: both simulators give symbols unequal trade rates, in proportion to 1/k^S."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from cli.main import app
from ingest.errors import ConfigError
from ingest.simulator import OkxSimulator, SimulatorSettings
from ingest.simulator.binance import BinanceSimulator, BinanceSimulatorSettings
from ingest.simulator.skew import WeightedShares, parse_skew

RATE = 4000.0
SECONDS = 1.5


def test_zipf_weights_follow_the_symbol_order() -> None:
    assert parse_skew("zipf:1", 4) == (1.0, 0.5, 1 / 3, 0.25)
    assert parse_skew("zipf:0", 3) == (1.0, 1.0, 1.0)
    for bad in ("zipf", "zipf:x", "zipf:-1", "pareto:1"):
        with pytest.raises(ConfigError, match="use zipf:S"):
            parse_skew(bad, 3)


def test_shares_carry_fractions_so_a_quiet_key_still_trades_at_its_rate() -> None:
    shares = WeightedShares({"busy": 7.0, "quiet": 1.0}, cap=1000)
    sent = {"busy": 0, "quiet": 0}
    for _ in range(1000):  # 2 trades a step: the quiet key is due a quarter of one a step
        for key, n in zip(("busy", "quiet"), shares.split(2, ["busy", "quiet"]), strict=True):
            shares.spend(key, n)
            sent[key] += n
    assert sent == {"busy": 1750, "quiet": 250}


def _assert_skewed(published: list[int], weights: tuple[float, ...]) -> None:
    total = sum(published)
    assert total == pytest.approx(RATE * SECONDS, rel=0.1)
    for count, weight in zip(published, weights, strict=True):
        assert count / total == pytest.approx(weight / sum(weights), rel=0.15)


async def test_okx_simulator_trades_each_symbol_at_its_weighted_rate() -> None:
    symbols = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT")
    weights = parse_skew("zipf:1", len(symbols))
    settings = SimulatorSettings(
        symbols=symbols, rate=RATE, weights=weights, live=True, record=False, trades_channel="trades"
    )
    async with OkxSimulator(settings) as sim:
        await asyncio.sleep(SECONDS)
        published = [sim.published_count(s) for s in symbols]
    _assert_skewed(published, weights)


async def test_binance_simulator_trades_each_symbol_at_its_weighted_rate() -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")
    weights = parse_skew("zipf:1", len(symbols))
    settings = BinanceSimulatorSettings(symbols=symbols, rate=RATE, weights=weights, live=True, record=False)
    async with BinanceSimulator(settings) as sim:
        await asyncio.sleep(SECONDS)
        published = [sim.published_count(s) for s in symbols]
    _assert_skewed(published, weights)


def test_weights_must_match_the_symbols() -> None:
    with pytest.raises(ConfigError, match="one value per symbol"):
        OkxSimulator(SimulatorSettings(symbols=("BTC-USDT",), rate=10.0, weights=(1.0, 0.5)))
    with pytest.raises(ConfigError, match="one value per symbol"):
        BinanceSimulator(BinanceSimulatorSettings(symbols=("BTCUSDT",), weights=(1.0, 0.5)))


def test_simulate_rejects_a_bad_skew() -> None:
    result = CliRunner().invoke(app, ["simulate", "--skew", "zipf:high", "--port", "0"])
    assert result.exit_code == 2
    assert "--skew is 'zipf:high'" in result.output
