"""Bad input through a real collector and the OKX simulator on 127.0.0.1: a bad trade is
dead-lettered alone, dead letters are capped per hour and counted, a message over
max_message_bytes is counted and its first bytes kept."""

from __future__ import annotations

import orjson

from ingest.collector.from_config import collector_configs
from ingest.collector.params import parse_params
from ingest.config import parse_exchange_file
from ingest.dead_letters import HOUR, MAX_RAW_BYTES, DeadLetterCap, dead_letter
from tests.collector_support import MemorySink, collector_for, simulator, trade_keys, wait_for

ARG = {"channel": "trades", "instId": "BTC-USDT"}


def _trade(trade_id: str, **changes: str) -> dict[str, str]:
    item = {"instId": "BTC-USDT", "tradeId": trade_id, "px": "64000.1", "sz": "0.5", "side": "buy"}
    return {**item, "ts": "1786538760218", **changes}


def _frame(*items: dict[str, str]) -> str:
    return orjson.dumps({"arg": ARG, "data": list(items)}).decode()


async def test_a_bad_trade_is_dead_lettered_alone_and_its_neighbours_are_stored() -> None:
    bad = _trade("b2", px="1e309")
    frame = _frame(_trade("b1"), bad, _trade("b3", ts="1786538760"), _trade("b4"))
    async with simulator(total=200, rate=400.0) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink)
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) >= 20, what="first trades")
            assert await sim.inject((frame,)) == 1
            await wait_for(lambda: len(sink.trades) >= 202, what="all trades")
        finally:
            await collector.stop()
    assert [t.trade_id for t in sink.trades if t.trade_id.startswith("b")] == ["b1", "b4"]
    assert [(orjson.loads(d.raw_text)["data"], d.reason) for d in sink.dead] == [
        (
            [bad],
            "trades: field 'px' must be a positive plain decimal string (at most 20.20 digits), got '1e309'",
        ),
        (
            [_trade("b3", ts="1786538760")],
            "trades: field 'ts' must be milliseconds since the epoch as a string, from 2010-01-01 "
            "to 2100-01-01, got '1786538760'",
        ),
    ]
    stats = collector.get_status()["statistics"]
    assert (stats["dead_letters"], stats["dead_letters_dropped"], stats["errors"]) == (2, 0, 2)
    # The frame itself was processed: only its two bad trades were refused.
    assert stats["messages_received"] == stats["messages_processed"]


async def test_dead_letters_over_the_hourly_cap_are_counted_not_kept() -> None:
    frames = tuple(_frame(_trade(f"x{i}", side="long")) for i in range(10)) + ("not json",) * 5
    async with simulator(total=100, rate=400.0) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink, dead_letters_per_hour=4)
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) >= 10, what="first trades")
            assert await sim.inject(frames) == 15
            await wait_for(lambda: collector.stats.errors == 15, what="every refusal counted")
            await wait_for(lambda: len(sink.trades) >= 100, what="all trades")
        finally:
            await collector.stop()
    assert [orjson.loads(d.raw_text)["data"][0]["tradeId"] for d in sink.dead] == ["x0", "x1", "x2", "x3"]
    stats = collector.get_status()["statistics"]
    assert (stats["dead_letters"], stats["dead_letters_dropped"]) == (4, 11)
    assert stats["messages_received"] - stats["messages_processed"] == 5  # the whole frames refused
    assert trade_keys(sink.trades) == [tuple(t) for t in sim.sent_trades]


async def test_a_message_over_max_message_bytes_is_counted_and_its_first_bytes_kept() -> None:
    big = _frame(*(_trade(f"big{i}") for i in range(100)))  # ~12 KB
    assert len(big) > 8192
    async with simulator(total=1000, rate=1000.0, resend_on_resubscribe=1000) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink, max_message_bytes=8192)
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) >= 50, what="first trades")
            assert await sim.inject((big,)) == 1
            await wait_for(lambda: sim.counters["connections"] == 2, what="the reconnect")
            await wait_for(lambda: len({t.trade_id for t in sink.trades}) == 1000, within=15, what="all")
        finally:
            await collector.stop()
    (letter,) = sink.dead
    assert letter.reason.startswith("message over max_message_bytes (8192): ")
    assert "connection closed with 1009 and reopened" in letter.reason
    assert len(letter.raw_text) > 100
    assert big.startswith(letter.raw_text)
    stats = collector.get_status()["statistics"]
    assert (stats["messages_too_big"], stats["dead_letters"]) == (1, 1)
    assert not any(t.trade_id.startswith("big") for t in sink.trades)
    assert {tuple(t) for t in trade_keys(sink.trades)} == {tuple(t) for t in sim.sent_trades}


def test_cap_opens_a_new_window_an_hour_after_the_first_letter() -> None:
    cap = DeadLetterCap("c", per_hour=2)
    assert [cap.admit(t) for t in (0.0, 1.0, 2.0, 3599.0)] == [True, True, False, False]
    assert [cap.admit(t) for t in (3600.0, 3601.0, 3602.0)] == [True, True, False]
    assert (cap.kept, cap.dropped) == (4, 3)
    assert [DeadLetterCap("z", per_hour=0).admit(t) for t in (0.0, HOUR)] == [False, False]


def test_a_long_refused_frame_keeps_its_first_bytes_and_says_so() -> None:
    raw = b"x" * (MAX_RAW_BYTES + 10)
    letter = dead_letter("okx", raw, "invalid JSON")
    assert letter.raw_text == "x" * MAX_RAW_BYTES
    assert letter.reason == f"invalid JSON (first {MAX_RAW_BYTES} of {MAX_RAW_BYTES + 10} bytes kept)"
    assert dead_letter("okx", b"\xff{", "invalid JSON").raw_text == "\ufffd{"
    assert dead_letter("okx", b"{\x00}", "invalid JSON").raw_text == "{\\u0000}"  # text can't hold NUL


def test_config_keys_reach_the_collector_params() -> None:
    exchange = parse_exchange_file(
        {
            "exchange": "okx",
            "connection": {"public_ws_url": "ws://127.0.0.1:1/ws/v5/public", "max_message_bytes": 65536},
            "data_collection": {"dead_letters_per_hour": 0},
            "trading_pairs": [{"symbol": "BTC-USDT", "data_types": ["trade"]}],
        }
    )
    (config,) = collector_configs(exchange)
    params = parse_params("okx", "BTC-USDT", config.custom_params)
    assert (params.max_message_bytes, params.dead_letters_per_hour) == (65536, 0)
    defaults = parse_params("okx", "BTC-USDT", {})
    assert (defaults.max_message_bytes, defaults.dead_letters_per_hour) == (2**20, 1000)
