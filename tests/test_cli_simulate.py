"""`tcpd simulate` as users and the benchmark run it: a separate process, stopped by a signal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from cli.main import app
from ingest.exchanges.okx import OkxAdapter
from ingest.model import DataType
from ingest.rows import TradeRow

ROOT = Path(__file__).resolve().parent.parent


async def test_simulate_serves_trades_and_stops_on_sigint() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cli.main import main; main()",
        "simulate",
        "--port",
        "0",
        "--symbols",
        "BTC-USDT,ETH-USDT",
        "--rate",
        "0",
        "--total",
        "10",
        "--trades-per-message",
        "5",
        "--no-live",
        "--trades-channel",
        "trades",
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            public = (await proc.stdout.readline()).decode().strip()
            business = (await proc.stdout.readline()).decode().strip()
        assert public.startswith("public_ws_url: ws://127.0.0.1:")
        assert public.endswith("/ws/v5/public")
        assert business == public.replace("public_ws_url", "business_ws_url").replace("public", "business")
        adapter = OkxAdapter()
        args = [{"channel": "trades", "instId": s} for s in ("BTC-USDT", "ETH-USDT")]
        trades: list[TradeRow] = []
        async with connect(public.split(" ", 1)[1]) as ws:
            await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
            async with asyncio.timeout(10):
                while len(trades) < 10:
                    trades += adapter.parse(await ws.recv(), store_raw_data=False).trades
        assert sorted((t.symbol, int(t.trade_id)) for t in trades) == [
            (s, i) for s in ("BTC-USDT", "ETH-USDT") for i in range(1, 6)
        ]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            _, err = await proc.communicate()
    assert proc.returncode == 0
    assert "stopped: " in err.decode()
    assert "trades=10" in err.decode()


async def test_simulate_serves_tickers_and_books_at_the_given_rates() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cli.main import main; main()",
        "simulate",
        "--port",
        "0",
        "--books-rate",
        "0",
        "--tickers-rate",
        "20",
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            public = (await proc.stdout.readline()).decode().strip()
        adapter = OkxAdapter()
        args = [{"channel": c, "instId": "BTC-USDT"} for c in ("books5", "tickers")]
        kinds: list[DataType] = []
        async with connect(public.split(" ", 1)[1]) as ws:
            await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
            async with asyncio.timeout(10):
                while len(kinds) < 3:
                    result = adapter.parse(await ws.recv(), store_raw_data=False)
                    kinds += [r.data_type for r in result.market]
        assert kinds == [DataType.TICKER] * 3  # --books-rate 0: no books5 pushes
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            _, err = await proc.communicate()
    assert proc.returncode == 0
    assert "tickers=" in err.decode()
    assert "books5=" not in err.decode()


def test_simulate_rejects_bad_options() -> None:
    result = CliRunner().invoke(app, ["simulate", "--symbols", " , ", "--port", "0"])
    assert result.exit_code == 2
    assert "--symbols is empty" in result.output
    result = CliRunner().invoke(app, ["simulate", "--books-rate", "-1", "--port", "0"])
    assert result.exit_code == 2
    assert "--books-rate and --tickers-rate must be >= 0" in result.output
    result = CliRunner().invoke(app, ["simulate", "--rate", "0", "--port", "0"])
    assert result.exit_code == 2
    assert "--live needs a --rate above 0" in result.output
    result = CliRunner().invoke(app, ["simulate", "--trades-channel", "trades-some", "--port", "0"])
    assert result.exit_code == 2
    assert "use trades-all or trades" in result.output


async def test_simulate_by_default_trades_live_per_fill_and_serves_the_same_history_over_rest() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cli.main import main; main()",
        "simulate",
        "--port",
        "0",
        "--rate",
        "500",
        "--books-rate",
        "0",
        "--tickers-rate",
        "0",
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            await proc.stdout.readline()
            business = (await proc.stdout.readline()).decode().strip().split(" ", 1)[1]
        await asyncio.sleep(1.0)  # nobody listens: trades happen all the same
        adapter = OkxAdapter()
        live: list[TradeRow] = []
        async with connect(business) as ws:
            arg = {"channel": "trades-all", "instId": "BTC-USDT"}
            await ws.send(orjson.dumps({"op": "subscribe", "args": [arg]}).decode())
            async with asyncio.timeout(10):
                while len(live) < 50:
                    live += adapter.parse(await ws.recv(), store_raw_data=False).trades
        first = int(live[0].trade_id)
        assert first > 200, "the tape ran before anyone subscribed"
        rest = business.replace("ws://", "http://").removesuffix("/ws/v5/business")
        url = f"{rest}/api/v5/market/history-trades?instId=BTC-USDT&after={first + 1}&limit=100"
        body = orjson.loads(await asyncio.to_thread(_read, url))
        assert body["code"] == "0"
        assert [int(t["tradeId"]) for t in body["data"]] == list(range(first, first - 100, -1))
        assert body["data"][0]["px"] == live[0].price
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            await proc.communicate()
    assert proc.returncode == 0


def _read(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback simulator
        return bytes(answer.read())
