"""The venue's connection rules the generic collector follows (ingest.exchanges.venue): its
keepalive style, the pacing of what it sends, and the age at which a connection is replaced.
Real websockets servers on 127.0.0.1: a bare one that records what arrives, and the OKX
simulator."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from ingest.collector.link_pool import pool_for_loop
from ingest.collector.params import parse_params
from ingest.collector.websocket_collector import WebSocketCollector
from ingest.exchanges.base import Keepalive, Subscription
from ingest.exchanges.okx import OkxAdapter
from ingest.model import DataType, ExchangeCollectorConfig
from tests.collector_support import MemorySink, collector_for, simulator, wait_for


class ProtocolPingAdapter(OkxAdapter):
    """OKX's parser with a venue rule of the Binance kind: WebSocket ping frames, no text ping."""

    keepalive = Keepalive.PROTOCOL_PING
    ping_text = ""


class Recorder:
    """A WebSocket server (websockets' Sans-I/O ServerProtocol over asyncio streams) that
    never sends a message: it keeps each text frame and each ping frame with its arrival
    time, and answers pings with pongs as the protocol does."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, str]] = []
        self.pings: list[float] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        protocol = ServerProtocol()
        while data := await reader.read(65536):
            protocol.receive_data(data)
            for event in protocol.events_received():
                if isinstance(event, Request):
                    protocol.send_response(protocol.accept(event))
                elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    self.frames.append((time.monotonic(), event.data.decode()))
                elif isinstance(event, Frame) and event.opcode is Opcode.PING:
                    self.pings.append(time.monotonic())
            for chunk in protocol.data_to_send():
                if chunk:
                    writer.write(chunk)
            await writer.drain()
        writer.close()


@asynccontextmanager
async def recording_server() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()
    server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        yield recorder, f"ws://127.0.0.1:{port}/ws/v5/public"


def bare_collector(url: str, messages: tuple[str, ...], **custom: Any) -> WebSocketCollector:
    config = ExchangeCollectorConfig(exchange="okx", symbol="BTC-USDT", data_types=[DataType.TRADE])
    params = parse_params("okx", "BTC-USDT", {"urls": {"public": url, "business": url}, **custom})
    collector = WebSocketCollector(config, params, ProtocolPingAdapter(), MemorySink())
    collector.subscriptions = [Subscription(url, messages)]
    return collector


async def test_protocol_ping_keeps_a_silent_connection_open_without_text_pings() -> None:
    # The server sends nothing for 2 s, ten ping intervals: only its pongs to our ping
    # frames prove the connection alive. A text ping would get no answer: dropped after 0.2 s.
    async with recording_server() as (recorder, url):
        collector = bare_collector(url, ('{"op": "subscribe"}',), ping_interval=0.2, pong_timeout=0.2)
        await collector.start()
        try:
            await asyncio.sleep(2.0)
            stats = collector.get_status()["statistics"]
        finally:
            await collector.stop()
    assert recorder.connections == 1, stats.get("last_error")
    assert [text for _at, text in recorder.frames] == ['{"op": "subscribe"}']
    assert len(recorder.pings) >= 5  # one per interval of silence: 2 s / (0.2 s + scheduling)


async def test_subscribe_frames_are_paced_to_the_venues_message_rate() -> None:
    messages = tuple(f'{{"id": {n}}}' for n in range(6))
    async with recording_server() as (recorder, url):
        collector = bare_collector(url, messages, max_messages_per_second=5.0, ping_interval=30.0)
        await collector.start()
        try:
            await wait_for(lambda: len(recorder.frames) == len(messages), what="every subscribe frame")
        finally:
            await collector.stop()
    assert [text for _at, text in recorder.frames] == list(messages)
    times = [at for at, _text in recorder.frames]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # 0.2 s apart, less what the server's clock saw of jitter on loopback
    assert min(gaps) >= 0.18, gaps


async def test_a_connection_older_than_max_connection_age_is_replaced_make_before_break() -> None:
    async with simulator(total=None, rate=1000.0, idle_timeout=3600.0) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink, max_connection_age=1.0)
        await collector.start()
        try:
            await wait_for(
                lambda: collector.get_status()["statistics"]["handovers"] >= 3,
                within=20,
                what="three replacements of an aged connection",
            )
            stats = collector.get_status()["statistics"]
        finally:
            await collector.stop()
    assert stats["handover_failures"] == 0
    assert stats["restarts"] == 0
    assert sim.counters["subscribes"] >= 4
    # Make before break: the tape read across the switches has no hole (the writer drops
    # the overlap's duplicates; this sink keeps them).
    ids = sorted({int(t.trade_id) for t in sink.trades})
    assert ids == list(range(ids[0], ids[-1] + 1))


async def test_connection_attempts_keep_to_the_venues_connect_rate_across_collectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ten collectors of one venue host start at once, a connection each; the venue allows
    # 3 attempts a second.
    attempts: list[float] = []
    pool = pool_for_loop()
    dial = pool.dial

    async def recording(*args: Any, **kwargs: Any) -> Any:
        attempts.append(time.monotonic())
        return await dial(*args, **kwargs)

    pool.dial = recording
    symbols = tuple(f"SYM{n}-USDT" for n in range(10))
    async with simulator(symbols=symbols, rate=100.0, idle_timeout=3600.0) as sim:
        collectors = [
            collector_for(
                sim,
                MemorySink(),
                symbol=s,
                connect_rate={"attempts": 3, "seconds": 1.0},
                pairs_per_connection=1,  # one connection each: ten attempts to pace
            )
            for s in symbols
        ]
        try:
            await asyncio.gather(*(c.start() for c in collectors))
            await wait_for(
                lambda: all(c.get_status()["statistics"]["messages_received"] > 0 for c in collectors),
                within=20,
                what="every collector receiving",
            )
        finally:
            await asyncio.gather(*(c.stop() for c in collectors))
    assert len(attempts) == 10
    attempts.sort()
    windows = [later - earlier for earlier, later in zip(attempts, attempts[3:], strict=False)]
    assert min(windows) >= 0.99, windows  # never 4 attempts within a second
    assert attempts[-1] - attempts[0] < 4.0  # ...and no slower than the rate allows


async def test_a_stop_while_waiting_for_the_connect_rate_is_prompt_and_quiet() -> None:
    async with simulator(rate=100.0, idle_timeout=3600.0) as sim:
        # An attempt budget of 1 per hour, spent by the first collector: the second waits.
        rate = {"attempts": 1, "seconds": 3600.0}
        first = collector_for(sim, MemorySink(), connect_rate=rate)
        second = collector_for(sim, MemorySink(), connect_rate=rate, name="okx-BTC-USDT-2")
        await first.start()
        await second.start()
        try:
            await asyncio.sleep(0.5)
            assert second.get_status()["statistics"]["messages_received"] == 0
            began = time.monotonic()
            await second.stop()
            took = time.monotonic() - began
        finally:
            await first.stop()
    assert took < 2.0
    assert second.get_status()["statistics"]["errors"] == 0


async def test_waiting_for_the_connect_rate_is_not_silence(caplog: pytest.LogCaptureFixture) -> None:
    # The second collector waits for the gate far longer than max_silence: the health task
    # must not restart it (a restart only queues it again at the back).
    async with simulator(rate=100.0, idle_timeout=3600.0) as sim:
        rate = {"attempts": 1, "seconds": 3600.0}
        first = collector_for(
            sim, MemorySink(), connect_rate=rate, max_silence=1.0, health_check_interval=0.2
        )
        second = collector_for(
            sim,
            MemorySink(),
            connect_rate=rate,
            name="okx-BTC-USDT-2",
            max_silence=1.0,
            health_check_interval=0.2,
        )
        await first.start()
        await wait_for(
            lambda: first.get_status()["statistics"]["messages_received"] > 0, what="the first one"
        )
        await second.start()
        try:
            await asyncio.sleep(3.0)
            status = second.get_status()
            health = second.get_health_status()
        finally:
            await second.stop()
            await first.stop()
    assert status["statistics"]["restarts"] == 0
    assert any("for the venue's connect rate" in issue for issue in health["issues"]), health
    assert any("not restarting: waiting" in r.getMessage() for r in caplog.records)
