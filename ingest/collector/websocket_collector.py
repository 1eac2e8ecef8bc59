"""The generic WebSocket collector: drives any ExchangeAdapter, names no exchange.

One connection per Subscription the adapter returns (OKX: public, plus business for
candles). Each connection runs: connect -> send the subscribe frames (paced to the venue's
max_messages_per_second) -> read, where reading is `recv_batch -> adapter.parse_batch ->
sink.put(rows)` and nothing else. A keepalive task per connection sends the adapter's ping
(its text ping, or a WebSocket ping frame: adapter.keepalive) after `ping_interval` of
silence (either direction) and aborts the connection if nothing at all (pong or data)
arrives within `pong_timeout`.

Reconnects use jittered exponential backoff from reconnect_delay capped at
max_reconnect_delay. After `max_reconnect_attempts` consecutive failures the collector
gives up (status "error") unless auto_restart is on, in which case it keeps trying at
the capped delay. A connection that delivered frames resets the failure count and is
re-opened at once when it drops. A RECONNECT_SOON notice (the exchange will close this
connection) is make before break: the replacement is opened and subscribed while the old
connection is still read, and the old one is closed once a trade arrived on both (handover.py).
A connection older than the venue's max_connection_age is replaced the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import CloseCode

from ingest.collector.base import BaseDataCollector
from ingest.collector.batch_receiver import BatchClientConnection, connect
from ingest.collector.connect_rate import gate_for
from ingest.collector.continuity import SessionTrades, TradeContinuity
from ingest.collector.handover import HANDOVER_OVERLAP, Overlap
from ingest.collector.params import CollectorParams
from ingest.collector.sink import RowSink
from ingest.dead_letters import DeadLetterCap, dead_letter
from ingest.errors import ExchangeError
from ingest.exchanges.base import Control, ControlKind, ExchangeAdapter, Keepalive, Subscription
from ingest.model import ExchangeCollectorConfig
from ingest.redact import redact_text
from ingest.rows import Row
from ingest.sliding_window import SlidingWindow

logger = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
# How long a stop lets readers finish the frames already received after the close: long
# only when a reader waits in put() for room in a full writer queue (the database is slow).
DRAIN_TIMEOUT = 15.0
# Frames websockets may buffer before it stops reading the socket; large enough that
# a burst never pauses the TCP stream while the writer catches up.
MAX_QUEUE = 4096
# Frames parsed and handed to the writer in one go: bounds one put()'s rows (the writer
# queue may exceed its capacity by one put).
MAX_BATCH_FRAMES = 1024
_RECONNECT_SOON = "exchange announced a reconnect"
_CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake, InvalidURI)


@dataclass(slots=True, eq=False)
class _Session:
    """Per-connection clocks shared by the reader and its keepalive task."""

    ws: BatchClientConnection
    opened: float = field(default_factory=time.monotonic)
    last_recv: float = field(default_factory=time.monotonic)
    frames: int = 0
    end_reason: str = ""
    oversize_head: bytes = b""  # first bytes of a message refused for its size (1009)
    putting_since: float | None = None  # the reader waits in the sink's put() since then
    moving: asyncio.Event = field(default_factory=asyncio.Event)  # RECONNECT_SOON received
    on_rows: Callable[[Sequence[Row]], None] | None = None  # during a switch: Overlap's
    trades: SessionTrades | None = None  # gap detection (continuity.py), if it carries trades

    def keep_oversize_head(self, head: bytes, _declared_length: int) -> None:
        self.oversize_head = head


class WebSocketCollector(BaseDataCollector):
    """Collects one symbol from one exchange through the exchange's adapter."""

    def __init__(
        self,
        config: ExchangeCollectorConfig,
        params: CollectorParams,
        adapter: ExchangeAdapter,
        sink: RowSink,
        continuity: TradeContinuity | None = None,
    ) -> None:
        super().__init__(config, params)
        self._adapter = adapter
        self._sink = sink
        self._continuity = continuity  # None: gaps are neither looked for nor filled
        self._continuity_started = False
        # Pure computation (no I/O): fails early, with a ConfigError, on bad channels/URLs.
        self.subscriptions: list[Subscription] = adapter.subscriptions(
            config.symbol, config.data_types, params.channels, params.urls
        )
        self._sessions: set[_Session] = set()
        self._stopping = asyncio.Event()  # wakes connection loops sleeping in backoff
        self._dead_letter_cap = DeadLetterCap(self.name, params.dead_letters_per_hour)
        self._gate_waits = 0  # connection loops waiting for the venue's connect rate
        self._gate_waiting_since: float | None = None

    async def stop(self, force: bool = False) -> None:
        try:
            await super().stop(force)
        finally:
            if self._continuity is not None and self._continuity_started:
                self._continuity_started = False
                self._continuity.stop()

    def _sink_for_health(self) -> object:
        return self._sink

    def _reader_waiting_since(self) -> float | None:
        return min((s.putting_since for s in self._sessions if s.putting_since is not None), default=None)

    def _holdup(self, now: float, stats: dict[str, Any]) -> str | None:
        # Waiting for the venue's connect rate is not silence either: a restart would only
        # queue the collector again at the back.
        held = super()._holdup(now, stats)
        if held is None and self._gate_waiting_since is not None:
            return (
                f"waiting {now - self._gate_waiting_since:.0f}s for the venue's connect rate (connect_rate)"
            )
        return held

    async def _collect(self) -> None:
        self._stopping.clear()
        if self._continuity is not None and not self._continuity_started:
            self._continuity_started = True
            self._continuity.start()
        async with asyncio.TaskGroup() as group:
            for sub in self.subscriptions:
                group.create_task(self._connection_loop(sub))

    async def _close_gracefully(self) -> None:
        # Closing makes recv() end after the frames already buffered, so the readers
        # finish their last put() and return on their own instead of being cancelled.
        # Connection loops in a reconnect backoff return at once.
        self._stopping.set()
        sessions = list(self._sessions)
        for session in sessions:
            session.end_reason = "stopping"
        if sessions:
            closing = [asyncio.create_task(s.ws.close()) for s in sessions]
            _done, pending = await asyncio.wait(closing, timeout=CLOSE_TIMEOUT * 2)
            for unfinished in pending:
                unfinished.cancel()
        collect = self._collect_task
        if collect is not None:
            await asyncio.wait([collect], timeout=DRAIN_TIMEOUT)

    # -- one connection --------------------------------------------------------------------
    def _backoff(self, failures: int) -> float:
        base = self.params.reconnect_delay * float(2 ** min(failures - 1, 30))
        return min(self.params.max_reconnect_delay, base) * (0.5 + random.random() / 2)

    async def _connection_loop(self, sub: Subscription) -> None:
        failures = 0
        while self._should_run:
            if failures:
                self.stats.reconnect_attempts += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._backoff(failures)):
                        await self._stopping.wait()
                if self._stopping.is_set():
                    return
            try:
                ws = await self._connect(sub.url)
            except _CONNECT_ERRORS as exc:
                if self._stopping.is_set():
                    return  # stopped while connecting or waiting for the connect rate
                failures += 1
                self._connect_failed(sub.url, failures, exc)
                continue
            if self._stopping.is_set():
                # Connected while the stop was closing the other sessions: nothing to read.
                with contextlib.suppress(Exception):
                    await ws.close()
                return
            try:
                session = await self._session(self._new_session(ws, sub), sub)
            finally:
                self.stats.connected_mono = None
            if not self._should_run or session.end_reason == "stopping":
                return
            # A connection that delivered frames was healthy: reconnect at once.
            failures = 0 if session.frames else failures + 1
            logger.warning(
                "%s: connection to %s ended (%s); reconnecting",
                self.name,
                sub.url,
                session.end_reason or "closed",
            )
            if failures:
                self._connect_failed(sub.url, failures, None)

    async def _connect(self, url: str) -> BatchClientConnection:
        """Open a connection once the venue's connect rate admits it; raises one of
        _CONNECT_ERRORS (a stop while waiting for the gate: ConnectionAbortedError)."""
        gate = gate_for(self.config.exchange, url, self.params.connect_rate)
        if gate is not None:
            await self._admitted_by(gate)
        return await connect(
            url,
            open_timeout=OPEN_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
            max_queue=MAX_QUEUE,
            max_size=self.params.max_message_bytes,
            # No permessage-deflate: CPU, not bandwidth, limits the collector, and
            # without an extension frames take the fast scan (frame_scan.py).
            compression=None,
        )

    async def _admitted_by(self, gate: SlidingWindow) -> None:
        admitted = asyncio.ensure_future(gate.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        self._gate_waits += 1
        if self._gate_waiting_since is None:
            self._gate_waiting_since = time.monotonic()
        try:
            await asyncio.wait({admitted, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._gate_waits -= 1
            if not self._gate_waits:
                self._gate_waiting_since = None
            stopping.cancel()
            if not admitted.done():
                admitted.cancel()
        if not admitted.done() or admitted.cancelled():
            raise ConnectionAbortedError("stopping while waiting for the venue's connect rate")

    def _new_session(self, ws: BatchClientConnection, sub: Subscription) -> _Session:
        ws.receive_linger = self.params.receive_linger
        session = _Session(ws)
        if sub.carries_trades and self._continuity is not None:
            session.trades = self._continuity.opened()
        ws.on_oversize = session.keep_oversize_head
        self._sessions.add(session)
        return session

    def _connect_failed(self, url: str, failures: int, exc: BaseException | None) -> None:
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else "closed before any frame"
        message = redact_text(f"connection to {url} failed ({failures} in a row): {detail}")
        self.stats.errors += 1
        self.stats.last_error = message
        logger.warning("%s: %s", self.name, message)
        if failures >= self.params.max_reconnect_attempts and not self.config.auto_restart:
            raise ExchangeError(f"{self.name}: giving up after {failures} failed connections")

    async def _session(self, session: _Session, sub: Subscription) -> _Session:
        """Subscribe and read `session` to its end; after a RECONNECT_SOON, its replacement
        in turn (make before break, _switch). Returns the session that ended last."""
        async with asyncio.TaskGroup() as readers:
            reader = readers.create_task(self._reader(session, sub), name=f"{self.name}-read")
            while (switched := await self._switch(session, reader, sub, readers)) is not None:
                session, reader = switched
        return session

    async def _reader(self, session: _Session, sub: Subscription) -> None:
        try:
            await self._subscribe_and_read(session, sub)
        finally:
            self._sessions.discard(session)
            if session.trades is not None and self._continuity is not None:
                self._continuity.ended(session.trades)
            with contextlib.suppress(Exception):
                await session.ws.close()

    async def _subscribe_and_read(self, session: _Session, sub: Subscription) -> None:
        ws = session.ws
        rate = self.params.max_messages_per_second
        try:
            for index, message in enumerate(sub.messages):
                if index and rate is not None:
                    await asyncio.sleep(1.0 / rate)  # the venue closes a connection that sends faster
                await ws.send(message)
        except ConnectionClosed as exc:
            session.end_reason = f"closed while subscribing: {exc}"
            return
        self.stats.connected_mono = time.monotonic()
        logger.info("%s: connected to %s, sent %d subscribe frame(s)", self.name, sub.url, len(sub.messages))
        keepalive = asyncio.create_task(self._keepalive(session), name=f"{self.name}-keepalive")
        try:
            await self._read(session)
        except ConnectionClosed as exc:
            session.end_reason = session.end_reason or f"connection closed: {exc}"
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                await self._message_too_big(session.oversize_head, exc.sent.reason)
        finally:
            keepalive.cancel()
            # asyncio.wait: unlike `suppress(CancelledError): await keepalive`, it does not
            # swallow a cancel aimed at this task (the collector being stopped).
            await asyncio.wait({keepalive})

    # -- make before break (RECONNECT_SOON) --------------------------------------------------
    async def _switch(
        self, old: _Session, reader: asyncio.Task[None], sub: Subscription, readers: asyncio.TaskGroup
    ) -> tuple[_Session, asyncio.Task[None]] | None:
        """Wait until `old` ends (None) or is told to move: then open and subscribe a
        replacement, read both until a trade arrived on both (handover.py), close `old` and
        return the replacement and its reader. Without a replacement, `old` is read to its
        end and None returned (the connection loop then reconnects as after any close)."""
        told = asyncio.ensure_future(old.moving.wait())
        age_limit = self.params.max_connection_age
        until_old = None if age_limit is None else max(0.0, old.opened + age_limit - time.monotonic())
        try:
            await asyncio.wait({reader, told}, timeout=until_old, return_when=asyncio.FIRST_COMPLETED)
        finally:
            told.cancel()
        if not reader.done() and not old.moving.is_set():
            logger.info(
                "%s: connection to %s is %.0fs old (connection.max_connection_age); replacing it",
                self.name,
                sub.url,
                time.monotonic() - old.opened,
            )
        if reader.done() or self._stopping.is_set():
            await asyncio.wait({reader})
            return None
        try:
            ws = await self._connect(sub.url)
        except _CONNECT_ERRORS as exc:
            if not self._stopping.is_set():  # a stop while waiting for the connect rate is no failure
                self._switch_failed(sub.url, f"{type(exc).__name__}: {exc}")
            await asyncio.wait({reader})
            return None
        if self._stopping.is_set():
            with contextlib.suppress(Exception):
                await ws.close()
            await asyncio.wait({reader})
            return None
        new = self._new_session(ws, sub)
        successor = readers.create_task(self._reader(new, sub), name=f"{self.name}-read")
        if not await self._overlap(old, reader, new, successor, sub.url):
            await asyncio.wait({reader})
            return None
        return new, successor

    async def _overlap(
        self,
        old: _Session,
        reader: asyncio.Task[None],
        new: _Session,
        successor: asyncio.Task[None],
        url: str,
    ) -> bool:
        """Read both connections until a trade arrived on both, the exchange closes the old one
        or HANDOVER_OVERLAP passes; then close the old one (its reader still takes every frame
        sent before the close). False: the replacement ended first, the old one goes on."""
        overlap = Overlap()
        old.on_rows, new.on_rows = overlap.old_delivered, overlap.new_delivered
        began = time.monotonic()
        found = asyncio.ensure_future(overlap.found.wait())
        try:
            await asyncio.wait(
                {reader, successor, found}, timeout=HANDOVER_OVERLAP, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            found.cancel()
            old.on_rows = new.on_rows = None
        log = logger.info
        if overlap.found.is_set():
            until = "a trade arrived on both"
        elif reader.done():
            # Rows between the old one's last and the new one's first may be on neither.
            until = "the exchange closed the old one before a trade arrived on both"
            log = logger.warning
        elif successor.done():
            if not self._stopping.is_set():
                self._switch_failed(url, new.end_reason or "closed")
            return False
        else:
            until = f"{HANDOVER_OVERLAP:.0f}s passed without a trade on both"
        if not reader.done():
            old.end_reason = "replaced by a new connection"
            with contextlib.suppress(Exception):
                await old.ws.close()
            await asyncio.wait({reader})
        self.stats.handovers += 1
        log(
            "%s: switched to a new connection to %s after %.3fs of reading both, once %s",
            self.name,
            url,
            time.monotonic() - began,
            until,
        )
        return True

    def _switch_failed(self, url: str, detail: str) -> None:
        self.stats.handover_failures += 1
        self.stats.errors += 1
        self.stats.last_error = redact_text(f"replacement connection to {url} failed: {detail}")
        logger.warning("%s: %s; reading the old connection to its end", self.name, self.stats.last_error)

    async def _keepalive(self, session: _Session) -> None:
        # Ping after ping_interval without receiving anything, and also after ping_interval
        # without sending anything: some servers (the OKX simulator among them) close a
        # connection whose client stayed silent, even while they stream data to it.
        # "Received" is when bytes last came from the socket (BatchClientConnection reads it
        # while the reader waits in put()); while the reader waits, or reading is paused
        # because our buffer is full, silence is our own doing and never times out.
        interval, timeout = self.params.ping_interval, self.params.pong_timeout
        ping = self._adapter.ping_text
        protocol_ping = self._adapter.keepalive is Keepalive.PROTOCOL_PING
        ws = session.ws
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
                    logger.warning("%s: %s; dropping the connection", self.name, session.end_reason)
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

    async def _read(self, session: _Session) -> None:
        """The hot loop: the inner body runs once per batch of received frames."""
        ws = session.ws
        parse_batch = self._adapter.parse_batch
        put = self._sink.put
        store_raw = self.config.store_raw_data
        stats = self.stats
        callbacks = self._callbacks
        monotonic = time.monotonic
        while True:
            # Bytes: orjson parses them directly, and bad UTF-8 becomes a dead letter
            # instead of a protocol error that would drop the connection. One await hands
            # over every message already received (frames before a close come first).
            frames = await ws.recv_batch(MAX_BATCH_FRAMES)
            now = monotonic()
            session.last_recv = now
            session.frames += len(frames)
            stats.messages_received += len(frames)
            stats.last_message_mono = now
            parsed = parse_batch(frames, store_raw)
            stats.messages_processed += len(frames) - parsed.rejected_frames
            session.putting_since = now  # from here to the end of the puts a wait is backpressure
            if parsed.rejected:
                await self._dead_letters(parsed.rejected)
            rows = parsed.rows
            if rows:
                stats.rows_received += len(rows)
                stats.last_data_mono = now
                if session.on_rows is not None:  # a switch is under way (_switch)
                    session.on_rows(rows)
                if session.trades is not None:  # before put: the gap check runs first
                    self._continuity.seen(session.trades, rows)  # type: ignore[union-attr]
                try:
                    await put(rows, ws.batch_since)
                except BaseException as exc:
                    # Only a timed-out or forced stop cancels a reader waiting on a full
                    # writer queue, or makes it put after the writer closed: say loudly
                    # what was received and never handed over.
                    stats.rows_lost += len(rows)
                    cancelled = isinstance(exc, asyncio.CancelledError)
                    why = "stop timed out" if cancelled else type(exc).__name__
                    logger.error(
                        "%s: %d received rows not handed to the writer (%s)", self.name, len(rows), why
                    )
                    raise
                if callbacks.wanted:
                    callbacks.offer(r for r in rows if callbacks.accepts(r))
            session.putting_since = None
            for control in parsed.controls:
                if self._on_control(control, now):
                    session.moving.set()  # reading goes on: _switch opens the replacement

    def _on_control(self, control: Control, now: float) -> bool:
        """Act on a control frame; True means: replace this connection (make before break)."""
        kind = control.kind
        if kind is ControlKind.PONG:
            self.stats.last_heartbeat_mono = now
        elif kind is ControlKind.SUBSCRIBED:
            logger.info("%s: subscribed: %s", self.name, control.detail)
        elif kind is ControlKind.ERROR:
            self.stats.errors += 1
            self._set_error(f"exchange error: {control.detail}")
        elif kind is ControlKind.RECONNECT_SOON:
            logger.info("%s: %s: %s", self.name, _RECONNECT_SOON, control.detail)
            return True
        else:
            logger.debug("%s: exchange info: %s", self.name, control.detail)
        return False

    async def _dead_letters(self, rejected: list[tuple[str | bytes, str]]) -> None:
        """Dead-letter what was refused (whole frames, single items of frames), within the
        per-hour cap; the rest is counted in dead_letters_dropped."""
        stats = self.stats
        cap = self._dead_letter_cap
        exchange = self._adapter.name
        letters = []
        for raw, reason in rejected:
            stats.errors += 1
            if cap.admit():
                letters.append(dead_letter(exchange, raw, reason))
            else:
                stats.dead_letters_dropped += 1
        stats.last_error = f"unparsable frame: {rejected[-1][1]}"
        logger.debug("%s: dead-lettering %d refused frame(s) or item(s)", self.name, len(rejected))
        if letters:
            stats.dead_letters += len(letters)
            await self._sink.put(letters)

    async def _message_too_big(self, head: bytes, detail: str) -> None:
        """A message over max_message_bytes closed the connection (1009): count it, keep its
        first bytes as a dead letter (the reconnect follows as for any close)."""
        self.stats.messages_too_big += 1
        reason = (
            f"message over max_message_bytes ({self.params.max_message_bytes}): {detail}; "
            f"connection closed with 1009 and reopened; "
            + (f"its first {len(head)} bytes kept" if head else "its bytes were not kept")
        )
        logger.warning("%s: %s", self.name, reason)
        await self._dead_letters([(head, reason)])
