"""Streams: the pre-framed messages the simulator sends for one (channel, instId).

A Stream is the ordered list of pre-framed messages for one (channel, instId) plus a read
position. The position belongs to the stream, not to a connection, so a client that
reconnects and resubscribes continues where the previous connection stopped.
"""

from __future__ import annotations

from typing import NamedTuple

from ingest.simulator.wire import text_frame


class SentTrade(NamedTuple):
    """One trade the simulator handed to a client socket, value for value."""

    inst_id: str
    trade_id: str
    price: str
    size: str
    side: str
    ts_ms: int


class Stream:
    """Pre-framed messages for one (channel, instId), with a shared read position.

    Frame indexes are absolute (they survive trimming), so `trades_in(start, stop)` can
    name the trades of any frame range handed out by `take`.
    """

    def __init__(self, channel: str, inst_id: str) -> None:
        self.channel = channel
        self.inst_id = inst_id
        self.frames: list[bytes] = []  # complete WebSocket frames
        self.counts: list[int] = []  # trades carried by each frame
        self._trades: list[tuple[SentTrade, ...]] = []
        self.base = 0  # absolute index of frames[0]; older frames were trimmed
        self.pos = 0  # absolute index of the next frame to send
        self.ever_subscribed = False

    def append(self, payload: bytes, trades: tuple[SentTrade, ...] = ()) -> None:
        """Add one message (JSON payload) at the end of the stream."""
        self.frames.append(text_frame(payload))
        self.counts.append(len(trades))
        self._trades.append(trades)

    def extend(self) -> bool:
        """Build more frames if this stream can; False when it is exhausted."""
        return False

    def available(self) -> int:
        """Frames ready to send without building more."""
        return self.base + len(self.frames) - self.pos

    def take(self, max_frames: int) -> tuple[bytes, int, int, int]:
        """Up to `max_frames` next frames: (one buffer, first absolute index, frames, trades)."""
        if self.available() <= 0 and not self.extend():
            return b"", self.pos, 0, 0
        first = self.pos
        start = first - self.base
        stop = min(start + max_frames, len(self.frames))
        self.pos += stop - start
        return b"".join(self.frames[start:stop]), first, stop - start, sum(self.counts[start:stop])

    def trades_in(self, first: int, stop: int) -> list[SentTrade]:
        """The trades carried by absolute frames [first, stop) (still kept in memory)."""
        return [t for group in self._trades[first - self.base : stop - self.base] for t in group]

    def rewind(self, frames: int) -> int:
        """Move the position back by up to `frames` (never before what is kept); frames moved."""
        back = min(frames, self.pos - self.base)
        self.pos -= back
        return back

    def trim(self, keep: int) -> None:
        """Forget frames sent more than `keep` frames ago, to bound memory."""
        drop = self.pos - self.base - keep
        if drop > 0:
            del self.frames[:drop]
            del self.counts[:drop]
            del self._trades[:drop]
            self.base += drop
