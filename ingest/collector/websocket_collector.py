"""The generic WebSocket collector: one symbol of one exchange through the exchange's adapter.

The collector owns what is the trading pair's: its status and statistics, its gap detection
(continuity.py), its dead-letter cap, its data callbacks and its sink. Connections are
shared: each Subscription the adapter returns (OKX: public, plus business for candles)
joins a link (link.py) that the pool (link_pool.py) shares among the collectors of one
venue endpoint, up to pairs_per_connection of them. The link connects, subscribes, keeps
the connection alive, reconnects and switches connections (make before break), and hands
the collector the frames that are about its symbol (`deliver`): parse -> count -> check
continuity -> put to the sink. With pairs_per_connection 1 every collector has its own
connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ingest.collector.base import BaseDataCollector
from ingest.collector.continuity import SessionTrades, TradeContinuity
from ingest.collector.link_member import Member
from ingest.collector.link_pool import pool_for_loop
from ingest.collector.params import CollectorParams
from ingest.collector.sink import RowSink
from ingest.collector.stats import silent_since, since
from ingest.config.secrets import ExchangeCredentials
from ingest.dead_letters import DeadLetterCap, dead_letter
from ingest.exchanges.base import Control, ControlKind, ExchangeAdapter, Subscription
from ingest.model import ExchangeCollectorConfig
from ingest.rows import Row

logger = logging.getLogger(__name__)

_RECONNECT_SOON = "exchange announced a reconnect"


class WebSocketCollector(BaseDataCollector):
    """Collects one symbol from one exchange through the exchange's adapter."""

    def __init__(
        self,
        config: ExchangeCollectorConfig,
        params: CollectorParams,
        adapter: ExchangeAdapter,
        sink: RowSink,
        continuity: TradeContinuity | None = None,
        credentials: ExchangeCredentials | None = None,
    ) -> None:
        super().__init__(config, params)
        self._adapter = adapter
        self._sink = sink
        self._continuity = continuity  # None: gaps are neither looked for nor filled
        self._continuity_started = False
        # Pure computation (no I/O): fails early, with a ConfigError, on bad channels/URLs,
        # or on a private data type without `credentials` (the venue's, from the environment).
        self.subscriptions: list[Subscription] = adapter.subscriptions(
            config.symbol, config.data_types, params.channels, params.urls, credentials
        )
        self._route_key = adapter.route_key(config.symbol)
        adapter.set_book_snapshot_interval(params.book_snapshot_interval)
        self._members: list[Member] = []
        self._dead_letter_cap = DeadLetterCap(self.name, params.dead_letters_per_hour)

    async def stop(self, force: bool = False) -> None:
        try:
            await super().stop(force)
        finally:
            if self._continuity is not None and self._continuity_started:
                self._continuity_started = False
                self._continuity.stop()

    # -- health and status -----------------------------------------------------------------
    def _sink_for_health(self) -> object:
        return self._sink

    def _reader_waiting_since(self) -> float | None:
        waits = [m.link.putting_since for m in self._members]
        return min((w for w in waits if w is not None), default=None)

    def _holdup(self, now: float, stats: dict[str, Any]) -> str | None:
        # Waiting for the venue's connect rate is not silence either: a restart would only
        # queue the collector again at the back.
        held = super()._holdup(now, stats)
        if held is not None:
            return held
        waiting = [m.link.gate_waiting_since for m in self._members if m.link.gate_waiting_since is not None]
        if waiting:
            return f"waiting {now - min(waiting):.0f}s for the venue's connect rate (connect_rate)"
        # A quiet pair on a connection that other pairs' data proves alive: resubscribing
        # would not bring trades nobody makes, and venues count subscribe requests (OKX:
        # 480 an hour per connection).
        silent = since(silent_since(self.stats), now)
        if silent is None or silent <= self.params.max_silence:
            return None
        for member in self._members:
            link = member.link
            routed = link.last_routed
            if len(link.members) > 1 and routed is not None and now - routed < self.params.max_silence:
                return (
                    f"no data for {silent:.1f}s: the pair is quiet, its connection {link.ident} "
                    f"delivers other pairs' data ({now - routed:.1f}s ago); not resubscribing"
                )
        return None

    def _last_heartbeat(self) -> float | None:
        # A connection shared with busy pairs proves itself alive by their frames too.
        marks = [m.link.last_received for m in self._members]
        own = super()._last_heartbeat()
        return max((m for m in (own, *marks) if m is not None), default=None)

    def get_status(self) -> dict[str, Any]:
        """The spec's status dictionary plus `connections`: each connection carrying this
        pair (its id, URL, pairs and streams on it, since when connected, reconnects)."""
        status = super().get_status()
        now = time.monotonic()
        status["connections"] = [m.link.describe(now) for m in self._members]
        return status

    # -- lifecycle -------------------------------------------------------------------------
    async def _collect(self) -> None:
        if self._continuity is not None and not self._continuity_started:
            self._continuity_started = True
            self._continuity.start()
        pool = pool_for_loop()
        members = [
            pool.join(self, sub, self._route_key, self._adapter, self.params, self.config)
            for sub in self.subscriptions
        ]
        self._members = members
        try:
            await asyncio.gather(*(m.outcome for m in members))
        finally:
            for member in members:
                member.link.detach(member)
            if self._members is members:
                self._members = []

    async def _close_gracefully(self) -> None:
        # The link delivers what it already received for this pair, then the pair leaves
        # (its unsubscribe frames sent; the last pair of a connection closes it).
        members = list(self._members)
        if members:
            await asyncio.gather(*(m.link.release(m) for m in members))
        collect = self._collect_task
        if collect is not None:
            await asyncio.wait([collect], timeout=1.0)

    # -- what the link reports (link.Receiver) ---------------------------------------------
    def subscribed(self, member: Member, now: float) -> None:
        self.stats.connected_mono = now
        logger.info("%s: subscribed on %s (%s)", self.name, member.link.ident, member.sub.url)

    def connection_failed(self, message: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = message

    def reconnecting(self) -> None:
        self.stats.reconnect_attempts += 1

    def disconnected(self) -> None:
        self.stats.connected_mono = None

    def switched(self, failed: str | None) -> None:
        if failed is None:
            self.stats.handovers += 1
            return
        self.stats.handover_failures += 1
        self.stats.errors += 1
        self.stats.last_error = failed

    def trades_opened(self) -> SessionTrades | None:
        return None if self._continuity is None else self._continuity.opened()

    def trades_ended(self, trades: SessionTrades) -> None:
        if self._continuity is not None:
            self._continuity.ended(trades)

    async def deliver(
        self,
        frames: list[bytes],
        now: float,
        since: float,
        trades: SessionTrades | None,
        on_rows: Callable[[Sequence[Row]], None] | None,
    ) -> bool:
        """The hot path: parse this pair's frames, count them, check continuity, put the rows."""
        stats = self.stats
        stats.messages_received += len(frames)
        stats.last_message_mono = now
        parsed = self._adapter.parse_batch(frames, self.config.store_raw_data)
        stats.messages_processed += len(frames) - parsed.rejected_frames
        stats.book_updates_dropped += parsed.book_updates_dropped
        if parsed.rejected:
            await self.dead_letters(parsed.rejected)
        rows = parsed.rows
        if rows:
            stats.rows_received += len(rows)
            stats.last_data_mono = now
            if on_rows is not None:  # a switch is under way (link.py)
                on_rows(rows)
            if trades is not None:  # before put: the gap check runs first
                self._continuity.seen(trades, rows)  # type: ignore[union-attr]
            try:
                await self._sink.put(rows, since)
            except BaseException as exc:
                # Only a timed-out or forced stop cancels a reader waiting on a full
                # writer queue, or makes it put after the writer closed: say loudly
                # what was received and never handed over.
                stats.rows_lost += len(rows)
                cancelled = isinstance(exc, asyncio.CancelledError)
                why = "stop timed out" if cancelled else type(exc).__name__
                logger.error("%s: %d received rows not handed to the writer (%s)", self.name, len(rows), why)
                raise
            callbacks = self._callbacks
            if callbacks.wanted:
                callbacks.offer(r for r in rows if callbacks.accepts(r))
        moving = False
        for control in parsed.controls:
            moving |= self.on_control(control, now)
        return moving

    def on_control(self, control: Control, now: float) -> bool:
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
        elif kind is ControlKind.RESYNC:
            self.stats.book_gaps += 1
            logger.warning("%s: %s; resubscribing for a fresh snapshot", self.name, control.detail)
            for member in self._members:
                member.link.resync(member)
        else:
            logger.debug("%s: exchange info: %s", self.name, control.detail)
        return False

    async def dead_letters(self, rejected: list[tuple[str | bytes, str]]) -> None:
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

    async def message_too_big(self, head: bytes, detail: str) -> None:
        """A message over max_message_bytes closed the connection (1009): count it, keep its
        first bytes as a dead letter (the reconnect follows as for any close)."""
        self.stats.messages_too_big += 1
        reason = (
            f"message over max_message_bytes ({self.params.max_message_bytes}): {detail}; "
            f"connection closed with 1009 and reopened; "
            + (f"its first {len(head)} bytes kept" if head else "its bytes were not kept")
        )
        logger.warning("%s: %s", self.name, reason)
        await self.dead_letters([(head, reason)])
