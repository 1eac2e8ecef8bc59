"""One simulator client connection and what it subscribed to."""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State


class Client:
    """One client connection and what it subscribed to."""

    def __init__(self, ws: ServerConnection, conn_id: str, path: str) -> None:
        self.ws = ws
        self.conn_id = conn_id
        self.path = path
        self.closing = False
        self.logged_in = False  # /ws/v5/private: a login was accepted on this connection
        self.streams: set[tuple[str, str]] = set()

    def writable(self) -> bool:
        """True while frames may be written: open and not being dropped by a fault control."""
        return not self.closing and self.ws.protocol.state is State.OPEN
