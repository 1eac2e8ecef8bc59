"""Many trading pairs over few connections (ingest/collector/link.py, link_pool.py).

Collectors of one venue endpoint share connections, pairs_per_connection of them each; the
link routes frames by symbol, so each collector keeps its own status, statistics and errors.
Against the simulators: OKX and Binance.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ingest.collector.base import BaseDataCollector
from ingest.collector.batch_receiver import connect
from ingest.collector.factory import ExchangeFactory
from ingest.collector.link import Link
from ingest.collector.params import parse_params
from ingest.exchanges.base import Subscription
from ingest.exchanges.registry import get_adapter
from ingest.model import DataType, ExchangeCollectorConfig
from ingest.rows import TradeRow
from ingest.simulator.binance import BinanceSimulator
from tests.collector_support import MemorySink, collector_for, simulator, wait_for
from tests.test_binance_e2e import binance


def okx_symbols(n: int) -> tuple[str, ...]:
    return tuple(f"S{k:03d}-USDT" for k in range(n))


def trade_counts(sink: MemorySink) -> Counter[str]:
    return Counter(r.symbol for r in sink.rows if type(r) is TradeRow)


async def start_all(collectors: Sequence[BaseDataCollector]) -> None:
    assert all(await asyncio.gather(*(c.start() for c in collectors)))


async def stop_all(collectors: Sequence[BaseDataCollector]) -> None:
    await asyncio.gather(*(c.stop() for c in collectors))


def connection_ids(collectors: Sequence[BaseDataCollector]) -> Counter[str]:
    return Counter(conn["id"] for c in collectors for conn in c.get_status()["connections"])


async def test_300_okx_pairs_share_six_connections_and_each_keeps_its_own_status() -> None:
    symbols = okx_symbols(300)
    async with simulator(symbols=symbols, rate=3000.0, idle_timeout=3600.0) as sim:
        sink = MemorySink()
        collectors = [collector_for(sim, sink, symbol=s, pairs_per_connection=50) for s in symbols]
        try:
            await start_all(collectors)
            await wait_for(
                lambda: len(trade_counts(sink)) == 300, within=30, what="trades of every one of 300 pairs"
            )
            assert sim.counters["connections"] == 6
            assert sim.open_connections == 6
            ids = connection_ids(collectors)
            assert sorted(ids.values()) == [50] * 6  # every pair on one of six connections
            status = collectors[0].get_status()
            assert status["symbols"] == [symbols[0]]
            (conn,) = status["connections"]
            assert (conn["pairs"], conn["streams"], conn["reconnects"]) == (50, 50, 0)
            assert conn["connected_since"] is not None
            # Each collector counts its own messages and rows, not its connection's: its
            # trade frames (one trade or more each) and its subscribe acknowledgement.
            counts = trade_counts(sink)
            for collector in collectors[:5]:
                stats = collector.get_status()["statistics"]
                assert stats["rows_received"] == counts[collector.symbol] > 0
                assert 0 < stats["messages_received"] <= stats["rows_received"] + 1

            # One pair stops: it is unsubscribed, the other 49 on its connection go on.
            leaving = collectors[0]
            await leaving.stop()
            assert sim.open_connections == 6
            await asyncio.sleep(0.3)
            frozen = trade_counts(sink)[leaving.symbol]
            before = trade_counts(sink)
            await wait_for(
                lambda: all(trade_counts(sink)[s] > before[s] for s in symbols[1:50]),
                within=20,
                what="trades of the other pairs of the first connection",
            )
            assert trade_counts(sink)[leaving.symbol] == frozen
            assert leaving.get_status()["status"] == "stopped"

            # The exchange drops every connection: six reconnects, every pair resubscribed.
            await sim.disconnect_all()
            before = trade_counts(sink)
            await wait_for(
                lambda: all(trade_counts(sink)[s] > before[s] for s in symbols[1:]),
                within=30,
                what="trades of every pair after the reconnect",
            )
            assert sim.counters["connections"] == 12
            reconnected = collectors[1].get_status()["connections"][0]
            assert reconnected["reconnects"] == 1
        finally:
            await stop_all(collectors)
        await wait_for(lambda: sim.open_connections == 0, what="every connection closed by the stop")


async def test_an_unknown_okx_symbol_is_its_own_collectors_error_only() -> None:
    symbols = okx_symbols(3)
    async with simulator(symbols=symbols, rate=300.0, idle_timeout=3600.0) as sim:
        sink = MemorySink()
        collectors = [collector_for(sim, sink, symbol=s) for s in (*symbols, "NOPE-USDT")]
        try:
            await start_all(collectors)
            await wait_for(lambda: len(trade_counts(sink)) == 3, what="trades of the three known pairs")
            await wait_for(lambda: collectors[3].get_status()["status"] == "error", what="the refusal")
            assert sim.counters["connections"] == 1  # all four on one connection
            refused = collectors[3].get_status()["statistics"]["last_error"]
            assert "60018" in refused
            assert "NOPE-USDT" in refused
            for collector in collectors[:3]:
                status = collector.get_status()
                assert status["status"] == "running"
                assert status["statistics"]["errors"] == 0
        finally:
            await stop_all(collectors)


async def test_a_64008_switch_of_a_shared_connection_loses_no_trade_of_any_pair() -> None:
    symbols = okx_symbols(4)
    async with simulator(symbols=symbols, rate=800.0, total=None, idle_timeout=3600.0) as sim:
        sink = MemorySink()
        collectors = [collector_for(sim, sink, symbol=s) for s in symbols]
        try:
            await start_all(collectors)
            await wait_for(lambda: len(trade_counts(sink)) == 4, what="trades of every pair")
            for _ in range(3):
                await asyncio.sleep(0.5)
                await sim.notice_and_close(delay=0.5)
                await wait_for(lambda: sim.open_connections == 1, what="the old connection gone")
            await asyncio.sleep(0.5)
        finally:
            await stop_all(collectors)
        assert sim.counters["notices"] == 3
        assert all(c.get_status()["statistics"]["handovers"] == 3 for c in collectors)
    stored = {(r.symbol, int(r.trade_id)) for r in sink.rows if type(r) is TradeRow}
    for symbol in symbols:
        ids = sorted(i for s, i in stored if s == symbol)
        sent = {int(t.trade_id) for t in sim.sent_trades if t.inst_id == symbol}
        missing = sorted(set(range(ids[0], ids[-1] + 1)) - set(ids))
        assert not missing, f"{symbol}: {len(missing)} trades lost, e.g. {missing[:5]}"
        assert set(ids) <= sent


def binance_collector(sim: BinanceSimulator, sink: Any, symbol: str, **custom: Any) -> BaseDataCollector:
    config = ExchangeCollectorConfig(
        exchange="binance",
        symbol=symbol,
        data_types=[DataType.TRADE, DataType.TICKER],
        custom_params={
            "urls": {"public": sim.base_url},
            "reconnect_delay": 0.05,
            "max_reconnect_delay": 0.2,
            **custom,
        },
    )
    return ExchangeFactory.create_collector(config, sink)


async def test_binance_pairs_share_connections_and_a_refused_subscription_stays_with_its_pair() -> None:
    symbols = tuple(f"C{k:02d}USDT" for k in range(12))
    async with binance(symbols=symbols, rate=600.0, live=True) as sim:
        sink = MemorySink()
        collectors = [binance_collector(sim, sink, s, pairs_per_connection=5) for s in symbols]
        unknown = binance_collector(sim, sink, "NOPEUSDT", pairs_per_connection=5)
        try:
            await start_all([*collectors, unknown])
            await wait_for(lambda: len(trade_counts(sink)) == 12, within=20, what="trades of every pair")
            await wait_for(lambda: unknown.get_status()["status"] == "error", what="the refusal")
            assert "invalid stream" in unknown.get_status()["statistics"]["last_error"]
            assert all(c.get_status()["status"] == "running" for c in collectors)
            assert all(c.get_status()["statistics"]["errors"] == 0 for c in collectors)
            assert sim.counters["connections"] == 3  # 13 pairs, 5 a connection
            # One SUBSCRIBE per connection for all its pairs; the one refused is retried pair
            # by pair (at most 5) to find whose it was; per pair it would have been 13.
            assert 3 < sim.counters["requests"] <= 3 + 5
            assert sorted(connection_ids([*collectors, unknown]).values()) == [3, 5, 5]
            (conn,) = collectors[0].get_status()["connections"]
            assert conn["streams"] == 10  # trade and ticker of 5 pairs
        finally:
            await stop_all([*collectors, unknown])


def test_a_link_takes_a_pair_only_within_the_venues_streams_per_connection() -> None:
    adapter = get_adapter("binance")
    params = parse_params("binance", "X", {"urls": {"public": "wss://stream.binance.com:9443"}})
    link = Link("t", "binance", "wss://x", adapter, params, True, dial=connect, on_empty=lambda _l: None)
    big = Subscription("wss://x", ("{}",), streams=1000)
    assert link.has_room(big, b"a", 1024)
    link.streams = 1000  # as if `big` had joined
    link.members = {}  # (no member object needed for the count)
    assert not link.has_room(Subscription("wss://x", ("{}",), streams=25), b"b", 1024)
    assert link.has_room(Subscription("wss://x", ("{}",), streams=24), b"b", 1024)
    assert link.has_room(Subscription("wss://x", ("{}",), streams=25), b"b", None)  # no venue limit


def test_combined_subscribe_frames_cover_every_pair_in_one_request() -> None:
    binance = get_adapter("binance")
    urls = {"public": "wss://stream.binance.com:9443"}
    subs = [
        binance.subscriptions(s, [DataType.TRADE, DataType.TICKER], {}, urls)[0] for s in ("A1USDT", "B2USDT")
    ]
    combined = binance.combine(subs)
    (frame,) = combined.messages
    request = json.loads(frame)
    assert request["method"] == "SUBSCRIBE"
    assert request["params"] == ["a1usdt@trade", "a1usdt@ticker", "b2usdt@trade", "b2usdt@ticker"]
    # Its own id, none of the pairs' own requests: a refusal of it is retried pair by pair.
    assert combined.request_ids == (str(request["id"]),)
    assert combined.request_ids[0] not in {i for s in subs for i in s.request_ids}

    okx = get_adapter("okx")
    urls = {
        "public": "wss://ws.okx.com:8443/ws/v5/public",
        "business": "wss://ws.okx.com:8443/ws/v5/business",
    }
    subs = [okx.subscriptions(s, [DataType.TRADE], {}, urls)[0] for s in ("BTC-USDT", "ETH-USDT")]
    (frame,) = okx.combine(subs).messages
    assert json.loads(frame) == {
        "op": "subscribe",
        "args": [{"channel": "trades", "instId": "BTC-USDT"}, {"channel": "trades", "instId": "ETH-USDT"}],
    }


async def test_a_quiet_pair_on_a_busy_shared_connection_is_not_resubscribed_again_and_again() -> None:
    # QUIET-USDT is a known instrument that never trades; BTC-USDT streams on the same
    # connection. Silence restarts would resubscribe QUIET-USDT every max_silence (OKX counts
    # subscribe requests: 480 an hour per connection) and bring nothing.
    async with simulator(
        symbols=("BTC-USDT",), extra_symbols=("QUIET-USDT",), rate=200.0, idle_timeout=3600.0
    ) as sim:
        sink = MemorySink()
        busy, quiet = (
            collector_for(sim, sink, symbol=s, max_silence=1.0, health_check_interval=0.2)
            for s in ("BTC-USDT", "QUIET-USDT")
        )
        try:
            await start_all([busy, quiet])
            await wait_for(lambda: len(sink.trades) > 10, what="BTC-USDT trades")
            await asyncio.sleep(3.0)
            subscribes = sim.counters["subscribes"]
            health = quiet.get_health_status()
        finally:
            await stop_all([busy, quiet])
    assert quiet.get_status()["statistics"]["restarts"] == 0
    assert busy.get_status()["statistics"]["restarts"] == 0
    assert subscribes == 2  # one each, at the start
    assert not health["is_healthy"]  # still said: no data, and why nothing is done about it
    assert any("the pair is quiet" in issue for issue in health["issues"]), health["issues"]


async def test_frames_of_a_pair_that_left_a_shared_connection_are_not_the_remaining_pairs() -> None:
    # ETH-USDT leaves the connection it shares with BTC-USDT: its unsubscribe answer, and its
    # trades still in flight, arrive on a connection that now carries BTC-USDT alone. They are
    # not BTC-USDT's: neither counted in its statistics nor handed to its sink.
    symbols = ("BTC-USDT", "ETH-USDT")
    async with simulator(symbols=symbols, rate=1000.0, total=None, idle_timeout=3600.0) as sim:
        btc_sink, eth_sink = MemorySink(), MemorySink()
        btc = collector_for(sim, btc_sink, symbol="BTC-USDT")
        eth = collector_for(sim, eth_sink, symbol="ETH-USDT")
        try:
            await start_all([btc, eth])
            await wait_for(lambda: len(btc_sink.trades) > 20 and len(eth_sink.trades) > 20, what="both")
            await eth.stop()
            before = len(btc_sink.trades)
            await wait_for(lambda: len(btc_sink.trades) > before + 100, what="BTC-USDT trades after")
        finally:
            await stop_all([btc, eth])
    assert sim.counters["connections"] == 1
    assert {r.symbol for r in btc_sink.rows} == {"BTC-USDT"}
    stats = btc.get_status()["statistics"]
    # Every frame BTC-USDT counted is one of its trades (one per frame), or its subscribe answer.
    assert stats["messages_received"] == len(btc_sink.trades) + 1
