"""BatchClientConnection (websockets' sans-I/O protocol, our own I/O) against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import gc
import hashlib
import itertools
import random
import struct
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConcurrencyError, ConnectionClosedError, ConnectionClosedOK
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.protocol import State

from ingest.collector import batch_receiver
from ingest.collector.batch_receiver import (
    LINGER_BELOW_BYTES,
    MAX_FRAGMENTS,
    OVERSIZE_SAMPLE_BYTES,
    BatchClientConnection,
    connect,
)
from tests.tls_support import tls_contexts

# Opcode members by name: websockets.frames has no such aliases in 14.0, the lowest allowed.
BINARY, CLOSE, CONT, PING, PONG, TEXT = (
    Opcode.BINARY,
    Opcode.CLOSE,
    Opcode.CONT,
    Opcode.PING,
    Opcode.PONG,
    Opcode.TEXT,
)
OPEN = State.OPEN

Handler = Callable[[ServerConnection], Awaitable[None]]
# asyncio's selector transports read at most this much per data_received() call.
READ_CHUNK = 256 * 1024


@contextlib.asynccontextmanager
async def server(handler: Handler, compression: str | None = "deflate") -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, compression=compression) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


@pytest.fixture(params=["scan", "deflate"])
def compression(request: pytest.FixtureRequest) -> str | None:
    """The two read paths: no extension -> frame_scan reads; deflate -> websockets' parser reads."""
    return None if request.param == "scan" else "deflate"


async def open_client(
    url: str,
    compression: str | None,
    connection: type[BatchClientConnection] = BatchClientConnection,
    **kwargs: object,
) -> BatchClientConnection:
    """Connect; the server must use the same `compression`, so the read path is known."""
    ws = await connect(url, connection=connection, compression=compression, **kwargs)  # type: ignore[arg-type]
    assert isinstance(ws, connection)
    if compression is None:
        # Frames that came with the handshake are already read: a close among them ends the scan.
        assert ws.scanning or ws.protocol.state is not OPEN
    else:
        assert not ws.scanning
    return ws


async def read_until_closed(ws: BatchClientConnection) -> tuple[list[bytes], BaseException]:
    got: list[bytes] = []
    while True:
        try:
            got += await asyncio.wait_for(ws.recv_batch(), timeout=5)
        except (ConnectionClosedOK, ConnectionClosedError) as exc:
            return got, exc


async def wait_for(predicate: Callable[[], bool]) -> None:
    for _ in range(1000):  # 5 s
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached within 5 s")


async def test_frames_arrive_exactly_and_in_order(compression: str | None) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("text é")
        await ws.send(b"\x00\xffbinary")
        await ws.send(["frag", "mented ", "text ✓"])
        await ws.send("between")
        await ws.send([b"bin", b"\x01", b"ary"])
        await ws.send("")
        await ws.close()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression)
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


async def test_many_frames_come_in_one_batch_and_max_frames_splits_it(compression: str | None) -> None:
    frames = [f'{{"n":{i}}}'.encode() for i in range(500)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame, text=True)
        await ws.wait_closed()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression, max_queue=None)
        await wait_for(lambda: ws.buffered == len(frames))
        first = await ws.recv_batch(max_frames=120)
        rest = await ws.recv_batch()
        assert first == frames[:120]
        assert rest == frames[120:]
        await ws.close()


async def test_clean_close_delivers_remaining_frames_then_ok(compression: str | None) -> None:
    frames = [b"a%d" % i for i in range(10)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        await ws.close()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression)
        await ws.wait_closed()  # the close handshake completes without any recv_batch()
        got, exc = await read_until_closed(ws)
    assert got == frames
    assert isinstance(exc, ConnectionClosedOK)


async def test_client_close_keeps_frames_already_buffered(compression: str | None) -> None:
    """The collector's stop: close() first, then read what was already received."""
    frames = [b"b%d" % i for i in range(50)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression, max_queue=1024)
        await wait_for(lambda: ws.buffered == len(frames))
        await ws.close()
        got, exc = await read_until_closed(ws)
    assert got == frames
    assert isinstance(exc, ConnectionClosedOK)


