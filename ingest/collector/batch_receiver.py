"""A websockets client connection that hands over every buffered message in one await.

Why it exists: at one trade per message, about a third of the collector's CPU went into
websockets' per-message receive path (the Assembler's queue, a future and an await per
`recv()`), on top of frame parsing. `BatchClientConnection` keeps websockets' protocol
(handshake, frame parsing, max_size, ping/pong, close handshake, TLS, errors) and only
replaces how complete data messages reach the reader: they are appended to a list and
`recv_batch()` returns all of them at once, so the per-message cost is one list append.
Measured (benchmarks/ws_receive.py, 200k OKX trade messages of ~220 bytes, 2 shared cores,
medians of 5): 1.3x the messages per client CPU-second of a `recv(decode=False)` loop
(6.9 -> 5.1 µs; what remains is websockets' frame parser). In the collector (current
`_read` vs a recv_batch `_read`, store_raw_data on): 10.9 -> 9.3 µs per message.

Use it with `websockets.asyncio.client.connect(url, create_connection=BatchClientConnection)`.
`max_queue` keeps its meaning (high, low water marks in messages): reading from the socket
pauses above high and resumes once the reader has drained the buffer to low or below.
Messages come as bytes (text messages as their UTF-8 bytes, not validated, like
`recv(decode=False)`); fragmented messages are reassembled here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NoReturn

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.exceptions import ConcurrencyError, TooManyFragments
from websockets.frames import BINARY, CONT, TEXT, CloseCode, Frame
from websockets.protocol import CLOSED, Event

__all__ = ["BatchClientConnection"]

logger = logging.getLogger(__name__)


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

    @property
    def buffered(self) -> int:
        """Complete messages received and not yet returned by recv_batch()."""
        return len(self._ready)

    @property
    def reading_paused(self) -> bool:
        """True while reading from the socket is paused because the buffer is full."""
        return self._reading_paused

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
        if max_frames is None or max_frames >= len(ready):
            self._ready = []
        else:
            self._ready = ready[max_frames:]
            ready = ready[:max_frames]
        if self._reading_paused and self._low is not None and len(self._ready) <= self._low:
            self._reading_paused = False
            self.transport.resume_reading()
        return ready

    async def recv(self, decode: bool | None = None) -> NoReturn:
        """Not available: messages are delivered by recv_batch()."""
        raise ConcurrencyError("BatchClientConnection delivers messages through recv_batch()")

    def recv_streaming(self, decode: bool | None = None) -> NoReturn:
        """Not available: messages are delivered by recv_batch()."""
        raise ConcurrencyError("BatchClientConnection delivers messages through recv_batch()")

    # -- websockets callbacks -----------------------------------------------------------
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
            ready = self._ready
            ready.append(data if type(data) is bytes else bytes(data))
            if self._high is not None and len(ready) > self._high and not self._reading_paused:
                self._reading_paused = True
                self.transport.pause_reading()
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
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
        if self._high is not None and not self._reading_paused and len(self._ready) > self._high:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

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
