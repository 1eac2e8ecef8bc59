"""TradeContinuity's decisions, connection by connection (no network, no database): which
(after, before) goes to the filler with which reason, and what the watermark hold does."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from ingest.collector.continuity import TradeContinuity
from ingest.exchanges.okx.history import OkxTradeHistory
from ingest.history.gapfill import REASON_HANDOVER, REASON_RECONNECT, REASON_RESTART, Point
from ingest.model import DataType
from ingest.rows import MarketRow, TradeRow
from ingest.storage.watermarks import Hold

T0 = 1_796_000_000_000


def trade(seq: int, count: int = 1, symbol: str = "BTC-USDT") -> TradeRow:
    return TradeRow("okx", symbol, str(seq), "1.5", "2", "buy", T0 + seq, "", str(count), str(seq))


class FakeFiller:
    source = OkxTradeHistory()

    def __init__(self, stored: Point | None) -> None:
        self.stored = stored
        self.read = asyncio.Event()  # set by the test: the database answers
        self.asked: list[Point | None] = []
        self.submitted: list[tuple[int, int, str, Hold | None]] = []
        self.watched: list[str] = []

    def watch(self, symbol: str) -> None:
        self.watched.append(symbol)

    async def last_stored(self, symbol: str, below: Point | None) -> Point | None:
        self.asked.append(below)
        await self.read.wait()
        if self.stored is not None and below is not None and self.stored.seq >= below.seq:
            return None
        return self.stored

    def submit(self, symbol: str, after: Point, before: Point, reason: str, hold: Hold | None) -> None:
        self.submitted.append((after.seq, before.seq, reason, hold))


class FakeHolder:
    def __init__(self) -> None:
        self.holds: dict[int, int | None] = {}
        self._next = 0

    def hold(self, exchange: str, symbol: str, at: datetime | None) -> Hold:
        self._next += 1
        at_ms = None if at is None else int(at.timestamp() * 1000)
        self.holds[self._next] = at_ms
        return Hold(exchange, symbol, at_ms, self._next)

    def release(self, hold: Hold) -> None:
        del self.holds[hold.id]


def make(stored: Point | None = None) -> tuple[TradeContinuity, FakeFiller, FakeHolder]:
    filler, holder = FakeFiller(stored), FakeHolder()
    return TradeContinuity(filler, holder, "okx", "BTC-USDT"), filler, holder  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def started_with(stored: Point | None) -> tuple[TradeContinuity, FakeFiller, FakeHolder]:
    """Started, the stored trade read, nothing received yet."""
    continuity, filler, holder = make(stored)
    continuity.start()
    filler.read.set()
    await settle()
    return continuity, filler, holder


async def test_a_reconnect_that_resumes_at_the_next_fill_releases_the_hold() -> None:
    continuity, filler, holder = await started_with(None)
    first = continuity.opened()
    continuity.seen(first, [trade(1), trade(2), trade(5, count=3)])  # 5 covers fills 3..5
    continuity.ended(first)
    assert list(holder.holds.values()) == [T0 + 5]  # held at the last trade between connections
    second = continuity.opened()
    continuity.seen(second, [trade(8, count=3)])  # fills 6..8: nothing missing
    assert filler.submitted == []
    assert holder.holds == {}


async def test_a_reconnect_after_missed_fills_hands_the_gap_and_the_hold_to_the_filler() -> None:
    continuity, filler, holder = await started_with(None)
    first = continuity.opened()
    continuity.seen(first, [trade(1), trade(2)])
    continuity.ended(first)
    second = continuity.opened()
    ticker = MarketRow("okx", "BTC-USDT", DataType.TICKER, T0 + 50, "{}")
    continuity.seen(second, [ticker])  # no trade yet: nothing decided
    assert filler.submitted == []
    continuity.seen(second, [ticker, trade(40, count=4), trade(41)])  # first fill is 37
    assert [(a, b, r) for a, b, r, _h in filler.submitted] == [(2, 37, REASON_RECONNECT)]
    hold = filler.submitted[0][3]
    assert hold is not None
    assert holder.holds == {hold.id: T0 + 2}  # still held: the filler releases it when done


async def test_the_start_up_gap_runs_from_the_last_stored_trade_to_the_first_received() -> None:
    continuity, filler, holder = make(Point(100, T0 + 100))
    continuity.start()
    await settle()  # the read is under way
    assert list(holder.holds.values()) == [None]  # frozen until the stored trade is known
    session = continuity.opened()
    continuity.seen(session, [trade(130), trade(131)])  # received before the database answered
    filler.read.set()
    await settle()
    assert filler.asked == [None]  # asked before anything was received
    assert [(a, b, r) for a, b, r, _h in filler.submitted] == [(100, 130, REASON_RESTART)]
    assert None not in holder.holds.values()
    assert filler.watched == ["BTC-USDT"]


async def test_trades_received_during_the_start_up_read_do_not_count_as_stored() -> None:
    # The database answers with a trade this run received (committed meanwhile): asked again
    # below the run's first trade.
    continuity, filler, _holder = make(Point(131, T0 + 131))
    continuity.start()
    await settle()
    session = continuity.opened()
    continuity.seen(session, [trade(130), trade(131)])
    filler.stored = Point(131, T0 + 131)
    filler.read.set()
    await settle()
    assert filler.asked == [None, Point(130, T0 + 130)]
    assert filler.submitted == []  # nothing stored before the run: nothing to fill


async def test_no_stored_trade_means_nothing_to_fill_and_the_freeze_ends() -> None:
    continuity, filler, holder = make(None)
    continuity.start()
    session = continuity.opened()
    continuity.seen(session, [trade(7)])
    filler.read.set()
    await settle()
    assert filler.submitted == []
    assert holder.holds == {}


async def test_a_stored_trade_and_no_live_one_yet_wait_for_the_first_trade() -> None:
    continuity, filler, holder = await started_with(Point(100, T0 + 100))
    assert list(holder.holds.values()) == [T0 + 100]
    session = continuity.opened()
    continuity.seen(session, [trade(101)])
    assert filler.submitted == []
    assert holder.holds == {}
    continuity.ended(session)
    again = continuity.opened()
    continuity.seen(again, [trade(150)])
    assert [(a, b, r) for a, b, r, _h in filler.submitted] == [(101, 150, REASON_RECONNECT)]


async def test_a_switch_is_checked_when_the_old_connection_ends() -> None:
    continuity, filler, holder = await started_with(None)
    old = continuity.opened()
    continuity.seen(old, [trade(1), trade(10)])
    new = continuity.opened()
    continuity.seen(new, [trade(12)])  # ahead of the old one: it may still deliver 11
    assert filler.submitted == []
    continuity.seen(old, [trade(11)])
    continuity.ended(old)
    assert filler.submitted == []  # 11 then 12: they met
    assert holder.holds == {}


async def test_a_switch_whose_connections_never_met_is_a_gap() -> None:
    continuity, filler, _holder = await started_with(None)
    old = continuity.opened()
    continuity.seen(old, [trade(1), trade(10)])
    new = continuity.opened()
    continuity.seen(new, [trade(15)])
    continuity.ended(old)  # the exchange closed the old one before it reached 14
    assert [(a, b, r) for a, b, r, _h in filler.submitted] == [(10, 15, REASON_HANDOVER)]


async def test_other_symbols_trades_are_not_this_collectors() -> None:
    continuity, filler, _holder = await started_with(None)
    first = continuity.opened()
    continuity.seen(first, [trade(1)])
    continuity.ended(first)
    second = continuity.opened()
    continuity.seen(second, [trade(90, symbol="ETH-USDT"), trade(2)])
    assert filler.submitted == []


def test_okx_spans_follow_count() -> None:
    source: Any = OkxTradeHistory()
    assert source.span(trade(40, count=4)) == (37, 40)
    assert source.span(trade(7)) == (7, 7)
    assert source.span(TradeRow("okx", "X", "abc", "1", "1", "buy", T0, "", "1", "0")) is None
