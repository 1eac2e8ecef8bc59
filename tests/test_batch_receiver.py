"""BatchClientConnection against a real websockets server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConcurrencyError, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import CloseCode

from ingest.collector.batch_receiver import BatchClientConnection

Handler = Callable[[ServerConnection], Awaitable[None]]
# asyncio's selector transports read at most this much per data_received() call.
READ_CHUNK = 256 * 1024


@contextlib.asynccontextmanager
async def server(handler: Handler, compression: str | None = "deflate") -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, compression=compression) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


async def open_client(url: str, **kwargs: object) -> BatchClientConnection:
    ws = await connect(url, create_connection=BatchClientConnection, ping_interval=None, **kwargs)  # type: ignore[arg-type]
    assert isinstance(ws, BatchClientConnection)
    return ws


async def read_until_closed(ws: BatchClientConnection) -> tuple[list[bytes], BaseException]:
    got: list[bytes] = []
    while True:
        try:
            got += await ws.recv_batch()
        except (ConnectionClosedOK, ConnectionClosedError) as exc:
            return got, exc


async def wait_for(predicate: Callable[[], bool]) -> None:
    for _ in range(1000):  # 5 s
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached within 5 s")


async def test_frames_arrive_exactly_and_in_order() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("text é")
        await ws.send(b"\x00\xffbinary")
        await ws.send(["frag", "mented ", "text ✓"])
        await ws.send("between")
        await ws.send([b"bin", b"\x01", b"ary"])
        await ws.send("")
        await ws.close()

    async with server(handler) as url:
        ws = await open_client(url)
        got, exc = await read_until_closed(ws)
    assert got == [
        "text é".encode(),
        b"\x00\xffbinary",
        "fragmented text ✓".encode(),
        b"between",
        b"bin\x01ary",
        b"",
    ]
    assert isinstance(exc, ConnectionClosedOK)


async def test_many_frames_come_in_one_batch_and_max_frames_splits_it() -> None:
    frames = [f'{{"n":{i}}}'.encode() for i in range(500)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame, text=True)
        await ws.wait_closed()

    async with server(handler) as url:
        ws = await open_client(url, max_queue=None)
        await wait_for(lambda: ws.buffered == len(frames))
        first = await ws.recv_batch(max_frames=120)
        rest = await ws.recv_batch()
        assert first == frames[:120]
        assert rest == frames[120:]
        await ws.close()


async def test_clean_close_delivers_remaining_frames_then_ok() -> None:
    frames = [b"a%d" % i for i in range(10)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        await ws.close()

    async with server(handler) as url:
        ws = await open_client(url)
        await ws.wait_closed()  # the close handshake completes without any recv_batch()
        got, exc = await read_until_closed(ws)
    assert got == frames
    assert isinstance(exc, ConnectionClosedOK)


async def test_client_close_keeps_frames_already_buffered() -> None:
    """The collector's stop: close() first, then read what was already received."""
    frames = [b"b%d" % i for i in range(50)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    async with server(handler) as url:
        ws = await open_client(url, max_queue=1024)
        await wait_for(lambda: ws.buffered == len(frames))
        await ws.close()
        got, exc = await read_until_closed(ws)
    assert got == frames
    assert isinstance(exc, ConnectionClosedOK)


async def test_close_from_another_task_ends_a_busy_reader_cleanly() -> None:
    """The collector's stop: close() runs while the reader is between batches."""
    frames = [b"d%05d" % i for i in range(3000)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    async def slow_reader(ws: BatchClientConnection) -> tuple[list[bytes], BaseException]:
        got: list[bytes] = []
        while True:
            try:
                got += await ws.recv_batch(max_frames=100)
            except ConnectionClosedOK as exc:
                return got, exc
            await asyncio.sleep(0.001)  # a slow put() to the writer

    async with server(handler) as url:
        ws = await open_client(url, max_queue=(64, 16))
        reader = asyncio.create_task(slow_reader(ws))
        await wait_for(lambda: ws.reading_paused)
        await asyncio.wait_for(ws.close(), timeout=5)
        got, exc = await asyncio.wait_for(reader, timeout=5)
    # Everything received before the close, in order, nothing skipped.
    assert got == frames[: len(got)]
    assert len(got) >= 64
    assert isinstance(exc, ConnectionClosedOK)


async def test_abrupt_close_delivers_remaining_frames_then_error() -> None:
    frames = [b"c%d" % i for i in range(10)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        ws.transport.abort()

    async with server(handler) as url:
        ws = await open_client(url)
        await ws.wait_closed()
        got, exc = await read_until_closed(ws)
    assert got == frames
    assert isinstance(exc, ConnectionClosedError)
    assert exc.rcvd is None  # no close frame: the TCP connection just dropped


async def test_waiting_reader_wakes_on_close() -> None:
    async def handler(ws: ServerConnection) -> None:
        await asyncio.sleep(0.05)
        await ws.close(CloseCode.GOING_AWAY, "bye")

    async with server(handler) as url:
        ws = await open_client(url)
        with pytest.raises(ConnectionClosedOK) as info:
            await asyncio.wait_for(ws.recv_batch(), timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.reason == "bye"


async def test_slow_reader_pauses_the_socket_and_bounds_the_buffer() -> None:
    size, count, high, low = 100, 20_000, 64, 16
    frames = [b"%06d" % i + b"x" * (size - 6) for i in range(count)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    # No compression: each read of READ_CHUNK bytes then holds a known number of frames.
    async with server(handler, compression=None) as url:
        ws = await open_client(url, max_queue=(high, low))
        await wait_for(lambda: ws.reading_paused)
        await asyncio.sleep(0.2)
        held = ws.buffered
        await asyncio.sleep(0.2)
        # Paused: nothing more was read although the server had far more to send.
        assert ws.buffered == held
        assert held <= high + READ_CHUNK // size + 1
        # The rest waits in the kernel's socket buffers and the server's send path.
        assert held < count
        got: list[bytes] = []
        while len(got) < count:
            got += await asyncio.wait_for(ws.recv_batch(), timeout=5)
            if ws.buffered <= low:
                assert not ws.reading_paused
        assert got == frames
        await ws.close()


async def test_message_with_more_fragments_than_max_queue_does_not_stall() -> None:
    async def slow_fragments() -> AsyncIterator[bytes]:
        for i in range(40):
            yield b"%d," % i
            await asyncio.sleep(0.002)  # separate reads on the client side

    async def handler(ws: ServerConnection) -> None:
        await ws.send(slow_fragments())
        await ws.send(b"next")
        await ws.wait_closed()

    async with server(handler) as url:
        ws = await open_client(url, max_queue=(4, 1))
        got: list[bytes] = []
        while len(got) < 2:
            got += await asyncio.wait_for(ws.recv_batch(), timeout=5)
        assert got == [b"".join(b"%d," % i for i in range(40)), b"next"]
        await ws.close()


def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A throwaway certificate for 127.0.0.1: (server context, client context trusting it)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a throwaway certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    return server_side, ssl.create_default_context(cafile=cert)


async def test_tls_stream_with_backpressure(tmp_path: Path) -> None:
    frames = [b"%06d" % i + b"t" * 200 for i in range(5000)]
    server_tls, client_tls = tls_contexts(tmp_path)

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame, text=True)
        await ws.close()

    async with serve(handler, "127.0.0.1", 0, ssl=server_tls, compression=None) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        ws = await open_client(f"wss://127.0.0.1:{port}/", ssl=client_tls, max_queue=(32, 8))
        await wait_for(lambda: ws.reading_paused)
        got, exc = await read_until_closed(ws)
    assert got == frames
    assert isinstance(exc, ConnectionClosedOK)


async def test_pings_are_answered_while_nobody_reads() -> None:
    latencies: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"before")
        pong = await ws.ping(b"server-ping")
        latencies.append(await asyncio.wait_for(pong, timeout=5))
        await ws.send(b"after")
        await ws.wait_closed()

    async with server(handler) as url:
        ws = await open_client(url)
        await wait_for(lambda: ws.buffered == 2)
        assert len(latencies) == 1
        client_pong = await ws.ping(b"client-ping")
        assert await asyncio.wait_for(client_pong, timeout=5) >= 0.0
        assert await ws.recv_batch() == [b"before", b"after"]
        await ws.close()


async def test_max_size_still_enforced() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"ok")
        await ws.send([b"x" * 600, b"y" * 600])  # 1200 bytes > max_size across fragments
        await ws.wait_closed()

    async with server(handler) as url:
        ws = await open_client(url, max_size=1000)
        got, exc = await read_until_closed(ws)
    assert got == [b"ok"]
    assert isinstance(exc, ConnectionClosedError)
    assert exc.sent is not None
    assert exc.sent.code == CloseCode.MESSAGE_TOO_BIG


async def test_too_many_fragments_fail_the_connection() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"ok")
        await ws.send([b"f"] * (MAX_FRAGMENTS + 2))
        await ws.wait_closed()

    async with server(handler) as url:
        ws = await open_client(url)
        got, exc = await read_until_closed(ws)
    assert got == [b"ok"]
    assert isinstance(exc, ConnectionClosedError)
    assert exc.sent is not None
    assert exc.sent.code == CloseCode.MESSAGE_TOO_BIG


async def test_recv_is_refused_and_one_reader_at_a_time() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with server(handler) as url:
        ws = await open_client(url)
        with pytest.raises(ConcurrencyError):
            await ws.recv()
        reader = asyncio.create_task(ws.recv_batch())
        await asyncio.sleep(0.01)
        with pytest.raises(ConcurrencyError):
            await ws.recv_batch()
        reader.cancel()
        await asyncio.wait({reader})
        assert reader.cancelled()
        with pytest.raises(ValueError, match="max_frames"):
            await ws.recv_batch(0)
        await ws.close()
