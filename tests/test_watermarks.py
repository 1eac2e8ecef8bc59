"""Watermarks without a database: pending rows, out-of-order commits, holds."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.model import DataType
from ingest.rows import DeadLetter, MarketRow, Row, TradeRow
from ingest.storage.watermarks import EXACT_ROWS, Watermarks, oldest

T = 1_700_000_000_000
KEY = ("okx", "BTC-USDT")


def trade(ms: int, symbol: str = "BTC-USDT") -> TradeRow:
    return TradeRow("okx", symbol, f"t{ms}", "1", "1", "buy", ms, "")


def ticker(ms: int, symbol: str = "BTC-USDT") -> MarketRow:
    return MarketRow("okx", symbol, DataType.TICKER, ms, "{}")


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_nothing_committed_means_no_watermark() -> None:
    marks = Watermarks()
    assert marks.marks([[trade(T)]]) == {}
    assert marks.due([[trade(T)]]) == {}


def test_a_later_batch_committing_first_does_not_pass_the_earlier_one() -> None:
    marks = Watermarks()
    first: list[Row] = [trade(T + 10), trade(T + 20)]
    second: list[Row] = [trade(T + 30), ticker(T + 90)]
    marks.committed(second)  # worker 2 commits before worker 1
    assert marks.marks([first]) == {KEY: T + 9}  # just below the oldest pending row
    marks.committed(first)
    assert marks.marks() == {KEY: T + 90}  # the ticker advances it past the trades


def test_pending_rows_anywhere_in_a_batch_count() -> None:
    """Mixed symbols and kinds, out of time order: the oldest of each key's pending rows."""
    pending: list[Row] = [
        trade(T + 50, "A"),
        ticker(T + 5, "A"),
        trade(T + 7, "B"),
        DeadLetter("okx", T, "bad", "x"),
        trade(T + 3, "A"),
        ticker(T + 1, "B"),
    ]
    assert oldest([pending[:3], pending[3:]]) == {("okx", "A"): T + 3, ("okx", "B"): T + 1}
    marks = Watermarks()
    marks.committed([ticker(T + 100, "A"), ticker(T + 100, "B"), ticker(T + 100, "C")])
    assert marks.marks([pending]) == {("okx", "A"): T + 2, ("okx", "B"): T, ("okx", "C"): T + 100}


def test_keys_are_independent_and_dead_letters_count_for_none() -> None:
    marks = Watermarks()
    marks.committed([trade(T, "A"), DeadLetter("okx", T + 9, "bad", "x"), trade(T + 4, "A")])
    assert marks.marks([[trade(T + 1, "B")]]) == {("okx", "A"): T + 4}


def test_a_hold_keeps_the_watermark_until_released() -> None:
    marks = Watermarks()
    marks.committed([trade(T), ticker(T + 120_000)])
    low = marks.hold(*KEY, at(T + 1_000))
    high = marks.hold(*KEY, at(T + 60_000))
    assert marks.marks() == {KEY: T + 1_000}  # the lowest hold wins
    marks.release(low)
    assert marks.marks() == {KEY: T + 60_000}
    marks.release(high)
    marks.release(high)  # twice: harmless
    assert marks.marks() == {KEY: T + 120_000}


def test_due_reports_only_changes() -> None:
    marks = Watermarks()
    marks.committed([trade(T)])
    assert marks.due() == {KEY: T}
    marks.mark_written(marks.due())
    assert marks.due() == {}
    hold = marks.hold(*KEY, at(T - 500))
    assert marks.due() == {KEY: T - 500}  # a hold can move it back
    marks.mark_written(marks.due())
    marks.release(hold)
    assert marks.due() == {KEY: T}


def test_a_key_postgresql_cannot_store_is_dropped() -> None:
    marks = Watermarks()
    marks.committed([trade(T, "bad\ud800"), trade(T, "nul\x00"), trade(T, "ok")])
    assert marks.due() == {("okx", "ok"): T}
    assert marks.marks() == {("okx", "ok"): T}


def test_a_long_queue_bounds_every_key_by_its_oldest_row() -> None:
    """Beyond EXACT_ROWS pending rows of one kind: one bound for all keys (cheap, and lower)."""
    marks = Watermarks()
    marks.committed([ticker(T + 100_000, "A"), ticker(T + 100_000, "B")])
    queue = [trade(T + 500 + n, "A") for n in range(EXACT_ROWS + 1)]
    assert marks.marks([queue]) == {("okx", "A"): T + 499, ("okx", "B"): T + 499}
    assert marks.marks([queue[:EXACT_ROWS]]) == {("okx", "A"): T + 499, ("okx", "B"): T + 100_000}
