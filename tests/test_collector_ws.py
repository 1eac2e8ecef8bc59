"""The WebSocket collector against the OKX simulator on 127.0.0.1 (rows into memory)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest

from ingest.collector import BaseDataCollector, CollectorManager, ExchangeFactory
from ingest.errors import ConfigError
from ingest.model import DataType, ExchangeCollectorConfig, MarketDataPoint
from ingest.simulator import OkxSimulator
from tests.collector_support import MemorySink, collector_for, trade_keys, wait_for
from tests.collector_support import simulator as make_simulator

QUIET = "ETH-USDT"  # accepted by the simulator, never streamed: a silent subscription


def simulator(**settings: Any) -> OkxSimulator:
    """The shared simulator, also accepting subscriptions to QUIET."""
    return make_simulator(extra_symbols=(QUIET,), **settings)


async def test_every_trade_sent_is_put_value_for_value() -> None:
    async with simulator(total=500) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink, store_raw_data=True)
        assert await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) >= 500, what="500 trades")
        finally:
            await collector.stop()
    assert trade_keys(sink.trades) == [tuple(t) for t in sim.sent_trades]
    assert all(Decimal(t.price) > 0 for t in sink.trades)
    # store_raw_data: one raw market_data row per trade, carrying the same trade id.
    assert [m.data_type for m in sink.market] == [DataType.TRADE] * 500
    stats = collector.get_status()["statistics"]
    assert stats["rows_received"] == 1000
    assert stats["messages_received"] == stats["messages_processed"] == 501  # + subscribe ack
    assert stats["errors"] == 0


async def test_dropped_connection_reconnects_and_resubscribes_without_gap() -> None:
    async with simulator(total=3000, rate=3000.0, resend_on_resubscribe=1500) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink)
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) >= 600, what="first trades")
            # Frames in flight when the TCP connection is reset are lost like on a real
            # network; everything sent from the reconnect on must arrive.
            cut = len(sim.sent_trades)
            assert await sim.disconnect_all() == 1
            await wait_for(lambda: sim.counters["subscribes"] == 2, what="resubscribe")
            await wait_for(lambda: len({t.trade_id for t in sim.sent_trades}) == 3000, within=15)
            after = set(sim.sent_trades[cut:])
            await wait_for(
                lambda: after <= set(trade_keys(sink.trades)),
                within=15,
                what="every trade sent after the reconnect",
            )
        finally:
            await collector.stop()
    assert sim.counters["connections"] == 2
    assert set(trade_keys(sink.trades)) <= set(sim.sent_trades)
    assert collector.get_status()["statistics"]["errors"] == 0


async def test_server_closing_cleanly_loses_nothing_and_duplicates_nothing() -> None:
    async with simulator(total=3000, rate=3000.0) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink)
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) >= 600, what="first trades")
            assert await sim.disconnect_all(abrupt=False) == 1  # close 1012 after flushing
            await wait_for(lambda: len(sink.trades) >= 3000, within=15, what="all trades")
        finally:
            await collector.stop()
    assert sim.counters["subscribes"] == 2
    assert trade_keys(sink.trades) == [tuple(t) for t in sim.sent_trades]
    assert len(sim.sent_trades) == 3000


async def test_malformed_frames_are_dead_lettered_and_collection_goes_on() -> None:
    async with simulator(total=400, rate=400.0) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink)
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) >= 50, what="first trades")
            assert await sim.inject() == 4
            await wait_for(lambda: len(sink.trades) >= 400, what="all trades")
        finally:
            await collector.stop()
    assert len(sink.dead) == 4
    assert all(d.exchange == "okx" and d.reason for d in sink.dead)
    reasons = " | ".join(d.reason for d in sink.dead)
    assert "invalid JSON" in reasons
    assert "nosuch" in reasons
    from ingest.simulator.wire import MALFORMED_FRAMES

    assert [d.raw_text for d in sink.dead] == list(MALFORMED_FRAMES)
    assert trade_keys(sink.trades) == [tuple(t) for t in sim.sent_trades]
    status = collector.get_status()
    assert status["statistics"]["errors"] == 4
    assert status["statistics"]["last_error"].startswith("unparsable frame")


async def test_silent_connection_is_pinged_and_pong_keeps_it() -> None:
    async with simulator(total=0) as sim:
        collector = collector_for(
            sim, MemorySink(), symbol=QUIET, ping_interval=0.1, pong_timeout=0.5, max_silence=60.0
        )
        await collector.start()
        try:
            await wait_for(lambda: sim.counters["pings"] >= 3, what="three pings")
            health = collector.get_health_status()
        finally:
            await collector.stop()
    assert sim.counters["connections"] == 1
    assert health["last_heartbeat"] is not None
    assert health["last_data_received"] is None


async def test_missing_pong_drops_and_reopens_the_connection() -> None:
    async with simulator(total=0) as sim:
        sim.ignore_pings = True
        collector = collector_for(sim, MemorySink(), symbol=QUIET, ping_interval=0.1, pong_timeout=0.2)
        await collector.start()
        try:
            await wait_for(lambda: sim.counters["subscribes"] >= 2, what="reconnect")
        finally:
            await collector.stop()
    assert sim.counters["connections"] >= 2
    assert sim.counters["pings"] >= 1


async def test_idle_close_4004_reconnects() -> None:
    async with simulator(total=0, idle_timeout=0.3) as sim:
        collector = collector_for(sim, MemorySink(), symbol=QUIET, ping_interval=30.0)
        await collector.start()
        try:
            await wait_for(lambda: sim.counters["subscribes"] >= 2, what="resubscribe")
        finally:
            await collector.stop()
    assert sim.counters["idle_closes"] >= 1
    assert sim.counters["connections"] >= 2


async def test_pings_keep_a_streaming_connection_open_on_an_idle_closing_server() -> None:
    # The simulator closes connections whose client sent nothing for idle_timeout, even
    # while it streams data to them: pings must go out although data keeps arriving.
    async with simulator(total=1500, rate=1000.0, idle_timeout=0.4) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink, ping_interval=0.15, pong_timeout=1.0)
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) == 1500, within=15, what="all trades")
        finally:
            await collector.stop()
    assert sim.counters["idle_closes"] == 0
    assert sim.counters["connections"] == 1
    assert sim.counters["pings"] >= 5
    assert trade_keys(sink.trades) == [tuple(t) for t in sim.sent_trades]


async def test_reconnect_notice_reconnects_before_the_server_closes() -> None:
    async with simulator(total=0) as sim:
        collector = collector_for(sim, MemorySink(), symbol=QUIET)
        await collector.start()
        try:
            await wait_for(lambda: sim.counters["subscribes"] == 1, what="subscribe")
            closing = asyncio.create_task(sim.notice_and_close(delay=2.0))
            await wait_for(lambda: sim.counters["subscribes"] == 2, within=1.5, what="proactive reconnect")
            await closing
        finally:
            await collector.stop()
    assert sim.counters["notices"] == 1


async def test_exchange_error_sets_status_error() -> None:
    async with simulator(total=0) as sim:
        collector = collector_for(sim, MemorySink(), symbol="NOPE-USDT")
        await collector.start()
        try:
            await wait_for(lambda: collector.get_status()["status"] == "error", what="error")
        finally:
            await collector.stop()
    status = collector.get_status()
    assert "60018" in status["statistics"]["last_error"]
    health = collector.get_health_status()
    assert not health["is_healthy"]
    assert any("error state" in issue for issue in health["issues"])


async def test_silence_beyond_max_silence_restarts() -> None:
    async with simulator(total=0) as sim:
        collector = collector_for(sim, MemorySink(), symbol=QUIET, max_silence=0.3, health_check_interval=0.1)
        await collector.start()
        try:
            await wait_for(lambda: collector.get_status()["statistics"]["restarts"] >= 1, what="restart")
            await wait_for(lambda: sim.counters["subscribes"] >= 2, what="resubscribe")
        finally:
            await collector.stop()
    assert collector.get_status()["statistics"]["last_restart_time"] is not None


async def test_gives_up_after_max_attempts_without_auto_restart() -> None:
    async with simulator(total=0) as sim:
        port = sim.port
    urls = {"public": f"ws://127.0.0.1:{port}/ws/v5/public"}
    config = ExchangeCollectorConfig(
        "okx",
        "BTC-USDT",
        [DataType.TRADE],
        auto_restart=False,
        custom_params={
            "urls": urls,
            "reconnect_delay": 0.01,
            "max_reconnect_delay": 0.02,
            "max_reconnect_attempts": 3,
        },
    )
    collector = ExchangeFactory.create_collector(config, MemorySink())
    await collector.start()
    try:
        await wait_for(lambda: collector.get_status()["status"] == "error", what="give up")
    finally:
        await collector.stop()
    status = collector.get_status()
    assert status["statistics"]["reconnect_attempts"] == 2
    assert "giving up after 3" in status["statistics"]["last_error"]


async def test_slow_and_raising_callbacks_do_not_stall_storage() -> None:
    seen: list[MarketDataPoint] = []
    slow_calls = 0

    async def slow(point: MarketDataPoint) -> None:
        nonlocal slow_calls
        slow_calls += 1
        await asyncio.sleep(10)

    def broken(point: MarketDataPoint) -> None:
        raise RuntimeError("callback bug")

    async with simulator(total=2000) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink, buffer_size=50, callback_timeout=0.2)
        collector.add_data_callback(DataType.TRADE, seen.append)
        collector.add_data_callback(DataType.TRADE, broken)
        collector.add_data_callback(DataType.TRADE, slow)
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) == 2000, within=5, what="all trades stored")
            await asyncio.sleep(0.5)
            stats = collector.get_status()["statistics"]["callbacks"]
        finally:
            await collector.stop()
    assert trade_keys(sink.trades) == [tuple(t) for t in sim.sent_trades]
    assert stats["dropped"] > 0
    assert stats["errors"] >= 2
    assert slow_calls >= 2
    first = sim.sent_trades[0]
    assert seen[0].exchange == "okx"
    assert seen[0].symbol == "BTC-USDT"
    assert seen[0].data_type is DataType.TRADE
    assert seen[0].data == {
        "trade_id": first.trade_id,
        "price": first.price,
        "size": first.size,
        "side": first.side,
    }
    assert int(seen[0].timestamp.timestamp() * 1000) == first.ts_ms
    assert seen[0].timestamp.utcoffset() is not None
    # Callbacks got a prefix of the stream, in order, minus what was dropped for them.
    ids = [p.data["trade_id"] for p in seen]
    assert ids == sorted(ids, key=lambda i: [t.trade_id for t in sim.sent_trades].index(i))


async def test_status_and_health_shapes() -> None:
    async with simulator(total=10) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink, max_silence=42.0)
        stopped = collector.get_status()
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) == 10, what="trades")
            running = collector.get_status()
            healthy = collector.get_health_status()
            sink.queue_rows = 95
            pressured = collector.get_health_status()
        finally:
            await collector.stop()
        final = collector.get_status()
    assert set(running) >= {
        "exchange",
        "status",
        "should_be_running",
        "symbols",
        "data_types",
        "auto_restart",
        "health",
        "statistics",
    }
    assert set(running["health"]) == {"time_since_heartbeat", "time_since_data", "max_silence_duration"}
    assert set(running["statistics"]) >= {
        "messages_received",
        "messages_processed",
        "errors",
        "restarts",
        "uptime_seconds",
        "reconnect_attempts",
        "last_message_time",
        "connection_uptime",
        "last_error",
        "last_restart_time",
    }
    assert set(healthy) == {
        "is_healthy",
        "issues",
        "status",
        "last_heartbeat",
        "last_data_received",
        "should_be_running",
        "is_running",
    }
    assert (stopped["status"], stopped["should_be_running"]) == ("stopped", False)
    assert (running["status"], running["should_be_running"]) == ("running", True)
    assert (final["status"], final["should_be_running"]) == ("stopped", False)
    assert running["exchange"] == "okx"
    assert running["symbols"] == ["BTC-USDT"]
    assert running["data_types"] == ["trade"]
    assert running["auto_restart"] is True
    assert running["health"]["max_silence_duration"] == 42.0
    assert running["statistics"]["messages_received"] == 11
    assert running["statistics"]["connection_uptime"] > 0
    assert healthy == {**healthy, "is_healthy": True, "issues": [], "is_running": True}
    assert not pressured["is_healthy"]
    assert pressured["issues"] == ["writer backpressure: queue 95/100 rows (95% full)"]


def test_factory_and_config_validation() -> None:
    assert ExchangeFactory.get_supported_exchanges() == ["binance", "okx"]
    urls = {
        "public": "wss://ws.example.test/ws/v5/public",
        "business": "wss://ws.example.test/ws/v5/business",
    }
    good = ExchangeCollectorConfig("okx", "BTC-USDT", [DataType.TRADE], custom_params={"urls": urls})
    assert ExchangeFactory.validate_config(good)
    with pytest.raises(ConfigError, match="unsupported exchange 'kraken'"):
        ExchangeFactory.validate_config(ExchangeCollectorConfig("kraken", "X", [DataType.TRADE]))
    with pytest.raises(ConfigError, match="wss://"):
        ExchangeFactory.create_collector(
            ExchangeCollectorConfig(
                "okx",
                "BTC-USDT",
                [DataType.TRADE],
                custom_params={"urls": {"public": "ws://example.com/ws/v5/public"}},
            )
        )
    with pytest.raises(ConfigError, match="unknown custom_params"):
        ExchangeFactory.create_collector(
            ExchangeCollectorConfig("okx", "BTC-USDT", [DataType.TRADE], custom_params={"pingInterval": 3})
        )
    for linger in (-1, 0.2, True, "0.005"):
        with pytest.raises(ConfigError, match=r"custom_params\.receive_linger: expected "):
            ExchangeFactory.create_collector(
                ExchangeCollectorConfig(
                    "okx",
                    "BTC-USDT",
                    [DataType.TRADE],
                    custom_params={"urls": urls, "receive_linger": linger},
                )
            )
    lingering = ExchangeFactory.create_collector(
        ExchangeCollectorConfig(
            "okx", "BTC-USDT", [DataType.TRADE], custom_params={"urls": urls, "receive_linger": 0}
        )
    )
    assert isinstance(lingering, BaseDataCollector)
    assert lingering.params.receive_linger == 0.0
    with pytest.raises(ConfigError, match=r"custom_params\.ping_interval: expected greater than 0, found 0"):
        ExchangeFactory.create_collector(
            ExchangeCollectorConfig("okx", "BTC-USDT", [DataType.TRADE], custom_params={"ping_interval": 0})
        )
    made = ExchangeFactory.create_multiple_collectors(
        [
            good,
            ExchangeCollectorConfig(
                "okx", "ETH-USDT", [DataType.TRADE, DataType.CANDLE], custom_params={"urls": urls}
            ),
        ]
    )
    assert [c.name for c in made] == ["okx-BTC-USDT", "okx-ETH-USDT"]
    # No I/O when building: a collector only connects on start().
    assert [c.get_status()["status"] for c in made] == ["stopped", "stopped"]


async def test_manager_runs_collectors_and_restart_resubscribes() -> None:
    async with simulator(symbols=("BTC-USDT", "ETH-USDT"), total=200) as sim:
        sinks = {"BTC-USDT": MemorySink(), "ETH-USDT": MemorySink()}
        manager = CollectorManager()
        for symbol, sink in sinks.items():
            manager.add_collector(collector_for(sim, sink, symbol=symbol))
        with pytest.raises(ConfigError, match="two collectors are named 'okx-BTC-USDT'"):
            manager.add_collector(collector_for(sim, MemorySink(), symbol="BTC-USDT"))
        assert manager.list_collectors() == ["okx-BTC-USDT", "okx-ETH-USDT"]
        assert await manager.start()
        try:
            await wait_for(lambda: all(len(s.trades) == 100 for s in sinks.values()), what="trades")
            status = manager.get_status()
            first = manager.collectors()[0]
            assert await first.restart()
            await wait_for(lambda: sim.counters["subscribes"] == 3, what="resubscribe after restart")
        finally:
            await manager.stop()
        after = manager.get_status()
    assert status["total_collectors"] == 2
    assert status["running_collectors"] == 2
    assert status["collectors"]["okx-ETH-USDT"]["statistics"]["rows_received"] == 100
    assert after["running_collectors"] == 0
    assert after["collectors"]["okx-BTC-USDT"]["statistics"]["restarts"] == 1
    for symbol, sink in sinks.items():
        assert trade_keys(sink.trades) == [tuple(t) for t in sim.sent_trades if t.inst_id == symbol]


async def test_frames_after_a_reconnect_notice_in_the_same_read_are_kept() -> None:
    """Trades received in the same batch as notice 64008, after it, are stored too."""
    from websockets.asyncio.server import ServerConnection, serve

    from ingest.simulator import wire

    def trade(trade_id: str) -> bytes:
        ts = "1786538760218"
        item = {"instId": "BTC-USDT", "tradeId": trade_id, "px": "1.5", "sz": "2", "side": "buy", "ts": ts}
        return orjson.dumps({"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [item]})

    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await ws.recv()  # the subscribe
        if connections == 1:
            burst = [trade("1"), wire.notice("64008", "soon", "c1").encode(), trade("2"), trade("3")]
            # One write: the client reads all four frames at once.
            ws.transport.write(b"".join(wire.text_frame(frame) for frame in burst))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        sink = MemorySink()
        urls = {"public": f"ws://127.0.0.1:{port}/ws/v5/public"}
        collector = ExchangeFactory.create_collector(
            ExchangeCollectorConfig("okx", "BTC-USDT", [DataType.TRADE], custom_params={"urls": urls}), sink
        )
        await collector.start()
        try:
            await wait_for(lambda: connections == 2, what="proactive reconnect")
            await wait_for(lambda: len(sink.trades) == 3, what="all trades")
        finally:
            await collector.stop()
    assert [t.trade_id for t in sink.trades] == ["1", "2", "3"]
