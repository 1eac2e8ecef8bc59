"""A Link: one connection to one venue endpoint, carrying the subscriptions of many collectors.

Collectors keep the spec's shape (one symbol each, their own status, statistics, gap
detection and dead-letter caps) while their streams share connections: the LinkPool
(link_pool.py) puts each collector's Subscription on a link with room (the connection
setting pairs_per_connection, and the venue's streams per connection), and the link
connects, subscribes every member, keeps the connection alive and reconnects it, then
routes what it reads by symbol to the member collectors (from the moment a second member
joins, for the rest of the link's life: frames of a member that left may still arrive).

One link runs one connection at a time (two during a switch): connect (at the venue's
connect rate, connect_rate.py) -> send every member's subscribe frames, paced to
max_messages_per_second -> read. Reading is `recv_batch`, then the frames are grouped by
the adapter's `frame_route` (the symbol a frame is about, found without parsing it) and
each member gets its frames (`Receiver.deliver`: parse, count, put to the writer). On a
link that never had a second member no frame is routed: that member gets them all, control
frames included. Otherwise a frame that names no member's symbol (pongs, notices, request answers) is parsed
here: a request's answer goes to the member whose request it answers (by request id, or
by the symbol it names), a pong or notice concerns the connection.

A member joining an open connection has its frames sent on it (a collector's start, or its
restart after a silence, resubscribes without touching the other members); a member
leaving has its unsubscribe frames sent, and the last one to leave closes the connection.
A refused subscription is its member's error alone.

A private endpoint (a Subscription with a `login`) is logged in on every connection, the
replacement of a switch included, before any subscribe frame: the login frame is built at
that moment (venues sign it with the current time) and its answer awaited (LOGIN_TIMEOUT).
A refused login (LoginRefused) ends the link at once, with no reconnect: its members stop
with status error; a login that failed otherwise is retried like a failed connect.

Reconnects use jittered exponential backoff from reconnect_delay capped at
max_reconnect_delay. After `max_reconnect_attempts` consecutive failures the link gives
up (its members' collect tasks fail, status "error") unless auto_restart is on, in which
case it keeps trying at the capped delay. A connection that delivered frames resets the
failure count and is re-opened at once when it drops. A RECONNECT_SOON notice (the
exchange will close this connection) is make before break: the replacement is opened and
subscribed while the old connection is still read, and the old one is closed once a trade
arrived on both for every member with trades, or after HANDOVER_OVERLAP (handover.py). A
connection older than the venue's max_connection_age is replaced the same way. Only
members whose connection settings are equal share a link (link_pool.py): the settings
above are the link's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import CloseCode

from ingest.collector.batch_receiver import BatchClientConnection
from ingest.collector.connect_rate import gate_for
from ingest.collector.continuity import SessionTrades
from ingest.collector.handover import HANDOVER_OVERLAP, Overlap
from ingest.collector.keepalive import keep_alive
from ingest.collector.link_member import Dial, Member, Receiver, backoff
from ingest.collector.params import CollectorParams
from ingest.collector.stats import wall_iso
from ingest.errors import ExchangeError, LoginRefused
from ingest.exchanges.base import Control, ControlKind, ExchangeAdapter, Login, Subscription
from ingest.redact import redact_text
from ingest.rows import Row
from ingest.sliding_window import SlidingWindow

logger = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0
# Seconds a private endpoint has to answer the login (Subscription.login).
LOGIN_TIMEOUT = 10.0
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
_CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake, InvalidURI)


@dataclass(slots=True, eq=False)
class _Session:
    """One connection of a link: its clocks, its members' trade sessions, its outgoing frames."""

    ws: BatchClientConnection
    opened: float = field(default_factory=time.monotonic)
    last_recv: float = field(default_factory=time.monotonic)
    frames: int = 0
    end_reason: str = ""
    oversize_head: bytes = b""  # first bytes of a message refused for its size (1009)
    putting_since: float | None = None  # a member waits in the sink's put() since then
    moving: asyncio.Event = field(default_factory=asyncio.Event)  # RECONNECT_SOON received
    subscribing: bool = True  # the first frames (every member's) are still being sent
    trades: dict[Member, SessionTrades] = field(default_factory=dict)  # gap detection, per member
    # During a switch: per member with trades, where its rows go to find the overlap.
    on_rows: dict[Member, Callable[[Sequence[Row]], None]] | None = None
    outbox: deque[tuple[tuple[Member, ...], str]] = field(default_factory=deque)
    outbox_ready: asyncio.Event = field(default_factory=asyncio.Event)
    # Request ids of the combined subscribe frames sent at the start, and their members.
    groups: dict[str, tuple[Member, ...]] = field(default_factory=dict)

    def keep_oversize_head(self, head: bytes, _declared_length: int) -> None:
        self.oversize_head = head

    def queue(self, members: tuple[Member, ...], messages: Sequence[str]) -> None:
        """Send `messages` (subscribing `members`, or, with none, unsubscribing)."""
        for message in messages:
            self.outbox.append((members, message))
        # The members' marker: their frames were sent (Receiver.subscribed).
        if members:
            self.outbox.append((members, ""))
        self.outbox_ready.set()


