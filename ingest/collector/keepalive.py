"""The keepalive of one connection: pings after silence, and a connection that answers
nothing within pong_timeout is dropped.

Ping after ping_interval without receiving anything, and also after ping_interval without
sending anything: some servers (the OKX simulator among them) close a connection whose client
stayed silent, even while they stream data to it. "Received" is when bytes last came from the
socket (BatchClientConnection reads it while the reader waits in put()); while the reader
waits, or reading is paused because our buffer is full, silence is our own doing and never
times out. The ping is the venue's (adapter.keepalive): its text ping, or a WebSocket ping
frame, whose pong is bytes read from the socket like any answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from websockets.exceptions import ConnectionClosed

from ingest.collector.batch_receiver import BatchClientConnection
from ingest.collector.params import CollectorParams
from ingest.exchanges.base import ExchangeAdapter, Keepalive

logger = logging.getLogger(__name__)


class Watched(Protocol):
    """What the keepalive reads of a connection's session, and the reason it writes."""

    last_recv: float
    putting_since: float | None
    end_reason: str


async def keep_alive(
    session: Watched, ws: BatchClientConnection, params: CollectorParams, adapter: ExchangeAdapter, name: str
) -> None:
    """Run until the connection closes (or is aborted here for want of an answer)."""
    interval, timeout = params.ping_interval, params.pong_timeout
    ping = adapter.ping_text
    protocol_ping = adapter.keepalive is Keepalive.PROTOCOL_PING
    last_sent = time.monotonic()
    unanswered: float | None = None  # when the oldest ping still waiting for a frame went out
    while True:
        now = time.monotonic()
        received = max(session.last_recv, ws.last_read)
        if unanswered is not None and received >= unanswered:
            unanswered = None
        if unanswered is not None and now >= unanswered + timeout:
            if session.putting_since is not None or ws.reading_paused:
                unanswered = now  # held up on our side: wait for an answer afresh
            else:
                session.end_reason = f"nothing received within {timeout:.1f}s of a ping"
                logger.warning("%s: %s; dropping the connection", name, session.end_reason)
                ws.transport.abort()
                return
        # Receive silence calls for one ping (then its answer is awaited); send silence
        # for one ping per interval.
        due = last_sent + interval
        if unanswered is None:
            due = min(due, received + interval)
        if now >= due:
            try:
                # A protocol ping's pong, like a text ping's answer, is bytes read from
                # the socket (ws.last_read): the wait below is the same for both.
                await (ws.ping() if protocol_ping else ws.send(ping))
            except ConnectionClosed:
                return
            last_sent = now
            unanswered = now if unanswered is None else unanswered
            continue
        wake = due if unanswered is None else min(due, unanswered + timeout)
        await asyncio.sleep(wake - now)