async def test_close_from_another_task_ends_a_busy_reader_cleanly(compression: str | None) -> None:
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

    async with server(handler, compression) as url:
        ws = await open_client(url, compression, max_queue=(64, 16))
        reader = asyncio.create_task(slow_reader(ws))
        await wait_for(lambda: ws.reading_paused)
        await asyncio.wait_for(ws.close(), timeout=5)
        got, exc = await asyncio.wait_for(reader, timeout=5)
    # Everything received before the close, in order, nothing skipped.
    assert got == frames[: len(got)]
    assert len(got) >= 64
    assert isinstance(exc, ConnectionClosedOK)


async def test_abrupt_close_delivers_remaining_frames_then_error(compression: str | None) -> None:
    frames = [b"c%d" % i for i in range(10)]

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        ws.transport.abort()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression)
        await ws.wait_closed()
        got, exc = await read_until_closed(ws)
    assert got == frames
    assert isinstance(exc, ConnectionClosedError)
    assert exc.rcvd is None  # no close frame: the TCP connection just dropped


async def test_waiting_reader_wakes_on_close(compression: str | None) -> None:
    async def handler(ws: ServerConnection) -> None:
        await asyncio.sleep(0.05)
        await ws.close(CloseCode.GOING_AWAY, "bye")

    async with server(handler, compression) as url:
        ws = await open_client(url, compression)
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
        ws = await open_client(url, None, max_queue=(high, low))
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


async def test_message_with_more_fragments_than_max_queue_does_not_stall(compression: str | None) -> None:
    async def slow_fragments() -> AsyncIterator[bytes]:
        for i in range(40):
            yield b"%d," % i
            await asyncio.sleep(0.002)  # separate reads on the client side

    async def handler(ws: ServerConnection) -> None:
        await ws.send(slow_fragments())
        await ws.send(b"next")
        await ws.wait_closed()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression, max_queue=(4, 1))
        got: list[bytes] = []
        while len(got) < 2:
            got += await asyncio.wait_for(ws.recv_batch(), timeout=5)
        assert got == [b"".join(b"%d," % i for i in range(40)), b"next"]
        await ws.close()


async def test_tls_stream_with_backpressure(tmp_path: Path, compression: str | None) -> None:
    frames = [b"%06d" % i + b"t" * 200 for i in range(5000)]
    server_tls, client_tls = tls_contexts(tmp_path)

    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame, text=True)
        await ws.close()

    async with serve(handler, "127.0.0.1", 0, ssl=server_tls, compression=compression) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        ws = await open_client(f"wss://127.0.0.1:{port}/", compression, ssl=client_tls, max_queue=(32, 8))
        await wait_for(lambda: ws.reading_paused)
        got, exc = await read_until_closed(ws)
    assert got == frames
    assert isinstance(exc, ConnectionClosedOK)


async def test_pings_are_answered_while_nobody_reads(compression: str | None) -> None:
    latencies: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"before")
        pong = await ws.ping(b"server-ping")
        latencies.append(await asyncio.wait_for(pong, timeout=5))
        await ws.send(b"after")
        await ws.wait_closed()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression)
        await wait_for(lambda: ws.buffered == 2)
        assert len(latencies) == 1  # the server's ping got its pong before anybody read
        assert await ws.recv_batch() == [b"before", b"after"]
        await ws.close()


@pytest.mark.parametrize(
    "oversize",
    [[b"x" * 600, b"y" * 600], b"x" * 1001],  # over max_size across fragments / in one frame
    ids=["fragments", "one-frame"],
)
async def test_max_size_still_enforced(compression: str | None, oversize: bytes | list[bytes]) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"ok")
        await ws.send(oversize)
        await ws.send(b"never")
        await ws.wait_closed()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression, max_size=1000)
        got, exc = await read_until_closed(ws)
    assert got == [b"ok"]
    assert isinstance(exc, ConnectionClosedError)
    assert exc.sent is not None
    assert exc.sent.code == CloseCode.MESSAGE_TOO_BIG


async def test_too_many_fragments_fail_the_connection(compression: str | None) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"ok")
        await ws.send([b"f"] * (MAX_FRAGMENTS + 2))
        await ws.wait_closed()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression)
        got, exc = await read_until_closed(ws)
    assert got == [b"ok"]
    assert isinstance(exc, ConnectionClosedError)
    assert exc.sent is not None
    assert exc.sent.code == CloseCode.MESSAGE_TOO_BIG


async def test_one_reader_at_a_time(compression: str | None) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression)
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


