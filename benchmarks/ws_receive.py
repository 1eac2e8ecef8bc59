"""Receive cost per frame: websockets' recv() loop vs BatchClientConnection.recv_batch().

A websockets server in a child process streams N pre-encoded OKX trade messages
(~220 bytes, no compression, like the simulator) as fast as the socket takes them: the
frames are built once and written to the transport in large chunks, so the server is never
the bottleneck. The client only receives and counts, so its CPU time (time.process_time,
this process alone) is the receive path: websockets' frame parsing plus either
(a) `await ws.recv(decode=False)` per frame (websockets' asyncio client), or (b)
`await ws.recv_batch()` per batch (ingest.collector.batch_receiver, websockets' sans-I/O
protocol under our own asyncio Protocol). Runs alternate a, b, a, b... and the table shows
medians.

    .venv/bin/python benchmarks/ws_receive.py --frames 200000 --runs 5

`--baseline FILE` adds a third variant, alternated with the others: an older
batch_receiver.py that subclasses websockets' ClientConnection (the design before the
sans-I/O client), e.g. the one of the commit before it:

    git show f9b4375~1:ingest/collector/batch_receiver.py > /tmp/old_batch_receiver.py
    .venv/bin/python benchmarks/ws_receive.py --baseline /tmp/old_batch_receiver.py
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from ingest.collector import batch_receiver

MAX_QUEUE = 4096  # as the collector uses
CHUNK_FRAMES = 512


def _trade(i: int) -> bytes:
    # The shape of a recorded OKX trade message (tests/data/okx/trades_swap.json).
    return (
        b'{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
        b'"tradeId":"' + str(2832749645 + i).encode() + b'","px":"63913.4","sz":"34.95",'
        b'"side":"sell","ts":"' + str(1786540436090 + i).encode() + b'","count":"1","source":"0",'
        b'"seqId":' + str(333793118093 + i).encode() + b"}]}"
    )


def _serve(port_out: Connection) -> None:
    chunks = [
        b"".join(
            Frame(Opcode.TEXT, _trade(i * CHUNK_FRAMES + j)).serialize(mask=False)
            for j in range(CHUNK_FRAMES)
        )
        for i in range(64)
    ]

    async def handler(ws: ServerConnection) -> None:
        # The client asks for a number of frames; they go straight to the transport
        # (server frames are unmasked, so pre-encoded bytes are valid frames).
        count = int(await ws.recv())
        for i in range(count // CHUNK_FRAMES):
            ws.transport.write(chunks[i % len(chunks)])
            await ws.drain()
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None) as srv:
            port_out.send(next(iter(srv.sockets)).getsockname()[1])
            await asyncio.Future()  # until terminated

    asyncio.run(main())


async def _recv_loop(ws: ClientConnection, count: int) -> None:
    received = 0
    while received < count:
        await ws.recv(decode=False)
        received += 1


async def _batch_loop(ws: Any, count: int) -> None:
    received = 0
    while received < count:
        received += len(await ws.recv_batch())


async def _run(url: str, count: int, variant: str, baseline: Any) -> tuple[float, float]:
    if variant == "recv_batch":
        ws: Any = await batch_receiver.connect(url, max_queue=MAX_QUEUE)
    else:
        factory = ClientConnection if variant == "recv" else baseline.BatchClientConnection
        ws = await connect(
            url, create_connection=factory, compression=None, ping_interval=None, max_queue=MAX_QUEUE
        )
    try:
        await ws.send(str(count))
        wall, cpu = time.perf_counter(), time.process_time()
        if variant == "recv":
            await _recv_loop(ws, count)
        else:
            await _batch_loop(ws, count)
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await ws.close()


def _load_baseline(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("baseline_batch_receiver", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5, help="runs per variant (alternating)")
    parser.add_argument("--baseline", help="an older batch_receiver.py to alternate with")
    args = parser.parse_args()
    baseline = _load_baseline(args.baseline) if args.baseline else None
    count = args.frames - args.frames % CHUNK_FRAMES

    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    server = ctx.Process(target=_serve, args=(sender,), daemon=True)
    server.start()
    try:
        url = f"ws://127.0.0.1:{receiver.recv()}/"
        results: dict[str, list[tuple[float, float]]] = {"recv": [], "recv_batch": []}
        if baseline is not None:
            results["baseline"] = []
        for _ in range(args.runs):
            for name in results:
                results[name].append(asyncio.run(_run(url, count, name, baseline)))
    finally:
        server.terminate()
        server.join(5)

    print(f"{count} frames of ~{len(_trade(0))} bytes per run, {args.runs} runs per variant, medians")
    print(f"{'variant':<11} {'frames/s':>12} {'client CPU µs/frame':>20}   runs (frames/s)")
    medians: dict[str, tuple[float, float]] = {}
    for name, runs in results.items():
        rate = statistics.median(count / wall for wall, _ in runs)
        cpu_us = statistics.median(cpu / count * 1e6 for _, cpu in runs)
        medians[name] = (rate, cpu_us)
        every = ", ".join(f"{count / wall:,.0f}" for wall, _ in runs)
        print(f"{name:<11} {rate:>12,.0f} {cpu_us:>20.2f}   {every}")
    (rate_a, cpu_a), (rate_b, cpu_b) = medians["recv"], medians["recv_batch"]
    print(f"recv_batch / recv: {rate_b / rate_a:.2f}x frames/s, {cpu_a / cpu_b:.2f}x less CPU per frame")
    if "baseline" in medians:
        rate_o, cpu_o = medians["baseline"]
        print(f"recv_batch / baseline: {rate_b / rate_o:.2f}x frames/s, CPU per frame {cpu_b / cpu_o:.2f}x")


if __name__ == "__main__":
    main()
