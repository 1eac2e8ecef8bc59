"""Instrument metadata over real HTTP from the simulator into a real database, and the candle
volumes it gives to contracts (spot, linear, inverse), on both editions. No network, no mocks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.errors import ExchangeError
from ingest.exchanges.okx.instruments import OkxInstrumentSource, instrument_row
from ingest.instruments.http import RetryPolicy, retry_after_seconds
from ingest.instruments.refresher import InstrumentRefresher
from ingest.simulator import OkxSimulator
from tests.collector_support import simulator
from tests.service_support import Service, query, wait_count, wait_rows, write_configs

SYMBOLS = ("BTC-USDT", "BTC-USDT-SWAP", "BTC-USD-SWAP", "ETH-USD-250328")
FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)


@asynccontextmanager
async def rest_simulator() -> AsyncIterator[OkxSimulator]:
    async with simulator(symbols=SYMBOLS, total=0) as sim:
        yield sim


def refresher(dsn: str, sim: OkxSimulator, retry: RetryPolicy = FAST) -> InstrumentRefresher:
    return InstrumentRefresher(dsn, "okx", OkxInstrumentSource(), base_url=sim.rest_url, retry=retry)


def instruments(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT symbol, instrument_type, base_currency, quote_currency, settle_currency, contract_type,"
            " contract_value, contract_value_currency, contract_multiplier, lot_size, tick_size"
            " FROM instruments ORDER BY symbol"
        ).fetchall()


@pytest.mark.parametrize(
    "role",
    [
        pytest.param("migrated_db_dsn", marks=pytest.mark.db),
        pytest.param("migrated_tsl_dsn", marks=pytest.mark.tsl),
    ],
)
async def test_instruments_are_loaded_over_http_and_give_contract_volumes(
    role: str, request: pytest.FixtureRequest
) -> None:
    dsn: str = request.getfixturevalue(role)
    async with rest_simulator() as sim:
        assert await refresher(dsn, sim).refresh_once() == 4
        assert sim.instruments.requests == ["SPOT", "SWAP", "FUTURES"]
    d = Decimal
    assert instruments(dsn) == [
        ("BTC-USD-SWAP", "swap", "BTC", "USD", "BTC", "inverse", d(100), "USD", d(1), d(1), d("0.1")),
        ("BTC-USDT", "spot", "BTC", "USDT", None, None, None, None, None, d("0.00000001"), d("0.1")),
        (
            "BTC-USDT-SWAP",
            "swap",
            "BTC",
            "USDT",
            "USDT",
            "linear",
            d("0.01"),
            "BTC",
            d(1),
            d("0.01"),
            d("0.1"),
        ),
        ("ETH-USD-250328", "futures", "ETH", "USD", "ETH", "inverse", d(10), "USD", d(1), d(1), d("0.1")),
    ]
    start = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
    trades = [  # (symbol, price, size in OKX's unit: base currency for spot, contracts otherwise)
        ("BTC-USDT", "50000", "2"),
        ("BTC-USDT", "40000", "1"),
        ("BTC-USDT-SWAP", "50000", "300"),  # 300 x 0.01 BTC
        ("BTC-USDT-SWAP", "40000", "100"),
        ("BTC-USD-SWAP", "50000", "500"),  # 500 x 100 USD
        ("BTC-USD-SWAP", "40000", "200"),
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for n, (symbol, px, sz) in enumerate(trades):
            conn.execute(
                'INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp",'
                " trade_seq) VALUES ('okx', %s, %s, %s, %s, 'buy', %s, %s)",
                (symbol, str(n), px, sz, start, n),
            )
        got = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT symbol, volume, base_volume, quote_volume, vwap FROM candles_1m"
                " WHERE bucket_start = %s",
                (start,),
            ).fetchall()
        }
    assert got["BTC-USDT"][:3] == (d(3), d(3), d(140000))
    assert got["BTC-USDT-SWAP"][:3] == (d(400), d("4.00"), d("190000.00"))
    # inverse: quote = contracts x 100 USD; base = sum(contracts x 100 / price) BTC
    assert got["BTC-USD-SWAP"][:3] == (d(700), d("1.5"), d(70000))
    assert abs(got["BTC-USD-SWAP"][3] - d("70000") / d("1.5")) < d("1e-15")
    assert got["BTC-USDT-SWAP"][3] == d(47500)


async def test_a_reload_updates_rows_and_keeps_instruments_no_longer_listed(migrated_db_dsn: str) -> None:
    with psycopg.connect(migrated_db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO instruments (exchange, symbol, instrument_type, contract_type, contract_value,"
            " contract_multiplier) VALUES ('okx', 'BTC-USDT-SWAP', 'swap', 'linear', 1, 1),"
            " ('okx', 'OLD-USDT-SWAP', 'swap', 'linear', 5, 1)"
        )
    async with rest_simulator() as sim:
        await refresher(migrated_db_dsn, sim).refresh_once()
    rows = {r[0]: r for r in instruments(migrated_db_dsn)}
    assert rows["BTC-USDT-SWAP"][6] == Decimal("0.01")  # updated from the exchange
    assert rows["OLD-USDT-SWAP"][6] == Decimal(5)  # delisted: old trades still need its size


async def test_429_waits_what_retry_after_asks_then_succeeds(
    migrated_db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with rest_simulator() as sim:
        sim.instruments.fail_next(1, HTTPStatus.TOO_MANY_REQUESTS, {"Retry-After": "1"})
        sim.instruments.fail_next(1, HTTPStatus.SERVICE_UNAVAILABLE)
        with caplog.at_level(logging.INFO, logger="ingest.instruments.http"):
            assert await refresher(migrated_db_dsn, sim).refresh_once() == 4
        assert sim.instruments.requests == ["SPOT", "SPOT", "SPOT", "SWAP", "FUTURES"]
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retries[0] == "GET /api/v5/public/instruments failed (HTTP 429); retry 1 in 1.00 s"
    assert retries[1].startswith("GET /api/v5/public/instruments failed (HTTP 503); retry 2 in 0.0")


async def test_retries_are_bounded_and_a_refused_request_is_not_retried(migrated_db_dsn: str) -> None:
    async with rest_simulator() as sim:
        sim.instruments.fail_next(3, HTTPStatus.BAD_GATEWAY)
        with pytest.raises(ExchangeError, match="failed 3 times, last: HTTP 502"):
            await refresher(migrated_db_dsn, sim).refresh_once()
        assert sim.instruments.requests == ["SPOT"] * 3
        sim.instruments.fail_next(1, HTTPStatus.FORBIDDEN)
        with pytest.raises(ExchangeError, match="HTTP 403, not retried"):
            await refresher(migrated_db_dsn, sim).refresh_once()
        assert sim.instruments.requests == ["SPOT"] * 4
    assert instruments(migrated_db_dsn) == []


async def test_an_unreachable_exchange_is_a_bounded_error() -> None:
    source = OkxInstrumentSource()
    dead = InstrumentRefresher(
        "postgresql://nobody@127.0.0.1:1/x", "okx", source, base_url="http://127.0.0.1:1", retry=FAST
    )
    with pytest.raises(ExchangeError, match="failed 3 times, last: ConnectError"):
        await dead.fetch()


def test_okx_answers_are_checked() -> None:
    source = OkxInstrumentSource()
    with pytest.raises(ExchangeError, match="OKX error code '51000'"):
        source.parse({"code": "51000", "msg": "Parameter instType error", "data": []})
    with pytest.raises(ExchangeError, match="'data' is not a list"):
        source.parse({"code": "0", "data": None})
    good = {"instType": "SWAP", "instId": "X-USDT-SWAP", "ctType": "linear", "ctVal": "1", "ctMult": "1"}
    assert source.parse({"code": "0", "data": [good, {**good, "ctVal": ""}, {**good, "ctType": "?"}, 7]}) == [
        instrument_row(good)
    ]
    assert instrument_row({**good, "instType": "OPTION"}) is None
    assert instrument_row({**good, "ctMult": "0"}) is None


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


async def test_tcpd_run_loads_the_simulators_instruments_at_start(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    dsn = migrated_db_dsn
    async with simulator(symbols=("BTC-USDT", "BTC-USD-SWAP"), total=200) as sim:
        # No rest_url in the config: a loopback public_ws_url means the simulator's own port.
        args = write_configs(tmp_path, sim, dsn, ["BTC-USDT", "BTC-USD-SWAP"])
        svc = Service(tmp_path, args)
        await svc.start()
        try:
            await wait_rows(dsn, "raw_trades", 200)
            await wait_count(dsn, "SELECT count(*) FROM instruments", 2)
            assert await svc.terminate() == 0, svc.output()
        finally:
            svc.kill()
    assert sim.instruments.requests == ["SPOT", "SWAP", "FUTURES"]
    rows = await query(dsn, "SELECT symbol, contract_type, contract_value FROM instruments ORDER BY symbol")
    assert rows == [("BTC-USD-SWAP", "inverse", Decimal(100)), ("BTC-USDT", None, None)]
    assert "stored 2 okx instruments" in (tmp_path / "logs" / "tcpd.log").read_text()
