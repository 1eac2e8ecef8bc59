"""One Binance stream connection: what it subscribed to, how it wants payloads, and a count of
the messages the client sends, because Binance limits them (text, ping and pong frames alike).

Pings and pongs never reach a handler in websockets, so the count is taken where incoming
frames are dispatched, process_event() (public but not in the reference docs); websockets documents
create_connection= as the hook for a ServerConnection subclass.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Opcode
from websockets.protocol import State

from ingest.simulator.binance.names import StreamSpec
from ingest.simulator.binance.wire import Variant

_COUNTED = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG})


class BinanceConnection(ServerConnection):
    """A ServerConnection that counts incoming messages; settings come from the simulator's
    process_request, which runs before the connection opens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn_id = ""
        self.combined = False
        self.micro = False
        self.closing = False
        self.streams: dict[str, StreamSpec] = {}  # in subscription order
        self.message_limit = 0  # per second; 0: unlimited
        self.on_flood: Callable[[BinanceConnection], None] | None = None
        self._arrivals: deque[float] = deque()

    @property
    def variant(self) -> Variant:
        return self.combined, self.micro

    def writable(self) -> bool:
        """True while frames may be written: open and not being closed by the simulator."""
        return not self.closing and self.protocol.state is State.OPEN

    def process_event(self, event: Any) -> None:
        opcode = getattr(event, "opcode", None)
        if opcode in _COUNTED and self.message_limit > 0 and self.protocol.state is State.OPEN:
            now = self.loop.time()
            arrivals = self._arrivals
            arrivals.append(now)
            while arrivals and arrivals[0] <= now - 1.0:
                arrivals.popleft()
            if len(arrivals) > self.message_limit:
                if not self.closing and self.on_flood is not None:
                    self.on_flood(self)
                self.closing = True
                if opcode in (Opcode.TEXT, Opcode.BINARY):
                    return  # over the limit: not answered, the connection is being closed
        super().process_event(event)
