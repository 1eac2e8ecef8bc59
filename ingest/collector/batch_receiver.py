"""A websockets client connection that hands over every buffered message in one await.

Why it exists: at one trade per message, about a third of the collector's CPU went into
websockets' per-message receive path (the Assembler's queue, a future and an await per
`recv()`), on top of frame parsing. `BatchClientConnection` keeps websockets' protocol
(handshake, frame parsing, max_size, ping/pong, close handshake, TLS, errors) and only
replaces how complete data messages reach the reader: they are appended to a list and
`recv_batch()` returns all of them at once, so the per-message cost is one list append.
Measured (benchmarks/ws_receive.py, 200k OKX trade messages of ~220 bytes, medians of 5):
with the frame scan below, 0.48 µs of client CPU per message against 5.67 for a
`recv(decode=False)` loop (11.8x).

Use it with `websockets.asyncio.client.connect(url, create_connection=BatchClientConnection)`.
`max_queue` keeps its meaning (high, low water marks in messages): reading from the socket
pauses above high and resumes once the reader has drained the buffer to low or below.
Messages come as bytes (text messages as their UTF-8 bytes, not validated, like
`recv(decode=False)`); fragmented messages are reassembled here.

Frames: once the handshake is done and no extension was negotiated, received bytes go
through `frame_scan.scan`, which slices whole-message data frames out of them directly;
every other frame (ping, pong, close, fragment) is handed, complete, to websockets' own
parser, which stays at a frame boundary and so keeps handling them exactly as before.
Anything the scan cannot judge on its own (a masked frame, one over max_size) hands the
rest of the stream to websockets for good.

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
import time
import weakref
from typing import Any, NoReturn

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.exceptions import ConcurrencyError, TooManyFragments
from websockets.frames import BINARY, CONT, TEXT, CloseCode, Frame
from websockets.protocol import CLOSED, OPEN, Event

from ingest.collector.frame_scan import HAND_OVER, NEED_MORE, OTHER_FRAME, payload_head, scan

__all__ = ["BatchClientConnection"]

logger = logging.getLogger(__name__)

# Bytes kept of a frame refused from its header (over max_size): see refused_frame_head.
REFUSED_HEAD_BYTES = 4096

# Linger only after reads smaller than this. A steady 10,000 messages/s of ~200 bytes is
# ~40 KB per 20 ms linger; at full speed asyncio reads up to 256 KB at a time.
LINGER_BELOW_BYTES = 64 * 1024


class BatchClientConnection(ClientConnection):
    """A ClientConnection whose data messages are read in batches with `recv_batch()`.

    `recv()` and `recv_streaming()` are not available on it (they would never see a
    message); everything else (`send`, `ping`, `close`, `wait_closed`...) is unchanged.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ready: list[bytes] = []
        self._fragments: list[bytes] = []  # a fragmented message still being received
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._too_many_fragments = False
        high, low = self.max_queue_high, self.max_queue_low
        # Same defaults as websockets' Assembler: low = high // 4, high = low * 4.
        if high is not None and low is None:
            low = high // 4
        if high is None and low is not None:
            high = low * 4
        self._high, self._low = high, low
        self.receive_linger = 0.0
        self._lingering = False
        self._linger_from: float | None = None  # when the linger the next read ends began
        self._ready_since = 0.0  # earliest time a message in _ready may have arrived
        self.batch_since = 0.0  # the same for the messages recv_batch() returned last
        self._small_read = True  # the read being processed is under LINGER_BELOW_BYTES
        # None: handshake (websockets reads); True: frame_scan reads; False: websockets reads.
        self._scanning: bool | None = None
        self._header_tail = b""  # the handshake's last bytes seen, to find its end
        self._partial = bytearray()  # an incomplete frame, while scanning
        self._partial_needs = 0  # its complete length, once its header is known
        self._frame_limit: int | None = None
        # The first payload bytes of the frame the scan handed to websockets from its header
        # (a frame over max_size, which websockets then refuses with 1009): the collector
        # dead-letters them, so a refused message leaves a trace.
        self.refused_frame_head = b""

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
        handshake completed and once websockets reads the stream itself."""
        return bool(self._scanning)

    async def recv_batch(self, max_frames: int | None = None) -> list[bytes]:
        """Wait for at least one message, then return every buffered one (at most max_frames).

        After the connection closed, the messages received before the close are returned
        first; then it raises ConnectionClosedOK or ConnectionClosedError like `recv()`.
        Cancelling it loses nothing. Only one coroutine may call it at a time.
        """
        if self._waiter is not None:
            raise ConcurrencyError("recv_batch() is already running in another coroutine")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        while not self._ready:
            if self.protocol.state is CLOSED:
                await asyncio.shield(self.connection_lost_waiter)
                raise self.close_exc
            if self._too_many_fragments:
                return await self._fail_too_many_fragments()
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

    async def recv(self, decode: bool | None = None) -> NoReturn:
        """Not available: messages are delivered by recv_batch()."""
        raise ConcurrencyError("BatchClientConnection delivers messages through recv_batch()")

    def recv_streaming(self, decode: bool | None = None) -> NoReturn:
        """Not available: messages are delivered by recv_batch()."""
        raise ConcurrencyError("BatchClientConnection delivers messages through recv_batch()")

    # -- websockets callbacks -----------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """Scan frames ourselves once the connection is open; websockets does the rest."""
        # Whichever parser handles this read, only a small one may linger.
        self._small_read = len(data) < LINGER_BELOW_BYTES
        if not self._ready:
            # After a linger the bytes may have waited in the socket since it began.
            self._ready_since = self._linger_from or time.monotonic()
        self._linger_from = None
        if self._scanning:
            self._scan(data)
        elif self._scanning is None:
            self._receive_handshake(data)
        else:
            super().data_received(data)

    def _receive_handshake(self, data: bytes) -> None:
        # Give websockets the HTTP response and nothing after it: a 101 response has no body,
        # so its parser then waits at a frame boundary and frames can go through the scan.
        seen = self._header_tail + data
        end = seen.find(b"\r\n\r\n")
        if end < 0:
            self._header_tail = seen[-3:]
            super().data_received(data)
            return
        split = end + 4 - len(self._header_tail)
        self._header_tail = b""
        super().data_received(data[:split])
        protocol = self.protocol
        self._scanning = protocol.state is OPEN and not protocol.extensions
        limits = [n for n in (protocol.max_message_size, protocol.max_fragment_size) if n is not None]
        self._frame_limit = min(limits) if limits else None
        if split < len(data):
            self.data_received(data[split:])

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
            take_data = self.protocol.current_size is None
            stop, position, end = scan(data, position, ready, self._frame_limit, take_data)
            if stop == NEED_MORE:
                if position < len(data):
                    partial += data[position:]
                    self._partial_needs = end - position if end else 0
                break
            if stop == OTHER_FRAME:
                super().data_received(data[position:end])
                position = end
                if self.protocol.state is OPEN:
                    continue
            # HAND_OVER, or the connection is closing: websockets reads from here on.
            assert stop == HAND_OVER or self.protocol.state is not OPEN
            if stop == HAND_OVER:
                self.refused_frame_head = payload_head(data, position, REFUSED_HEAD_BYTES)
            self._scanning = False
            if position < len(data):
                super().data_received(data[position:])
            break
        if len(ready) > before:
            self._delivered()

    def _delivered(self) -> None:
        """New messages are in _ready: apply backpressure and linger, wake the reader."""
        if self._high is not None and len(self._ready) > self._high and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        # A big read means a fast stream: the next read will be big too, and pausing would
        # only leave the socket buffer full and the sender waiting.
        if self._small_read and self.receive_linger > 0 and not self._lingering:
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
        if not self._reading_paused and not self._lingering:
            self.transport.resume_reading()

    def process_event(self, event: Event) -> None:
        """Buffer data messages; hand everything else (handshake, pong) to websockets."""
        # The handshake response is not a Frame, and it always comes before any frame.
        if type(event) is not Frame:
            super().process_event(event)
            return
        opcode = event.opcode
        if event.fin and (opcode is TEXT or opcode is BINARY) and not self._too_many_fragments:
            # The hot path: one complete message in one frame, so no fragment is pending.
            data = event.data
            self._ready.append(data if type(data) is bytes else bytes(data))
            self._delivered()
        elif opcode is TEXT or opcode is BINARY or opcode is CONT:
            if not self._too_many_fragments:  # else the connection is being failed: drop it
                self._fragment(event)
        else:
            super().process_event(event)

    def _fragment(self, frame: Frame) -> None:
        # The protocol guarantees that CONT frames, and only they, follow a non-fin frame.
        fragments = self._fragments
        fragments.append(bytes(frame.data))
        if frame.fin:
            self._fragments = []
            self._ready.append(b"".join(fragments))
        elif len(fragments) > MAX_FRAGMENTS:
            self._too_many_fragments = True
        else:
            return
        # Unlike websockets' Assembler, a message's fragments do not count towards max_queue:
        # nobody takes them before the last one, so pausing on them would stall the stream.
        # max_size and MAX_FRAGMENTS bound them.
        self._delivered()

    def connection_lost(self, exc: Exception | None) -> None:
        """Let websockets record the close, then wake a waiting recv_batch()."""
        super().connection_lost(exc)
        self._wake()

    # -- helpers --------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _fail_too_many_fragments(self) -> NoReturn:
        # Same reaction as websockets' recv(): close with 1009 and end the stream.
        self._fragments = []
        self.set_connection_exc(TooManyFragments(MAX_FRAGMENTS))
        logger.warning("closing a connection: a message had more than %d fragments", MAX_FRAGMENTS)
        async with self.send_context():
            self.protocol.fail(CloseCode.MESSAGE_TOO_BIG, "too many fragments")
        await asyncio.shield(self.connection_lost_waiter)
        raise self.close_exc


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