class Link:
    """One connection slot to `url` for the members the pool gives it."""

    def __init__(
        self,
        ident: str,
        exchange: str,
        url: str,
        adapter: ExchangeAdapter,
        params: CollectorParams,
        auto_restart: bool,
        dial: Dial,
        on_empty: Callable[[Link], None],
    ) -> None:
        self.ident = ident
        self.exchange = exchange
        self.url = url
        self.params = params
        self._adapter = adapter
        self._auto_restart = auto_restart
        self._dial = dial
        self._on_empty = on_empty  # called once the link has ended (the pool forgets it)
        self.members: dict[Member, None] = {}  # in joining order
        self._by_key: dict[bytes, Member] = {}
        self._by_request: dict[str, Member] = {}
        self.streams = 0
        self._sessions: set[_Session] = set()
        self._stopping = asyncio.Event()  # wakes a connection loop sleeping in backoff
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0
        self.connected_mono: float | None = None
        self.gate_waiting_since: float | None = None
        self.unclaimed_frames = 0  # frames about a symbol no member collects (just left)
        # Once a second member joined, frames are routed for the rest of the link's life:
        # a member that left may still have frames in flight (its trades, its unsubscribe
        # answer), and they are not the remaining member's.
        self._shared = False
        self.last_routed: float | None = None  # when frames last went to a member by symbol

    # -- members ---------------------------------------------------------------------------
    def has_room(self, sub: Subscription, key: bytes, max_streams: int | None) -> bool:
        if self._stopping.is_set() or key in self._by_key:
            return False
        if len(self.members) >= self.params.pairs_per_connection:
            return False
        return max_streams is None or self.streams + sub.streams <= max_streams

    def add(self, receiver: Receiver, sub: Subscription, key: bytes) -> Member:
        member = Member(receiver, sub, key, self)
        member.idle.set()
        self.members[member] = None
        self._shared = self._shared or len(self.members) > 1
        self._by_key[key] = member
        for request_id in sub.request_ids:
            self._by_request[request_id] = member
        self.streams += sub.streams
        for session in self._sessions:
            self._open_trades(session, member)
            session.queue((member,), sub.messages)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"tcpd-link-{self.ident}")
        return member

    async def release(self, member: Member) -> None:
        """A member leaves politely: frames already received for it are still delivered.
        The last member closes the connection and lets the reader finish what it holds."""
        if member not in self.members:
            return
        if len(self.members) > 1:
            self._unregister(member, unsubscribe=True)
            await member.idle.wait()
            self._settle(member, None)
            return
        self._stopping.set()
        sessions = list(self._sessions)
        for session in sessions:
            session.end_reason = "stopping"
        if sessions:
            closing = [asyncio.create_task(s.ws.close()) for s in sessions]
            _done, pending = await asyncio.wait(closing, timeout=CLOSE_TIMEOUT * 2)
            for unfinished in pending:
                unfinished.cancel()
        task = self._task
        if task is not None:
            await asyncio.wait([task], timeout=DRAIN_TIMEOUT)
        self.detach(member)

    def resync(self, member: Member) -> None:
        """Send `member`'s resync frames (unsubscribe and subscribe again its incremental
        book streams only; the venue answers with a fresh snapshot) on every connection
        that carries them."""
        if member not in self.members or not member.sub.resync:
            return
        for session in self._sessions:
            session.queue((), member.sub.resync)

    def detach(self, member: Member) -> None:
        """A member leaves at once (its collect task ends or is cancelled); the last one
        cancels the link's reading."""
        if member not in self.members:
            return
        last = len(self.members) == 1
        self._unregister(member, unsubscribe=not last)
        self._settle(member, None)
        if last:
            self._stopping.set()
            if self._task is not None and not self._task.done():
                self._task.cancel()

    def _unregister(self, member: Member, unsubscribe: bool) -> None:
        del self.members[member]
        if self._by_key.get(member.key) is member:
            del self._by_key[member.key]
        for request_id in member.sub.request_ids:
            if self._by_request.get(request_id) is member:
                del self._by_request[request_id]
        self.streams -= member.sub.streams
        for session in self._sessions:
            trades = session.trades.pop(member, None)
            if trades is not None:
                member.receiver.trades_ended(trades)
            if session.on_rows is not None:
                session.on_rows.pop(member, None)
            if unsubscribe and member.sub.unsubscribe:
                session.queue((), member.sub.unsubscribe)

    @staticmethod
    def _settle(member: Member, error: BaseException | None) -> None:
        if member.outcome.done():
            return
        if error is None:
            member.outcome.set_result(None)
        else:
            member.outcome.set_exception(error)

    # -- status ----------------------------------------------------------------------------
    def describe(self, now: float) -> dict[str, Any]:
        """This connection as a member's status shows it."""
        return {
            "id": self.ident,
            "url": self.url,
            "pairs": len(self.members),
            "streams": self.streams,
            "connected_since": wall_iso(self.connected_mono),
            "reconnects": self.reconnects,
            "waiting_for_connect_rate": None
            if self.gate_waiting_since is None
            else round(now - self.gate_waiting_since, 3),
            "unclaimed_frames": self.unclaimed_frames,
        }

    @property
    def last_received(self) -> float | None:
        return max((s.last_recv for s in self._sessions), default=None)

    @property
    def putting_since(self) -> float | None:
        return min((s.putting_since for s in self._sessions if s.putting_since is not None), default=None)

    # -- the connection loop ---------------------------------------------------------------
    async def _run(self) -> None:
        error: ExchangeError | None = None
        try:
            await self._connection_loop()
        except Exception as exc:
            # A replacement connection's login refused inside the readers' TaskGroup
            # arrives in an ExceptionGroup.
            while isinstance(exc, ExceptionGroup) and exc.exceptions:
                exc = exc.exceptions[0]
            if isinstance(exc, ExchangeError):
                error = exc
            else:  # a bug must not leave members waiting forever
                logger.error("%s: connection loop failed", self.ident, exc_info=exc)
                error = ExchangeError(f"{self.ident}: connection loop failed: {type(exc).__name__}: {exc}")
        finally:
            leaving = self._stopping.is_set()  # the last member is leaving: it detaches itself
            self._stopping.set()
            self._on_empty(self)
            if error is not None or not leaving:
                ended = error or ExchangeError(f"{self.ident}: the connection to {self.url} ended")
                for member in list(self.members):
                    self._unregister(member, unsubscribe=False)
                    self._settle(member, ended)

    def _each(self) -> list[Receiver]:
        return [m.receiver for m in self.members]

    async def _connection_loop(self) -> None:
        failures = 0
        while self.members and not self._stopping.is_set():
            if failures:
                self.reconnects += 1
                for receiver in self._each():
                    receiver.reconnecting()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff(failures, self.params)):
                        await self._stopping.wait()
                if self._stopping.is_set():
                    return
            try:
                ws = await self._connect()
            except _CONNECT_ERRORS as exc:
                if self._stopping.is_set():
                    return  # stopped while connecting or waiting for the connect rate
                failures += 1
                self._connect_failed(failures, exc)
                continue
            if self._stopping.is_set() or not self.members:
                # Connected while the last member was leaving: nothing to read.
                with contextlib.suppress(Exception):
                    await ws.close()
                return
            try:
                session = await self._session(self._new_session(ws))
            finally:
                self.connected_mono = None
                for receiver in self._each():
                    receiver.disconnected()
            if self._stopping.is_set() or session.end_reason == "stopping" or not self.members:
                return
            # A connection that delivered frames was healthy: reconnect at once.
            failures = 0 if session.frames else failures + 1
            if not failures:
                self.reconnects += 1
            logger.warning(
                "%s: connection to %s ended (%s); reconnecting",
                self.ident,
                self.url,
                session.end_reason or "closed",
            )
            if failures:
                self._connect_failed(failures, None)

    async def _connect(self) -> BatchClientConnection:
        """Open a connection once the venue's connect rate admits it; raises one of
        _CONNECT_ERRORS (a stop while waiting for the gate: ConnectionAbortedError)."""
        gate = gate_for(self.exchange, self.url, self.params.connect_rate)
        if gate is not None:
            await self._admitted_by(gate)
        ws = await self._dial(
            self.url,
            open_timeout=OPEN_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
            max_queue=MAX_QUEUE,
            max_size=self.params.max_message_bytes,
            # No permessage-deflate: CPU, not bandwidth, limits the collector, and
            # without an extension frames take the fast scan (frame_scan.py).
            compression=None,
        )
        login = next((m.sub.login for m in self.members if m.sub.login is not None), None)
        if login is not None:
            try:
                await self._log_in(ws, login)
            except BaseException:
                with contextlib.suppress(Exception):
                    await ws.close()
                raise
        return ws

    async def _log_in(self, ws: BatchClientConnection, login: Login) -> None:
        """Send the login frame (signed now) and wait for its answer: nothing else is sent
        before it, so the venue sends nothing but the answer (and perhaps a notice).
        LoginRefused when the venue refuses the credentials; a retryable failure (no answer,
        a close, an error worth a retry) is a ConnectionError, retried like a failed connect."""
        try:
            await ws.send(login.frame())
            async with asyncio.timeout(LOGIN_TIMEOUT):
                while True:
                    for frame in await ws.recv_batch(MAX_BATCH_FRAMES):
                        answer = login.answer(frame)
                        if answer is None:
                            logger.debug("%s: frame before the login answer ignored", self.ident)
                        elif answer.kind is ControlKind.LOGGED_IN:
                            logger.info("%s: logged in to %s", self.ident, self.url)
                            return
                        elif answer.kind is ControlKind.REFUSED:
                            raise LoginRefused(
                                redact_text(f"login to {self.url} refused: {answer.detail}; not reconnecting")
                            )
                        else:
                            raise ConnectionError(redact_text(f"login failed: {answer.detail}"))
        except TimeoutError:
            raise ConnectionError(f"no answer to the login within {LOGIN_TIMEOUT:.0f}s") from None
        except ConnectionClosed as exc:
            raise ConnectionError(redact_text(f"connection closed during the login: {exc}")) from None

    async def _admitted_by(self, gate: SlidingWindow) -> None:
        admitted = asyncio.ensure_future(gate.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        self.gate_waiting_since = time.monotonic()
        try:
            await asyncio.wait({admitted, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.gate_waiting_since = None
            stopping.cancel()
            if not admitted.done():
                admitted.cancel()
        if not admitted.done() or admitted.cancelled():
            raise ConnectionAbortedError("stopping while waiting for the venue's connect rate")

    def _new_session(self, ws: BatchClientConnection) -> _Session:
        ws.receive_linger = self.params.receive_linger
        session = _Session(ws)
        ws.on_oversize = session.keep_oversize_head
        members = tuple(self.members)
        for member in members:
            self._open_trades(session, member)
        if len(members) == 1:
            session.queue(members, members[0].sub.messages)
        elif members:
            # One request for all (Binance: 4 frames a second would take 12 s for 50 pairs);
            # a refusal of it is retried pair by pair (_on_control) to find whose it is.
            combined = self._adapter.combine([m.sub for m in members])
            session.queue(members, combined.messages)
            for request_id in combined.request_ids:
                session.groups[request_id] = members
        self._sessions.add(session)
        return session

    @staticmethod
    def _open_trades(session: _Session, member: Member) -> None:
        if member.sub.carries_trades:
            trades = member.receiver.trades_opened()
            if trades is not None:
                session.trades[member] = trades

    def _connect_failed(self, failures: int, exc: BaseException | None) -> None:
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else "closed before any frame"
        message = redact_text(f"connection to {self.url} failed ({failures} in a row): {detail}")
        logger.warning("%s: %s", self.ident, message)
        for receiver in self._each():
            receiver.connection_failed(message)
        if failures >= self.params.max_reconnect_attempts and not self._auto_restart:
            raise ExchangeError(f"{self.ident}: giving up after {failures} failed connections to {self.url}")

    async def _session(self, session: _Session) -> _Session:
        """Subscribe and read `session` to its end; after a RECONNECT_SOON, its replacement
        in turn (make before break, _switch). Returns the session that ended last."""
        async with asyncio.TaskGroup() as readers:
            reader = readers.create_task(self._reader(session), name=f"{self.ident}-read")
            while (switched := await self._switch(session, reader, readers)) is not None:
                session, reader = switched
        return session

    async def _reader(self, session: _Session) -> None:
        try:
            await self._subscribe_and_read(session)
        finally:
            self._sessions.discard(session)
            for member, trades in session.trades.items():
                member.receiver.trades_ended(trades)
            session.trades.clear()
            with contextlib.suppress(Exception):
                await session.ws.close()

    async def _subscribe_and_read(self, session: _Session) -> None:
        sender = asyncio.create_task(self._send_outbox(session), name=f"{self.ident}-send")
        keepalive = asyncio.create_task(
            keep_alive(session, session.ws, self.params, self._adapter, self.ident),
            name=f"{self.ident}-keepalive",
        )
        try:
            await self._read(session)
        except ConnectionClosed as exc:
            session.end_reason = session.end_reason or f"connection closed: {exc}"
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                await self._message_too_big(session.oversize_head, exc.sent.reason)
        finally:
            keepalive.cancel()
            sender.cancel()
            # asyncio.wait: unlike `suppress(CancelledError): await task`, it does not
            # swallow a cancel aimed at this task (the link being stopped).
            await asyncio.wait({keepalive, sender})

    async def _send_outbox(self, session: _Session) -> None:
        """Send the session's queued frames, paced to max_messages_per_second (the venue
        closes a connection that sends faster)."""
        ws = session.ws
        rate = self.params.max_messages_per_second
        sent = 0
        try:
            while True:
                while session.outbox:
                    members, message = session.outbox.popleft()
                    if not message:  # the members' frames are all out
                        now = time.monotonic()
                        for member in members:
                            if member in self.members:
                                member.receiver.subscribed(member, now)
                        continue
                    if sent and rate is not None:
                        await asyncio.sleep(1.0 / rate)
                    await ws.send(message)
                    sent += 1
                if session.subscribing:
                    session.subscribing = False
                    self.connected_mono = time.monotonic()
                    logger.info(
                        "%s: connected to %s, %d pair(s), sent %d frame(s)",
                        self.ident,
                        self.url,
                        len(self.members),
                        sent,
                    )
                session.outbox_ready.clear()
                await session.outbox_ready.wait()
        except ConnectionClosed as exc:
            session.end_reason = session.end_reason or f"closed while sending: {exc}"

    # -- make before break (RECONNECT_SOON) --------------------------------------------------
    async def _switch(
        self, old: _Session, reader: asyncio.Task[None], readers: asyncio.TaskGroup
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
                self.ident,
                self.url,
                time.monotonic() - old.opened,
            )
        if reader.done() or self._stopping.is_set():
            await asyncio.wait({reader})
            return None
        try:
            ws = await self._connect()
        except _CONNECT_ERRORS as exc:
            if not self._stopping.is_set():  # a stop while waiting for the connect rate is no failure
                self._switch_failed(f"{type(exc).__name__}: {exc}")
            await asyncio.wait({reader})
            return None
        if self._stopping.is_set():
            with contextlib.suppress(Exception):
                await ws.close()
            await asyncio.wait({reader})
            return None
        new = self._new_session(ws)
        successor = readers.create_task(self._reader(new), name=f"{self.ident}-read")
        if not await self._overlap(old, reader, new, successor):
            await asyncio.wait({reader})
            return None
        return new, successor

    async def _overlap(
        self, old: _Session, reader: asyncio.Task[None], new: _Session, successor: asyncio.Task[None]
    ) -> bool:
        """Read both connections until, for every member with trades, a trade arrived on
        both; or the exchange closes the old one, or HANDOVER_OVERLAP passes. Then close the
        old one (its reader still takes every frame sent before the close). False: the
        replacement ended first, the old one goes on."""
        overlaps = {member: Overlap() for member in self.members if member.sub.carries_trades}
        old.on_rows = {member: overlap.old_delivered for member, overlap in overlaps.items()}
        new.on_rows = {member: overlap.new_delivered for member, overlap in overlaps.items()}
        began = time.monotonic()
        found = asyncio.ensure_future(_all_found(overlaps))
        try:
            await asyncio.wait(
                {reader, successor, found}, timeout=HANDOVER_OVERLAP, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            found.cancel()
            old.on_rows = new.on_rows = None
        log = logger.info
        if found.done() and not found.cancelled():
            until = "a trade arrived on both" if overlaps else "no member carries trades"
        elif reader.done():
            # Rows between the old one's last and the new one's first may be on neither.
            until = "the exchange closed the old one before a trade arrived on both"
            log = logger.warning
        elif successor.done():
            if not self._stopping.is_set():
                self._switch_failed(new.end_reason or "closed")
            return False
        else:
            until = f"{HANDOVER_OVERLAP:.0f}s passed without a trade on both for every pair"
        if not reader.done():
            old.end_reason = "replaced by a new connection"
            with contextlib.suppress(Exception):
                await old.ws.close()
            await asyncio.wait({reader})
        for receiver in self._each():
            receiver.switched(None)
        log(
            "%s: switched to a new connection to %s after %.3fs of reading both, once %s",
            self.ident,
            self.url,
            time.monotonic() - began,
            until,
        )
        return True

    def _switch_failed(self, detail: str) -> None:
        message = redact_text(f"replacement connection to {self.url} failed: {detail}")
        logger.warning("%s: %s; reading the old connection to its end", self.ident, message)
        for receiver in self._each():
            receiver.switched(message)

    # -- reading ---------------------------------------------------------------------------
    async def _read(self, session: _Session) -> None:
        """The hot loop: the inner body runs once per batch of received frames."""
        ws = session.ws
        route = self._adapter.frame_route
        by_key = self._by_key
        monotonic = time.monotonic
        while True:
            # Bytes: orjson parses them directly, and bad UTF-8 becomes a dead letter
            # instead of a protocol error that would drop the connection. One await hands
            # over every message already received (frames before a close come first).
            frames = await ws.recv_batch(MAX_BATCH_FRAMES)
            now = monotonic()
            session.last_recv = now
            session.frames += len(frames)
            since = ws.batch_since
            session.putting_since = now  # from here to the end of the puts a wait is backpressure
            moving = False
            if not self._shared and self.members:
                moving = await self._deliver(session, next(iter(self.members)), frames, now, since)
            else:
                groups: dict[Member, list[bytes]] = {}
                unrouted: list[bytes] = []
                for frame in frames:
                    member = by_key.get(route(frame))  # type: ignore[arg-type]
                    if member is None:
                        unrouted.append(frame)
                    elif member in groups:
                        groups[member].append(frame)
                    else:
                        groups[member] = [frame]
                if groups:
                    self.last_routed = now
                for member, mine in groups.items():
                    moving |= await self._deliver(session, member, mine, now, since)
                if unrouted:
                    moving |= await self._unrouted(session, unrouted, now)
            session.putting_since = None
            if moving:
                session.moving.set()  # reading goes on: _switch opens the replacement

    async def _deliver(
        self, session: _Session, member: Member, frames: list[bytes], now: float, since: float
    ) -> bool:
        member.delivering += 1
        member.idle.clear()
        try:
            on_rows = None if session.on_rows is None else session.on_rows.get(member)
            return await member.receiver.deliver(frames, now, since, session.trades.get(member), on_rows)
        finally:
            member.delivering -= 1
            if not member.delivering:
                member.idle.set()

    async def _unrouted(self, session: _Session, frames: list[bytes], now: float) -> bool:
        """Frames that name no member's symbol: answers, pongs, notices, malformed frames,
        or data of a symbol whose member just left (counted as unclaimed, not stored)."""
        parsed = self._adapter.parse_batch(frames, False)
        moving = False
        for control in parsed.controls:
            moving |= self._on_control(session, control, now)
        if parsed.rows:
            self.unclaimed_frames += len(frames) - parsed.rejected_frames - len(parsed.controls)
            logger.debug("%s: %d row(s) of symbols no member collects now", self.ident, len(parsed.rows))
        if parsed.rejected and self.members:
            # Nobody's in particular: the first member keeps them (its cap, its counters).
            await next(iter(self.members)).receiver.dead_letters(parsed.rejected)
        return moving

    def _on_control(self, session: _Session, control: Control, now: float) -> bool:
        """A control frame that named no member's symbol."""
        kind = control.kind
        if kind is ControlKind.RECONNECT_SOON:
            logger.info("%s: exchange announced a reconnect: %s", self.ident, control.detail)
            return True
        group = session.groups.pop(control.request_id, None) if control.request_id is not None else None
        if group is not None:
            self._group_answered(session, group, control)
            return False
        if kind in (ControlKind.SUBSCRIBED, ControlKind.ERROR) and control.request_id is not None:
            member = self._by_request.get(control.request_id)
            if member is not None:
                member.receiver.on_control(control, now)
                return False
        if kind is ControlKind.PONG or kind is ControlKind.INFO:
            for receiver in self._each():
                receiver.on_control(control, now)
            return False
        if kind is ControlKind.ERROR:
            logger.warning("%s: exchange error naming no pair: %s", self.ident, control.detail)
            for receiver in self._each():
                receiver.on_control(control, now)
        return False

    def _group_answered(self, session: _Session, group: tuple[Member, ...], control: Control) -> None:
        if control.kind is not ControlKind.ERROR:
            logger.info("%s: %d pair(s) subscribed: %s", self.ident, len(group), control.detail)
            return
        # Whose streams were refused is not said: each pair asks alone, and the refusal of
        # its own request goes to it (by its request id).
        members = tuple(m for m in group if m in self.members)
        logger.warning(
            "%s: the subscribe request of %d pair(s) was refused (%s); subscribing each alone",
            self.ident,
            len(members),
            control.detail,
        )
        for member in members:
            session.queue((member,), member.sub.messages)

    async def _message_too_big(self, head: bytes, detail: str) -> None:
        member = self._by_key.get(self._adapter.frame_route(head) or b"")
        if member is None and self.members:
            member = next(iter(self.members))
        if member is not None:
            await member.receiver.message_too_big(head, detail)


async def _all_found(overlaps: dict[Member, Overlap]) -> None:
    for overlap in overlaps.values():
        await overlap.found.wait()
