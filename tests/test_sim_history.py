"""The simulator's REST trade history: the same trades its live stream publishes, paged by
tradeId like OKX's history-trades, with the horizon and the rate limit (429, code 50011)."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import orjson
import pytest

from ingest.simulator import OkxSimulator
from ingest.simulator.settings import SimulatorSettings


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback test server
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


async def fetch(url: str) -> tuple[int, Any]:
    return await asyncio.to_thread(get, url)


@pytest.mark.asyncio
async def test_a_live_simulator_publishes_unheard_trades_and_serves_them_by_page() -> None:
    settings = SimulatorSettings(rate=2000.0, live=True, trades_channel="trades-all", history_trades=300)
    async with OkxSimulator(settings) as sim:
        await asyncio.sleep(0.5)  # nobody subscribed: trades are published all the same
        published = sim.published_trades("BTC-USDT")
        assert len(published) > 400
        newest = int(published[-1].trade_id)
        base = f"{sim.rest_url}/api/v5/market/history-trades?instId=BTC-USDT"
        status, body = await fetch(f"{base}&after={newest + 1}&limit=100")
        assert status == 200
        assert body["code"] == "0"
        ids = [int(t["tradeId"]) for t in body["data"]]
        assert ids[0] <= newest
        assert ids == sorted(ids, reverse=True)
        assert len(ids) == 100
        by_id = {t.trade_id: t for t in published}
        for item in body["data"]:
            sent = by_id[item["tradeId"]]
            assert (item["px"], item["sz"], item["side"], item["ts"]) == (
                sent.price,
                sent.size,
                sent.side,
                str(sent.ts_ms),
            )
        status, body = await fetch(f"{base}&after={ids[-1]}&before={ids[-1] - 5}")
        assert [int(t["tradeId"]) for t in body["data"]] == list(range(ids[-1] - 1, ids[-1] - 5, -1))
        # Beyond the horizon (the newest 300 are kept): nothing.
        status, body = await fetch(f"{base}&after={newest - 400}")
        assert status == 200
        assert body["data"] == []
        status, body = await fetch(f"{base}&type=2")
        assert status == 400
        assert body["code"] == "51000"


@pytest.mark.asyncio
async def test_over_the_rate_limit_the_answer_is_429_with_okx_code() -> None:
    settings = SimulatorSettings(rate=100.0, live=True, history_requests_per_2s=3)
    async with OkxSimulator(settings) as sim:
        url = f"{sim.rest_url}/api/v5/market/history-trades?instId=BTC-USDT"
        answers = [await fetch(url) for _ in range(5)]
        assert [status for status, _ in answers] == [200, 200, 200, 429, 429]
        assert answers[3][1]["code"] == "50011"
        assert sim.history.rate_limited == 2
