"""TLS stays verified: a wss:// server with a self-signed certificate is refused."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from ingest.collector import ExchangeFactory
from ingest.collector.link_member import backoff
from ingest.collector.websocket_collector import WebSocketCollector
from ingest.model import DataType, ExchangeCollectorConfig
from tests.collector_support import MemorySink, wait_for
from tests.tls_support import tls_contexts


async def test_self_signed_certificate_is_refused(tmp_path: Path) -> None:
    accepted = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal accepted
        accepted += 1
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ssl=tls_contexts(tmp_path)[0]) as server:
        port = server.sockets[0].getsockname()[1]
        config = ExchangeCollectorConfig(
            "okx",
            "BTC-USDT",
            [DataType.TRADE],
            custom_params={
                "urls": {"public": f"wss://127.0.0.1:{port}/ws/v5/public"},
                "reconnect_delay": 0.05,
                "max_reconnect_delay": 0.1,
            },
        )
        collector = ExchangeFactory.create_collector(config, MemorySink())
        assert isinstance(collector, WebSocketCollector)
        await collector.start()
        try:
            await wait_for(lambda: collector.stats.errors >= 2, what="refused handshakes")
        finally:
            await collector.stop()
    assert accepted == 0
    assert "CERTIFICATE_VERIFY_FAILED" in str(collector.get_status()["statistics"]["last_error"])


def test_backoff_is_jittered_exponential_and_capped() -> None:
    config = ExchangeCollectorConfig(
        "okx",
        "BTC-USDT",
        [DataType.TRADE],
        custom_params={
            "urls": {"public": "wss://ws.example.test/ws/v5/public"},
            "reconnect_delay": 1.0,
            "max_reconnect_delay": 10.0,
        },
    )
    collector = ExchangeFactory.create_collector(config, MemorySink())
    assert isinstance(collector, WebSocketCollector)
    for failures, nominal in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (40, 10.0)):
        delays = [backoff(failures, collector.params) for _ in range(200)]
        assert all(nominal / 2 <= d <= nominal for d in delays), (failures, min(delays), max(delays))
        assert max(delays) - min(delays) > nominal / 10  # jittered, not constant
