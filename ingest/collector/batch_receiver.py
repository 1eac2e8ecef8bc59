"""A WebSocket client built on websockets' sans-I/O ClientProtocol that hands over every
buffered message in one await.

Why it exists: at one trade per message, about a third of the collector's CPU went into
websockets' per-message receive path (a queue, a future and an await per `recv()`), on top
of frame parsing. This client drives websockets' documented sans-I/O `ClientProtocol`
(handshake, max_size, ping/pong, close handshake, extensions, errors: see websockets'
"Integrate the Sans-I/O layer" how-to) from an asyncio `Protocol` of its own, and only
replaces how complete data messages reach the reader: they are appended to a list and
`recv_batch()` returns all of them at once, so the per-message cost is one list append.
Only documented names of websockets are used (`ClientProtocol`, its `receive_data`,
`receive_eof`, `events_received`, `data_to_send`, `close_expected`, `send_*`, `fail`,
`state`, `handshake_exc`, `close_exc`, `extensions`; `Frame`, `parse_uri`, the
exceptions), so any websockets release that documents them works (see pyproject.toml
and .ci/websockets-range for the range CI proves).

Use it with `await connect(url, ...)`. `max_queue` (high, low water marks in messages, or
one number = high, low = high // 4): reading from the socket pauses above high and resumes
once the reader has drained the buffer to low or below. Messages come as bytes (text
messages as their UTF-8 bytes, not validated); fragmented messages are reassembled here.

Frames: once the handshake is done and no extension was negotiated, received bytes go
through `frame_scan.scan`, which slices whole-message data frames out of them directly;
every other frame (ping, pong, close, fragment) is handed, complete, to the sans-I/O
protocol, whose parser stays at a frame boundary and so handles them exactly as usual
(a ping is answered with a pong at once, whether or not anybody reads). Anything the scan
cannot judge on its own (a masked frame, one over max_size) hands the rest of the stream
to the protocol for good; a frame over max_size first calls `on_oversize(first_bytes,
declared_length)` if it is set (the protocol then fails the connection with 1009).

Linger (`receive_linger`, seconds, default 0 = off): after a small read that delivered
data (under LINGER_BELOW_BYTES), reading pauses that long, so at a steady rate of small
messages one wake-up of the event loop takes many of them instead of one each. It adds
at most that delay to each message, and `batch_since` tells the writer, whose batch delay
then counts from the start of the linger: the two do not add up.
All lingering connections of an event loop resume together (one timer), so many
connections cost one wake-up per linger, not one each. Why: on the 2-vCPU VMs this is
measured on, every wake-up from idle costs 75-240 µs of process CPU (an idle asyncio
sleep loop, measured), which dwarfed the per-message work at 10,000 messages/s.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import time
import weakref
from collections.abc import Callable, Sequence

from websockets.client import ClientProtocol
from websockets.exceptions import ConcurrencyError, ConnectionClosed
from websockets.extensions.base import ClientExtensionFactory
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from ingest.collector.frame_scan import HAND_OVER, NEED_MORE, OTHER_FRAME, scan

__all__ = ["OVERSIZE_SAMPLE_BYTES", "BatchClientConnection", "connect"]

logger = logging.getLogger(__name__)

# Linger only after reads smaller than this. A steady 10,000 messages/s of ~200 bytes is
# ~40 KB per 20 ms linger; at full speed asyncio reads up to 256 KB at a time.
LINGER_BELOW_BYTES = 64 * 1024
# A message in more fragments than this fails the connection with 1009 (websockets' own
# asyncio client uses the same bound; it is ours here so no private name is imported).
MAX_FRAGMENTS = 16 * 1024
# How many bytes of an oversize frame's payload on_oversize receives (at most what arrived).
OVERSIZE_SAMPLE_BYTES = 1024

TEXT, BINARY, CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
OPEN, CLOSED = State.OPEN, State.CLOSED


class BatchClientConnection(asyncio.Protocol):
    """One client connection whose data messages are read in batches with `recv_batch()`.

    `send(text)`, `close()`, `wait_closed()`, `transport.abort()` as usual; there is no
    `recv()`.
    """

    def __init__(
        self,
        protocol: ClientProtocol,
        max_queue: int | tuple[int | None, int | None] | None,
        close_timeout: float | None,
        max_size: int | None,
    ) -> None:
        self.protocol = protocol
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.close_timeout = close_timeout
        self.on_oversize: Callable[[bytes, int], None] | None = None
        self._ready: list[bytes] = []
        self._fragments: list[bytes] = []  # a fragmented message still being received
        self._waiter: asyncio.Future[None] | None = None
        self._handshake: asyncio.Future[None] = self.loop.create_future()
        self._lost: asyncio.Future[None] = self.loop.create_future()
        self._close_timer: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._too_many_fragments = False
        high, low = max_queue if isinstance(max_queue, tuple) else (max_queue, None)
        if high is not None and low is None:
            low = high // 4
        if high is None and low is not None:
            high = low * 4
        self._high, self._low = high, low
        self.receive_linger = 0.0
        self._lingering = False
        self._linger_from: float | None = None  # when the linger the next read ends began
        self._ready_since = 0.0  # earliest time a message in _ready may have arrived
        self.last_read = time.monotonic()  # when bytes last came from the socket (keepalive)
        self.batch_since = 0.0  # the same for the messages recv_batch() returned last
        self._small_read = True  # the read being processed is under LINGER_BELOW_BYTES
        # None: handshake (the protocol reads); True: frame_scan reads; False: the protocol reads.
        self._scanning: bool | None = None
        self._header_tail = b""  # the handshake's last bytes seen, to find its end
        self._partial = bytearray()  # an incomplete frame, while scanning
        self._partial_needs = 0  # its complete length, once its header is known
        self._frame_limit = max_size

    # -- public ---------------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        """Complete messages received and not yet returned by recv_batch()."""
        return len(self._ready)

    @property
    def reading_paused(self) -> bool:
        """True while reading from the socket is paused because the buffer is full."""
        return self._reading_paused

    @property
    def scanning(self) -> bool:
        """True while frames are read by frame_scan (the fast path), False before the
        handshake completed and once the sans-I/O protocol reads the stream itself."""
        return bool(self._scanning)

    async def recv_batch(self, max_frames: int | None = None) -> list[bytes]:
        """Wait for at least one message, then return every buffered one (at most max_frames).

        After the connection closed, the messages received before the close are returned
        first; then it raises ConnectionClosedOK or ConnectionClosedError. Cancelling it
        loses nothing. Only one coroutine may call it at a time.
        """
        if self._waiter is not None:
            raise ConcurrencyError("recv_batch() is already running in another coroutine")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        while not self._ready:
            if self._lost.done():
                raise self._close_exc()
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        ready = self._ready
        self.batch_since = self._ready_since
        if max_frames is None or max_frames >= len(ready):
            self._ready = []
        else:
            self._ready = ready[max_frames:]
            ready = ready[:max_frames]
        if self._reading_paused and self._low is not None and len(self._ready) <= self._low:
            self._reading_paused = False
            self._resume_reading()
        return ready

    async def send(self, message: str | bytes | Sequence[bytes]) -> None:
        """Send a text message (str), a binary one (bytes) or a fragmented binary one."""
        if self.protocol.state is not OPEN:
            await self.wait_closed()
            raise self._close_exc()
        protocol = self.protocol
        if isinstance(message, str):
            protocol.send_text(message.encode())
        elif isinstance(message, (bytes, bytearray)):
            protocol.send_binary(bytes(message))
        else:
            parts = list(message)
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                if i == 0:
                    protocol.send_binary(part, fin=last)
                else:
                    protocol.send_continuation(part, fin=last)
        self._flush()

    async def ping(self) -> None:
        """Send a ping frame (no payload). Its pong, like any frame, is bytes read from the
        socket (`last_read`); nothing waits for it here."""
        if self.protocol.state is not OPEN:
            await self.wait_closed()
            raise self._close_exc()
        self.protocol.send_ping(b"")
        self._flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (if still open) and wait until TCP is closed."""
        if self.protocol.state is OPEN:
            self.protocol.send_close(code, reason)
            self._flush()
        elif self.protocol.state is State.CONNECTING:
            self.transport.abort()
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), self.close_timeout)
        except TimeoutError:
            self.transport.abort()
            await asyncio.shield(self._lost)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._lost)

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        """Scan frames ourselves once the connection is open; the protocol does the rest."""
        # Whichever parser handles this read, only a small one may linger.
        self._small_read = len(data) < LINGER_BELOW_BYTES
        self.last_read = now = time.monotonic()
        if not self._ready:
            # After a linger the bytes may have waited in the socket since it began.
            self._ready_since = self._linger_from or now
        self._linger_from = None
        if self._scanning:
            self._scan(data)
        elif self._scanning is None:
            self._receive_handshake(data)
        else:
            self._feed(data)

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.protocol.state is not CLOSED:
            self.protocol.receive_eof()  # records an abnormal close (1006)
            self._process()
        if self._close_timer is not None:
            self._close_timer.cancel()
        if not self._handshake.done():
            self._handshake.set_exception(exc or ConnectionError("connection closed during the handshake"))
            # Marked retrieved: connect() may have given up waiting already (its open_timeout),
            # and asyncio would log "Future exception was never retrieved"; a waiter still gets it.
            self._handshake.exception()
        if not self._lost.done():
            self._lost.set_result(None)
        self._wake()

    # -- reading --------------------------------------------------------------------------
    def _receive_handshake(self, data: bytes) -> None:
        # Give the protocol the HTTP response and nothing after it: a 101 response has no
        # body, so its parser then waits at a frame boundary and frames can go to the scan.
        seen = self._header_tail + data
        end = seen.find(b"\r\n\r\n")
        if end < 0:
            self._header_tail = seen[-3:]
            self._feed(data)
            return
        split = end + 4 - len(self._header_tail)
        self._header_tail = b""
        self._feed(data[:split])
        protocol = self.protocol
        self._scanning = protocol.state is OPEN and not protocol.extensions
        if split < len(data):
            self.data_received(data[split:])

    def _feed(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._process()

    def _process(self) -> None:
        """Take the protocol's events (handshake, frames), then send what it has to send."""
        before = len(self._ready)
        for event in self.protocol.events_received():
            if type(event) is Frame:
                self._frame(event)
            elif isinstance(event, Response) and not self._handshake.done():
                handshake_exc = self.protocol.handshake_exc
                if handshake_exc is None:
                    self._handshake.set_result(None)
                else:
                    self._handshake.set_exception(handshake_exc)
        self._flush()
        if len(self._ready) > before:
            self._delivered()

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is not TEXT and opcode is not BINARY and opcode is not CONT:
            return  # ping (already answered by the protocol), pong, close
        if self._too_many_fragments:
            return  # the connection is being failed: drop it
        if frame.fin and not self._fragments:
            self._ready.append(bytes(frame.data))
            return
        # The protocol guarantees that CONT frames, and only they, follow a non-fin frame.
        fragments = self._fragments
        fragments.append(bytes(frame.data))
        if frame.fin:
            self._fragments = []
            self._ready.append(b"".join(fragments))
        elif len(fragments) > MAX_FRAGMENTS:
            # Unlike a queue counting fragments, they do not count towards max_queue: nobody
            # takes them before the last one, so pausing on them would stall the stream.
            self._too_many_fragments = True
            self._fragments = []
            logger.warning("closing a connection: a message had more than %d fragments", MAX_FRAGMENTS)
            self.protocol.fail(1009, "too many fragments")

    def _scan(self, data: bytes) -> None:
        partial = self._partial
        if partial:
            partial += data
            if len(partial) < self._partial_needs:
                return
            data = bytes(partial)
            partial.clear()
        ready = self._ready
        before = len(ready)
        position = 0
        while True:
            take_data = not self._fragments
            stop, position, end = scan(data, position, ready, self._frame_limit, take_data)
            if stop == NEED_MORE:
                if position < len(data):
                    partial += data[position:]
                    self._partial_needs = end - position if end else 0
                break
            if stop == OTHER_FRAME:
                self._feed(data[position:end])
                position = end
                if self.protocol.state is OPEN:
                    continue
            else:
                assert stop == HAND_OVER
                if self.on_oversize is not None and data[position + 1] & 0x80 == 0:  # not masked
                    self._report_oversize(data, position)
            # HAND_OVER, or the connection is closing: the protocol reads from here on.
            self._scanning = False
            if position < len(data):
                self._feed(data[position:])
            break
        if len(ready) > before:
            self._delivered()

    def _report_oversize(self, data: bytes, position: int) -> None:
        length = data[position + 1]
        start = position + (2 if length < 126 else 4 if length == 126 else 10)
        declared = int.from_bytes(data[position + 2 : start], "big") if length >= 126 else length
        assert self.on_oversize is not None
        self.on_oversize(bytes(data[start : start + OVERSIZE_SAMPLE_BYTES]), declared)

    def _delivered(self) -> None:
        """New messages are in _ready: apply backpressure and linger, wake the reader."""
        if self._high is not None and len(self._ready) > self._high and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        # A big read means a fast stream: the next read will be big too, and pausing would
        # only leave the socket buffer full and the sender waiting.
        if self._small_read and self.receive_linger > 0 and not self._lingering and not self._lost.done():
            self._lingering = True
            self._linger_from = time.monotonic()
            self.transport.pause_reading()
            _linger_clock(self.loop).add(self, self.receive_linger)
        self._wake()

    def linger_over(self) -> None:
        """Called by the linger clock: reading may resume (unless the buffer is full)."""
        self._lingering = False
        self._resume_reading()

    def _resume_reading(self) -> None:
        if not self._reading_paused and not self._lingering and not self._lost.done():
            self.transport.resume_reading()

    # -- writing and closing --------------------------------------------------------------
    def _flush(self) -> None:
        transport = self.transport
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
        if self.protocol.close_expected() and self._close_timer is None and not self._lost.done():
            # The close handshake is done on our side: the server should end TCP now.
            delay = self.close_timeout if self.close_timeout is not None else 10.0
            self._close_timer = self.loop.call_later(delay, self.transport.abort)

    def _close_exc(self) -> ConnectionClosed:
        if self.protocol.state is not CLOSED:
            self.protocol.receive_eof()
        return self.protocol.close_exc

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def connect(
    url: str,
    *,
    open_timeout: float | None = 10.0,
    close_timeout: float | None = 10.0,
    max_queue: int | tuple[int | None, int | None] | None = 16,
    max_size: int | None = 2**20,
    compression: str | None = None,
    ssl: ssl_module.SSLContext | None = None,
    connection: type[BatchClientConnection] = BatchClientConnection,
) -> BatchClientConnection:
    """Open a WebSocket connection to `url` (ws:// or wss://) and complete its handshake.

    wss:// verifies the server's certificate and name (ssl.create_default_context() unless
    `ssl` is given). `compression="deflate"` offers permessage-deflate (frames then go
    through the protocol, not the scan). Raises InvalidURI, InvalidHandshake, OSError or
    TimeoutError like websockets' own connect().
    """
    uri = parse_uri(url)
    extensions: list[ClientExtensionFactory] = []
    if compression == "deflate":
        extensions.append(ClientPerMessageDeflateFactory(compress_settings={"memLevel": 5}))
    elif compression is not None:
        raise ValueError(f"unsupported compression: {compression!r}")
    # None, not []: an empty list sends an empty Sec-WebSocket-Extensions header, which servers
    # that parse the header (websockets' own among them) refuse with HTTP 400.
    protocol = ClientProtocol(uri, extensions=extensions or None, max_size=max_size)
    loop = asyncio.get_running_loop()
    context = ssl if ssl is not None else (ssl_module.create_default_context() if uri.secure else None)
    async with asyncio.timeout(open_timeout):
        _transport, ws = await loop.create_connection(
            lambda: connection(protocol, max_queue, close_timeout, max_size),
            uri.host,
            uri.port,
            ssl=context,
            server_hostname=uri.host if context is not None else None,
        )
        try:
            await ws._handshake
        except BaseException:
            ws.transport.abort()
            raise
    return ws


class _LingerClock:
    """One timer per event loop that ends the linger of every connection waiting on it.

    The first connection to linger sets when it fires; the ones that linger meanwhile
    resume with it (sooner than their own delay, never later).

    At a steady rate the ticks keep a fixed period: a linger that starts just after a
    tick ends one `delay` after that tick, not after itself. Otherwise each tick would
    drift later by the time spent reading, and a writer batch deadline counted from a
    linger's start (batch_since) would fall just before the tick that brings its last
    rows, costing the loop one more wake-up per batch instead of sharing the tick's.
    """

    def __init__(self) -> None:
        # No reference to the loop: it is this clock's key in the weak _clocks mapping.
        self._waiting: list[BatchClientConnection] = []
        self._timer: asyncio.TimerHandle | None = None
        self._last_tick = float("-inf")

    def add(self, connection: BatchClientConnection, delay: float) -> None:
        self._waiting.append(connection)
        if self._timer is None:
            now = connection.loop.time()
            when = self._last_tick + delay
            if when <= now:  # no tick within the last `delay`: a fresh, full linger
                when = now + delay
            self._timer = connection.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        assert self._timer is not None
        self._last_tick = self._timer.when()
        self._timer = None
        waiting, self._waiting = self._waiting, []
        for connection in waiting:
            connection.linger_over()


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LingerClock] = weakref.WeakKeyDictionary()


def _linger_clock(loop: asyncio.AbstractEventLoop) -> _LingerClock:
    clock = _clocks.get(loop)
    if clock is None:
        clock = _clocks[loop] = _LingerClock()
    return clock
