"""TradeContinuity: one collector's trades, kept without holes across connections (docs/gaps.md).

The collector reports the trades of every connection that carries them (seen(), before they
are put to the writer) and when a connection ends (ended()). From that:

- a connection's first trade is compared with the newest trade before it: the last one of the
  connection that ended before, or at start-up the newest one stored. When fills are missing
  in between, the GapFiller gets (after, before) and fetches them from REST. The live stream
  runs first and the gap is bounded by its first trade, so no trade can fall between the two;
- between a connection's end and the next one's first trade, the symbol's watermark is held
  at the last trade (candles after it stay hidden); the hold goes to the filler with the gap,
  or is released when there is none;
- during a make-before-break switch two connections run at once: the new one's first trade
  is compared with the old one's last when the old one ends (REASON_HANDOVER if they do not
  meet);
- at start-up the watermark is frozen until the newest stored trade is known (after the spool
  has replayed what the last run left).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ingest.history.gapfill import REASON_HANDOVER, REASON_RECONNECT, REASON_RESTART, GapFiller, Point, utc
from ingest.rows import Row, TradeRow
from ingest.storage.watermarks import Hold

logger = logging.getLogger(__name__)


class Holder(Protocol):
    """The writer's watermark holds (CopyWriter.hold/release)."""

    def hold(self, exchange: str, symbol: str, at: datetime | None) -> Hold: ...

    def release(self, hold: Hold) -> None: ...


@dataclass(slots=True, eq=False)
class SessionTrades:
    """The trades one connection delivered: its first fill and its newest trade."""

    first: Point | None = None
    last: Point | None = None


class TradeContinuity:
    """Gap detection for one (exchange, symbol); GapFiller does the filling."""

    def __init__(self, filler: GapFiller, holder: Holder, exchange: str, symbol: str) -> None:
        self._filler = filler
        self._holder = holder
        self._span = filler.source.span
        self.exchange = exchange
        self.symbol = symbol
        self._live: list[SessionTrades] = []  # connections open now, oldest first
        self._last: Point | None = None  # newest trade of the connections that ended
        self._known = False  # _last holds what came before this run (start-up read done)
        self._first_of_run: Point | None = None  # the first trade of this run
        self._hold: Hold | None = None  # between connections (or at start-up)
        self._startup: asyncio.Task[None] | None = None
        self._next_reason = REASON_RECONNECT  # of the next gap found at a connection's start
        self._deferred: list[tuple[Point, Point]] = []  # (last, first) found during start-up

    # -- start-up ------------------------------------------------------------------------

    def start(self) -> None:
        """Freeze the watermark and look for the newest stored trade (in the background)."""
        self._known = False
        self._first_of_run = None
        self._let_go()  # a hold left by an earlier start: the freeze is lower than any
        self._hold = self._holder.hold(self.exchange, self.symbol, None)
        self._filler.watch(self.symbol)
        self._startup = asyncio.create_task(self._read_last_stored(), name=f"tcpd-continuity-{self.symbol}")

    def stop(self) -> None:
        """Stop looking; a hold stays (the watermark written last stays below the hole)."""
        task, self._startup = self._startup, None
        if task is not None:
            task.cancel()

    async def _read_last_stored(self) -> None:
        stored = await self._filler.last_stored(self.symbol, self._first_of_run)
        # Live trades keep arriving meanwhile: only trades before the run's first count.
        first = self._first_of_run
        if stored is not None and first is not None and stored.seq >= first.seq:
            stored = await self._filler.last_stored(self.symbol, first)
        self._known = True
        self._let_go()  # the freeze
        if stored is None:
            logger.info("%s/%s: no trade stored before this run", self.exchange, self.symbol)
        if first is None:
            # Nothing received yet: the first trade will be compared with the stored one.
            if stored is not None and (self._last is None or stored.seq > self._last.seq):
                self._last = stored
                self._next_reason = REASON_RESTART
        elif stored is not None:
            self._compare(stored, first, REASON_RESTART)
        deferred, self._deferred = self._deferred, []
        for last, later in deferred:  # connections that began while the read was under way
            self._compare(last, later, REASON_RECONNECT)
        if self._last is not None and all(s.first is None for s in self._live):
            self._hold_at(self._last)

    # -- what the collector reports ----------------------------------------------------------

    def opened(self) -> SessionTrades:
        """A connection that carries trades is open; pass the result to seen() and ended()."""
        session = SessionTrades()
        self._live.append(session)
        return session

    def seen(self, session: SessionTrades, rows: Sequence[Row]) -> None:
        """Rows one connection received (called before they are put): notes its trades."""
        newest = next((r for r in reversed(rows) if type(r) is TradeRow and r.symbol == self.symbol), None)
        if newest is None:
            return
        span = self._span
        if session.first is None:
            oldest = next(r for r in rows if type(r) is TradeRow and r.symbol == self.symbol)
            first = span(oldest)
            if first is None:
                return
            session.first = Point(first[0], oldest.ts_ms)
            if self._first_of_run is None:
                self._first_of_run = session.first
            self._began(session)
        last = span(newest)
        if last is not None:
            session.last = Point(last[1], newest.ts_ms)

    def ended(self, session: SessionTrades) -> None:
        """A connection ended (after its last rows were seen)."""
        if session in self._live:
            self._live.remove(session)
        if session.last is not None and (self._last is None or session.last.seq > self._last.seq):
            self._last = session.last
        others = [s for s in self._live if s.first is not None]
        if session.last is not None and others:
            # A switch: the connection that goes on must start where this one stopped.
            self._compare(session.last, others[0].first, REASON_HANDOVER)  # type: ignore[arg-type]
            return
        if self._last is not None and self._known and all(s.first is None for s in self._live):
            self._hold_at(self._last)

    # -- decisions ---------------------------------------------------------------------------

    def _began(self, session: SessionTrades) -> None:
        first = session.first
        if first is None or any(s is not session and s.first is not None for s in self._live):
            return  # a switch: checked when the old connection ends
        if not self._known:
            # Start-up: _read_last_stored compares the run's first trade with the stored one,
            # and later connections' first trades with the trade before them.
            if first is not self._first_of_run and self._last is not None:
                self._deferred.append((self._last, first))
            return
        if self._last is None:
            self._let_go()
            return
        reason, self._next_reason = self._next_reason, REASON_RECONNECT
        self._compare(self._last, first, reason)

    def _compare(self, last: Point, first: Point, reason: str) -> None:
        """Hand (last, first) to the filler when fills are missing between them."""
        if first.seq <= last.seq + 1:
            self._let_go()
            return
        hold = self._hold
        self._hold = None
        if hold is None:
            hold = self._holder.hold(self.exchange, self.symbol, utc(last.ts_ms))
        self._filler.submit(self.symbol, last, first, reason, hold)

    def _hold_at(self, point: Point) -> None:
        if self._hold is None:
            self._hold = self._holder.hold(self.exchange, self.symbol, utc(point.ts_ms))

    def _swap_hold(self, point: Point) -> None:
        """Replace the start-up freeze by a hold at the newest stored trade."""
        old = self._hold
        self._hold = self._holder.hold(self.exchange, self.symbol, utc(point.ts_ms))
        if old is not None:
            self._holder.release(old)

    def _let_go(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            self._holder.release(hold)