# -- a hand-written server: byte-exact control over what arrives in which TCP segment ------
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class RawPeer:
    """The server side of one connection: the test writes bytes, frames are encoded here."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deflate: bool) -> None:
        self.reader, self.writer = reader, writer
        self.received: list[Frame] = []  # frames from the client, unmasked
        self._close_sent = False
        # Context takeover on both sides, 15-bit windows: what "permessage-deflate" alone means.
        self._extensions = [PerMessageDeflate(False, False, 15, 15)] if deflate else []
        self.response = b""

    def frame(self, opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
        """Encode one frame; with deflate, in the order they are sent (shared context)."""
        if opcode is CLOSE:
            self._close_sent = True
        return Frame(opcode, data, fin=fin).serialize(mask=False, extensions=self._extensions)

    def data(self, payloads: list[bytes]) -> bytes:
        return b"".join(self.frame(BINARY, payload) for payload in payloads)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def serve_client_frames(self) -> None:
        """Record what the client sends; answer its close and end the TCP connection."""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await self.reader.readexactly(2)
                length = head[1] & 0x7F
                if length >= 126:
                    length = int.from_bytes(await self.reader.readexactly(2 if length == 126 else 8))
                mask = await self.reader.readexactly(4)
                payload = await self.reader.readexactly(length)
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                frame = Frame(Opcode(head[0] & 0x0F), data, fin=bool(head[0] & 0x80))
                self.received.append(frame)
                if frame.opcode is CLOSE:
                    if not self._close_sent:
                        self.send(self.frame(CLOSE, data))
                    break
        self.writer.close()


@contextlib.asynccontextmanager
async def raw_server(
    deflate: bool = False,
) -> AsyncIterator[tuple[str, Callable[[], Awaitable[RawPeer]]]]:
    """Yield (url, accept): accept() returns the next connection once its request is read;
    its handshake response is in `peer.response`, not sent."""
    peers: asyncio.Queue[RawPeer] = asyncio.Queue()
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())  # noqa: S324 - RFC 6455
        peer = RawPeer(reader, writer, deflate)
        peer.response = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + (b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else b"")
            + b"Sec-WebSocket-Accept: "
            + accept
            + b"\r\n\r\n"
        )
        await peers.put(peer)
        await done.wait()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/", peers.get
    finally:
        done.set()
        srv.close()
        await srv.wait_closed()


@dataclasses.dataclass
class Read:
    at: float  # loop time
    size: int
    buffered_before: int
    buffered_after: int


class RecordingConnection(BatchClientConnection):
    """Records every read from the socket: when, how big, and what it added to the buffer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[Read] = []
        self._inside = False

    def data_received(self, data: bytes) -> None:
        if self._inside:  # the handshake's read hands the bytes after the response to itself
            super().data_received(data)
            return
        before = self.buffered
        self._inside = True
        try:
            super().data_received(data)
        finally:
            self._inside = False
        self.reads.append(Read(self.loop.time(), len(data), before, self.buffered))


async def open_raw(
    url: str, accept: Callable[[], Awaitable[RawPeer]], **kwargs: object
) -> tuple[RecordingConnection, RawPeer]:
    """Connect to raw_server; the handshake response is sent alone, then serve_client_frames."""
    client = asyncio.create_task(connect_recording(url, **kwargs))
    peer = await accept()
    peer.send(peer.response)
    return await asyncio.wait_for(client, timeout=5), peer


@contextlib.asynccontextmanager
async def raw_client(
    deflate: bool = False, **kwargs: object
) -> AsyncIterator[tuple[RecordingConnection, RawPeer]]:
    """A client connected to raw_server, the peer recording what it sends; on leaving, the
    client closes (unless it already has) and the peer's recording runs to its end."""
    async with raw_server(deflate) as (url, accept):
        ws, peer = await open_raw(url, accept, **kwargs)
        serving = asyncio.create_task(peer.serve_client_frames())
        yield ws, peer
        await ws.close()
        await serving


async def connect_recording(url: str, **kwargs: object) -> RecordingConnection:
    """The client offers permessage-deflate; raw_server decides whether it is used."""
    kwargs.setdefault("compression", "deflate")
    ws = await connect(url, connection=RecordingConnection, **kwargs)  # type: ignore[arg-type]
    assert isinstance(ws, RecordingConnection)
    return ws


