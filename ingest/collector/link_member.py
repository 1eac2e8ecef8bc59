"""What a link and its member collectors know of each other (link.py)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ingest.collector.batch_receiver import BatchClientConnection
from ingest.collector.continuity import SessionTrades
from ingest.collector.params import CollectorParams
from ingest.exchanges.base import Control, Subscription
from ingest.rows import Row

if TYPE_CHECKING:
    from ingest.collector.link import Link

# Opens a connection: batch_receiver.connect's signature.
Dial = Callable[..., Awaitable[BatchClientConnection]]


def backoff(failures: int, params: CollectorParams) -> float:
    """Seconds to wait before the next attempt after `failures` failures in a row: doubling
    from reconnect_delay, capped at max_reconnect_delay, jittered down to half."""
    base = params.reconnect_delay * float(2 ** min(failures - 1, 30))
    return min(params.max_reconnect_delay, base) * (0.5 + random.random() / 2)


class Receiver(Protocol):
    """What a link needs of a member collector (WebSocketCollector)."""

    name: str

    async def deliver(
        self,
        frames: list[bytes],
        now: float,
        since: float,
        trades: SessionTrades | None,
        on_rows: Callable[[Sequence[Row]], None] | None,
    ) -> bool:
        """Parse and store the collector's frames (`since`: when the first may have arrived);
        `trades`: this connection's gap detection, `on_rows`: a switch's overlap watch.
        True: a RECONNECT_SOON was among them."""
        ...

    def on_control(self, control: Control, now: float) -> bool:
        """Act on a control frame meant for this collector; True: RECONNECT_SOON."""
        ...

    def subscribed(self, member: Member, now: float) -> None:
        """The member's subscribe frames were sent on a new connection."""
        ...

    def connection_failed(self, message: str) -> None:
        """A connection attempt (or a connection before its first frame) failed."""
        ...

    def reconnecting(self) -> None:
        """A reconnect attempt is about to wait for its backoff."""
        ...

    def disconnected(self) -> None:
        """The connection carrying the member ended."""
        ...

    def switched(self, failed: str | None) -> None:
        """A make-before-break switch ended: None, it succeeded; else why it failed."""
        ...

    async def dead_letters(self, rejected: list[tuple[str | bytes, str]]) -> None:
        """Keep refused frames as dead letters within the collector's cap."""
        ...

    async def message_too_big(self, head: bytes, detail: str) -> None:
        """A message over max_message_bytes closed the connection (1009)."""
        ...

    def trades_opened(self) -> SessionTrades | None:
        """A new connection carries this collector's trades (gap detection), or None."""
        ...

    def trades_ended(self, trades: SessionTrades) -> None:
        """A connection that carried this collector's trades ended."""
        ...


@dataclass(slots=True, eq=False)
class Member:
    """One collector's Subscription carried by a link."""

    receiver: Receiver
    sub: Subscription
    key: bytes  # the adapter's route key of the collector's symbol (frame_route)
    link: Link = field(repr=False)
    # Done when the member left (None) or the link gave up (ExchangeError).
    outcome: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    delivering: int = 0  # deliveries under way (a leaving member waits for them)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
