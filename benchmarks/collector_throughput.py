"""Measure the collector's hot loop: frames/s from a loopback socket into a sink.

A minimal WebSocket server in a child process (hand-written handshake, pre-encoded
frames written in large chunks) streams OKX trade frames, one trade per frame, so the
server is never the bottleneck. The collector parses them with the real OKX adapter and
puts rows into a sink that only counts (or, with --writer-like, into an asyncio queue
drained by another task, roughly what an in-process writer costs).

    .venv/bin/python benchmarks/collector_throughput.py --frames 300000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import multiprocessing
import socket
import time
from collections import deque
from collections.abc import Sequence

from ingest.collector import ExchangeFactory
from ingest.model import DataType, ExchangeCollectorConfig
from ingest.rows import Row

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x81, n])
    elif n < 65536:
        head = bytes([0x81, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 127]) + n.to_bytes(8, "big")
    return head + payload


def _trade(i: int) -> bytes:
    return (
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        b'"tradeId":"' + str(i).encode() + b'","px":"42219.9","sz":"0.12060306","side":"buy",'
        b'"ts":"' + str(1700000000000 + i).encode() + b'","count":"1"}]}'
    )


def _serve(sock: socket.socket, frames: int) -> None:
    # OSError: the client went away, the measurement is over.
    with contextlib.suppress(OSError):
        _stream(sock, frames)


def _stream(sock: socket.socket, frames: int) -> None:
    conn, _ = sock.accept()
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 - RFC 6455
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    chunk = 2000
    for start in range(0, frames, chunk):
        conn.sendall(b"".join(_frame(_trade(i)) for i in range(start, min(frames, start + chunk))))
    time.sleep(30)
    conn.close()


class CountingSink:
    def __init__(self) -> None:
        self.rows = 0

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None:
        self.rows += len(rows)


class QueueSink:
    """A bounded deque plus a consumer task: what handing rows to a writer costs."""

    def __init__(self) -> None:
        self.rows = 0
        self._queue: deque[Sequence[Row]] = deque()
        self._event = asyncio.Event()

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None:
        self._queue.append(rows)
        self._event.set()

    async def drain(self) -> None:
        while True:
            await self._event.wait()
            self._event.clear()
            while self._queue:
                self.rows += len(self._queue.popleft())


async def _measure(port: int, frames: int, queue_sink: bool) -> None:
    sink: CountingSink | QueueSink = QueueSink() if queue_sink else CountingSink()
    config = ExchangeCollectorConfig(
        exchange="okx",
        symbol="BTC-USDT",
        data_types=[DataType.TRADE],
        store_raw_data=True,
        custom_params={
            "urls": {"public": f"ws://127.0.0.1:{port}/ws/v5/public"},
            "max_silence": 300.0,
            "ping_interval": 300.0,
        },
    )
    collector = ExchangeFactory.create_collector(config, sink)
    drain = asyncio.create_task(sink.drain()) if isinstance(sink, QueueSink) else None
    await collector.start()
    # Polling keeps the sinks free of test hooks; 1-10 ms granularity is fine here.
    while collector.stats.messages_received == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    began, cpu_began = time.perf_counter(), time.process_time()
    # store_raw_data adds a market_data row per trade: count frames, not rows.
    while collector.stats.messages_received < frames:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - began
    # CPU time of this process: less disturbed by other work on a shared machine.
    cpu = time.process_time() - cpu_began
    await collector.stop(force=True)
    if drain is not None:
        drain.cancel()
    print(
        f"{frames} frames in {elapsed:.2f}s: {frames / elapsed:,.0f} frames/s wall, "
        f"{frames / cpu:,.0f} frames per CPU-second ({'queue' if queue_sink else 'counting'} sink, "
        f"{sink.rows} rows)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=300_000)
    parser.add_argument("--queue-sink", action="store_true")
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]
    server = multiprocessing.Process(target=_serve, args=(sock, args.frames), daemon=True)
    server.start()
    try:
        asyncio.run(_measure(port, args.frames, args.queue_sink))
    finally:
        server.kill()
        server.join()


if __name__ == "__main__":
    main()