async def collect(ws: BatchClientConnection, count: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < count:
        got += await asyncio.wait_for(ws.recv_batch(), timeout=5)
    return got


def payloads(rng: random.Random, sizes: tuple[int, ...]) -> list[bytes]:
    return [b"%04d:" % i + rng.randbytes(size) for i, size in enumerate(sizes)]


BOUNDARY_SIZES = (0, 1, 120, 121, 122, 200, 65530, 65531, 65532, 20, 70000, 3)  # + 5-byte prefix


@pytest.fixture(params=["scan", "deflate"])
def deflate(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "deflate")


async def test_handshake_response_and_first_frames_in_one_segment(deflate: bool) -> None:
    messages = payloads(random.Random(1), BOUNDARY_SIZES)
    async with raw_server(deflate) as (url, accept):
        client = asyncio.create_task(connect_recording(url))
        peer = await accept()
        peer.send(peer.response + peer.data(messages))
        ws = await asyncio.wait_for(client, timeout=5)
        serving = asyncio.create_task(peer.serve_client_frames())
        assert await collect(ws, len(messages)) == messages
        assert ws.reads[0].size > len(peer.response)  # they did come in one read
        assert ws.scanning is not deflate
        await ws.close()
        await serving


async def test_frames_dripped_one_byte_at_a_time(deflate: bool) -> None:
    messages = payloads(random.Random(2), (0, 1, 121, 122, 300, 7))
    async with raw_server(deflate) as (url, accept):
        client = asyncio.create_task(connect_recording(url))
        peer = await accept()
        stream = peer.response + peer.frame(TEXT, b"text", fin=False) + peer.frame(CONT, b" frag")
        stream += peer.data(messages)
        for i in range(len(stream)):
            peer.send(stream[i : i + 1])
            for _ in range(3):  # loop iterations for the client to read each byte alone
                await asyncio.sleep(0)
        ws = await asyncio.wait_for(client, timeout=5)
        serving = asyncio.create_task(peer.serve_client_frames())
        assert await collect(ws, len(messages) + 1) == [b"text frag", *messages]
        # Most reads were one byte: the test did split frames, headers and the handshake.
        assert sum(read.size == 1 for read in ws.reads) > 0.8 * len(ws.reads)
        assert ws.scanning is not deflate
        await ws.close()
        await serving


@pytest.mark.parametrize("cut", [-4, -3, -2, -1, 0, 1, 3])
async def test_handshake_response_cut_near_its_end(deflate: bool, cut: int) -> None:
    """The end of the response (CRLF CRLF) split across reads, frames right behind it."""
    messages = payloads(random.Random(9), (3, 130, 3))
    async with raw_server(deflate) as (url, accept):
        client = asyncio.create_task(connect_recording(url))
        peer = await accept()
        stream = peer.response + peer.data(messages)
        at = len(peer.response) + cut
        peer.send(stream[:at])
        for _ in range(3):  # loop iterations for the client to read the first part alone
            await asyncio.sleep(0)
        peer.send(stream[at:])
        ws = await asyncio.wait_for(client, timeout=5)
        serving = asyncio.create_task(peer.serve_client_frames())
        assert await collect(ws, len(messages)) == messages
        assert ws.reads[0].size == at  # the cut did fall between two reads
        assert ws.scanning is not deflate
        await ws.close()
        await serving


async def failed_by(
    deflate: bool, bad_stream: Callable[[RawPeer], bytes], max_size: int | None = 2**20
) -> tuple[list[bytes], ConnectionClosedError]:
    """Send `bad_stream` from a raw server; return what arrived and how the client closed."""
    async with raw_client(deflate, max_size=max_size) as (ws, peer):
        peer.send(bad_stream(peer))
        got, exc = await asyncio.wait_for(read_until_closed(ws), timeout=5)
    assert isinstance(exc, ConnectionClosedError)
    assert exc.sent is not None
    return got, exc


async def test_data_frame_inside_a_fragmented_message_is_a_protocol_error(deflate: bool) -> None:
    got, exc = await failed_by(
        deflate,
        lambda peer: (
            peer.data([b"ok"])
            + peer.frame(TEXT, b"started", fin=False)
            + peer.frame(BINARY, b"not a continuation")
        ),
    )
    assert got == [b"ok"]
    assert exc.sent is not None
    assert exc.sent.code == CloseCode.PROTOCOL_ERROR


async def test_ping_in_a_fast_stream_is_answered(deflate: bool) -> None:
    before = payloads(random.Random(3), (50,) * 200)
    after = payloads(random.Random(4), (50,) * 200)
    async with raw_client(deflate) as (ws, peer):
        peer.send(peer.data(before) + peer.frame(PING, b"mid-stream") + peer.data(after))
        assert await collect(ws, 400) == before + after
        await wait_for(lambda: len(peer.received) > 0)
        assert [(f.opcode, f.data) for f in peer.received] == [(PONG, b"mid-stream")]
        assert ws.scanning is not deflate  # a ping does not end the scan


async def test_close_frame_mid_stream_delivers_what_came_before(deflate: bool) -> None:
    before = payloads(random.Random(5), (30, 200, 0, 70000, 30))
    close = Close(CloseCode.GOING_AWAY, "maintenance").serialize()
    async with raw_client(deflate) as (ws, peer):
        # What follows a close frame is not a message: the protocol ignores it.
        peer.send(peer.data(before) + peer.frame(CLOSE, close) + peer.data([b"after the close"]))
        got, exc = await read_until_closed(ws)
    assert got == before
    assert isinstance(exc, ConnectionClosedOK)
    assert exc.rcvd is not None
    assert exc.rcvd.reason == "maintenance"
    assert [f.opcode for f in peer.received] == [CLOSE]  # the client answered the close


async def test_fragmented_message_in_a_scanned_stream(deflate: bool) -> None:
    before = payloads(random.Random(6), (10, 130, 10))
    after = payloads(random.Random(7), (10, 130, 70000, 10))
    async with raw_client(deflate) as (ws, peer):
        # Encoded in the order sent: with deflate, each message's compression depends on the ones before.
        stream = peer.data(before)
        stream += peer.frame(BINARY, b"one,", fin=False)
        stream += peer.frame(CONT, b"two," * 40, fin=False)
        stream += peer.frame(PING, b"between fragments")
        stream += peer.frame(CONT, b"three", fin=True)
        peer.send(stream + peer.data(after))
        assert await collect(ws, 8) == [*before, b"one," + b"two," * 40 + b"three", *after]
        # The fragments went to websockets whole, so the scan continued after them.
        assert ws.scanning is not deflate
        await wait_for(lambda: len(peer.received) > 0)
        assert [(f.opcode, f.data) for f in peer.received] == [(PONG, b"between fragments")]


async def test_declared_length_over_max_size_fails_without_the_payload(deflate: bool) -> None:
    # Only the header of a 2**40-byte frame: the client must not wait for its payload.
    got, exc = await failed_by(
        deflate,
        lambda peer: peer.data([b"ok"]) + bytes([0x82, 127]) + (2**40).to_bytes(8, "big"),
        max_size=1000,
    )
    assert got == [b"ok"]
    assert exc.sent is not None
    assert exc.sent.code == CloseCode.MESSAGE_TOO_BIG


async def test_frame_over_max_size_is_reported_with_its_first_bytes() -> None:
    # The hook a dead letter is made from: what arrived of the payload, and the declared size.
    reported: list[tuple[bytes, int]] = []
    payload = b'{"arg":{"channel":"trades"},"data":[' + b"x" * 2000
    async with raw_client(max_size=1000) as (ws, peer):
        ws.on_oversize = lambda first, declared: reported.append((first, declared))
        peer.send(peer.data([b"ok", payload]))
        got, exc = await asyncio.wait_for(read_until_closed(ws), timeout=5)
    assert got == [b"ok"]
    assert reported == [(payload[:OVERSIZE_SAMPLE_BYTES], len(payload))]
    assert isinstance(exc, ConnectionClosedError)
    assert exc.sent is not None
    assert exc.sent.code == CloseCode.MESSAGE_TOO_BIG


async def test_masked_frame_from_the_server_is_a_protocol_error(deflate: bool) -> None:
    masked = Frame(BINARY, b"masked").serialize(mask=True)
    got, exc = await failed_by(
        deflate, lambda peer: peer.data([b"first", b"second"]) + masked + peer.data([b"never"])
    )
    assert got == [b"first", b"second"]
    assert exc.sent is not None
    assert exc.sent.code == CloseCode.PROTOCOL_ERROR


# -- linger ---------------------------------------------------------------------------------
def stamped(loop: asyncio.AbstractEventLoop, i: int) -> bytes:
    return struct.pack("!d", loop.time()) + b"%d" % i


async def test_linger_batches_a_slow_stream_of_small_messages(compression: str | None) -> None:
    count, linger = 60, 0.05

    async def handler(ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        async for _ in ws:  # each message from the client starts a round
            for i in range(count):
                await ws.send(stamped(loop, i))
                await asyncio.sleep(0.003)

    async def round_with(ws: BatchClientConnection, seconds: float) -> tuple[int, float]:
        ws.receive_linger = seconds
        await ws.send("go")
        batches, got, delays = 0, list[bytes](), list[float]()
        while len(got) < count:
            batch = await asyncio.wait_for(ws.recv_batch(), timeout=5)
            now = ws.loop.time()
            batches += 1
            got += batch
            delays += [now - struct.unpack("!d", message[:8])[0] for message in batch]
        assert [message[8:] for message in got] == [b"%d" % i for i in range(count)]
        return batches, max(delays)

    async with server(handler, compression) as url:
        ws = await open_client(url, compression)
        plain_batches, _ = await round_with(ws, 0.0)
        linger_batches, linger_delay = await round_with(ws, linger)
        await ws.close()
    assert linger_batches * 3 <= plain_batches
    assert linger_delay < linger + 0.2


def gaps_after(reads: list[Read], small: bool) -> list[float]:
    """Time to the next read, after each read that delivered messages and was small (or not)."""
    return [
        after.at - read.at
        for read, after in itertools.pairwise(reads)
        if read.buffered_after > read.buffered_before and (read.size < LINGER_BELOW_BYTES) is small
    ]


async def test_big_reads_do_not_linger(deflate: bool) -> None:
    linger = 0.2
    messages = payloads(random.Random(8), (1000,) * 2000)  # ~2 MB: reads of up to READ_CHUNK
    async with raw_client(deflate, max_size=None) as (ws, peer):
        ws.receive_linger = linger
        handshake_reads = len(ws.reads)
        peer.send(peer.data(messages))
        assert await collect(ws, len(messages)) == messages
        reads = ws.reads[handshake_reads:]
        big = gaps_after(reads, small=False)
        assert len(big) >= 2, [read.size for read in reads]
        assert max(big) < linger / 2, [(read.size, read.at) for read in reads]
        # A small read (if any) did linger: the test can tell one from the other.
        assert all(gap > linger * 0.9 for gap in gaps_after(reads, small=True))


async def test_lingering_connections_of_a_loop_resume_together() -> None:
    linger = 0.2
    async with raw_server() as (url, accept):
        a, peer_a = await open_raw(url, accept)
        b, peer_b = await open_raw(url, accept)
        servings = [asyncio.create_task(p.serve_client_frames()) for p in (peer_a, peer_b)]
        a.receive_linger = b.receive_linger = linger
        peer_a.send(peer_a.data([b"a1"]))
        await wait_for(lambda: a.buffered == 1)
        a_lingers_from = a.reads[-1].at
        await asyncio.sleep(0.1)
        peer_b.send(peer_b.data([b"b1"]))
        await wait_for(lambda: b.buffered == 1)
        b_lingers_from = b.reads[-1].at
        await asyncio.sleep(0.02)
        peer_a.send(peer_a.data([b"a2"]))
        peer_b.send(peer_b.data([b"b2"]))
        await wait_for(lambda: a.buffered == 2 and b.buffered == 2)
        a_resumed, b_resumed = a.reads[-1].at, b.reads[-1].at
        # a waited its full linger; b resumed with a, on the one timer, before its own was over.
        assert linger * 0.95 < a_resumed - a_lingers_from < linger + 0.1
        assert abs(a_resumed - b_resumed) < 0.03
        assert b_resumed - b_lingers_from < linger - 0.05
        # Both lingered again after reading a2/b2: no timer left from b's first linger ends it early.
        await asyncio.sleep(0.02)
        peer_a.send(peer_a.data([b"a3"]))
        await wait_for(lambda: a.buffered == 3)
        assert a.reads[-1].at - a_resumed > linger * 0.95
        assert await a.recv_batch() == [b"a1", b"a2", b"a3"]
        assert await b.recv_batch() == [b"b1", b"b2"]
        await a.close()
        await b.close()
        await asyncio.gather(*servings)


async def test_reader_draining_during_linger_does_not_end_it() -> None:
    linger = 0.3
    async with raw_client(max_queue=(4, 1)) as (ws, peer):
        ws.receive_linger = linger
        first = [b"%d" % i for i in range(10)]
        peer.send(peer.data(first))  # one small read: over high water and lingering
        await wait_for(lambda: ws.buffered == 10)
        assert ws.reading_paused
        lingers_from = ws.reads[-1].at
        assert await ws.recv_batch() == first  # drained below low while still lingering
        assert not ws.reading_paused
        peer.send(peer.data([b"next"]))
        assert await collect(ws, 1) == [b"next"]
        assert linger * 0.95 < ws.reads[-1].at - lingers_from < linger + 0.15


async def test_batch_since_reaches_back_to_the_start_of_the_linger() -> None:
    # Messages read after a linger may have waited in the socket since it began: the
    # writer's batch delay counts from there (batch_since), so linger and delay do not add up.
    linger = 0.3
    async with raw_client() as (ws, peer):
        ws.receive_linger = linger
        before_first = time.monotonic()
        peer.send(peer.data([b"first"]))
        assert await ws.recv_batch() == [b"first"]
        assert before_first <= ws.batch_since <= time.monotonic()  # read at once: its arrival
        first_read = ws.batch_since
        await asyncio.sleep(0.1)
        second_sent = time.monotonic()
        peer.send(peer.data([b"second"]))
        assert await ws.recv_batch() == [b"second"]
        assert time.monotonic() - second_sent > 0.1, "the read waited for the linger"
        # Counted from the start of the linger, which began before the message was sent.
        assert first_read <= ws.batch_since < second_sent


async def test_linger_ending_with_a_full_buffer_waits_for_the_reader() -> None:
    linger = 0.05
    async with raw_client(max_queue=(4, 1)) as (ws, peer):
        ws.receive_linger = linger
        first, rest = [b"%d" % i for i in range(10)], [b"r%d" % i for i in range(5)]
        peer.send(peer.data(first))
        await wait_for(lambda: ws.buffered == 10)
        reads = len(ws.reads)
        await asyncio.sleep(0.02)
        peer.send(peer.data(rest))
        await asyncio.sleep(linger + 0.15)
        # The linger is over, but the buffer is still above low: reading stays paused.
        assert ws.reading_paused
        assert ws.buffered == 10
        assert len(ws.reads) == reads
        drained_at = ws.loop.time()
        assert await ws.recv_batch() == first
        assert await collect(ws, 5) == rest
        assert ws.reads[-1].at - drained_at < 0.1  # resumed at once: the linger was over


async def test_slow_reader_with_linger_and_backpressure_loses_nothing(compression: str | None) -> None:
    count, high, low, linger = 300, 8, 2, 0.02
    frames = [b"%04d" % i + b"s" * 40 for i in range(count)]

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # the client's linger is set
        for i, frame in enumerate(frames):
            await ws.send(frame)
            if i % 10 == 0:
                await asyncio.sleep(0.001)
        await ws.wait_closed()

    async with server(handler, compression) as url:
        ws = await open_client(url, compression, RecordingConnection, max_queue=(high, low))
        assert isinstance(ws, RecordingConnection)
        ws.receive_linger = linger
        start = len(ws.reads)
        await ws.send("go")
        got: list[bytes] = []
        while len(got) < count:
            got += await asyncio.wait_for(ws.recv_batch(max_frames=3), timeout=5)
            await asyncio.sleep(0.002)
        assert got == frames
        reads = ws.reads[start:]
        for read, after in itertools.pairwise(reads):
            if read.buffered_after > high:  # paused until drained to low
                assert after.buffered_before <= low
        assert any(read.buffered_after > high for read in reads)  # backpressure did engage
        lingered = gaps_after(reads, small=True)
        assert lingered
        assert all(gap > linger * 0.9 for gap in lingered)
        await ws.close()


def test_linger_clock_does_not_keep_a_closed_loop_alive() -> None:
    """The clocks are keyed weakly by loop: a clock must not hold its own key alive."""
    loop = asyncio.new_event_loop()
    batch_receiver._linger_clock(loop)
    dead = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert dead() is None


async def test_a_client_without_compression_connects_to_a_server_that_offers_deflate() -> None:
    # websockets' default server parses Sec-WebSocket-Extensions: an empty header is a 400.
    # The client must leave the header out, and frames must then take the scan.
    async def send_one(ws: ServerConnection) -> None:
        await ws.send(b"one")
        await ws.close()

    async with server(send_one, compression="deflate") as url:
        ws = await open_client(url, None)
        got, _closed = await read_until_closed(ws)
    assert got == [b"one"]
