"""Watermarks without a database: pending rows, out-of-order commits, holds."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.model import DataType
from ingest.rows import DeadLetter, MarketRow, TradeRow
from ingest.storage.watermarks import Watermarks

T = 1_700_000_000_000


def trade(ms: int, symbol: str = "BTC-USDT") -> TradeRow:
    return TradeRow("okx", symbol, f"t{ms}", "1", "1", "buy", ms, "")


def ticker(ms: int, symbol: str = "BTC-USDT") -> MarketRow:
    return MarketRow("okx", symbol, DataType.TICKER, ms, "{}")


def test_nothing_committed_means_no_watermark() -> None:
    marks = Watermarks()
    marks.note([trade(T)])
    assert marks.watermark_ms("okx", "BTC-USDT") is None
    assert marks.due() == {}


def test_a_later_batch_committing_first_does_not_pass_the_earlier_one() -> None:
    marks = Watermarks()
    first = [trade(T + 10), trade(T + 20)]
    second = [trade(T + 30), ticker(T + 90)]
    marks.note(first)
    marks.note(second)
    marks.committed(second)  # worker 2 commits before worker 1
    assert marks.watermark_ms("okx", "BTC-USDT") == T + 9  # just below the oldest pending row
    marks.committed(first)
    assert marks.watermark_ms("okx", "BTC-USDT") == T + 90  # the ticker advances it past the trades


def test_rows_sharing_a_time_are_counted_not_collapsed() -> None:
    marks = Watermarks()
    marks.note([trade(T), trade(T + 5)])
    marks.note([trade(T + 5)])
    marks.committed([trade(T), trade(T + 5)])
    assert marks.watermark_ms("okx", "BTC-USDT") == T + 4  # one row at T + 5 still pending
    marks.committed([trade(T + 5)])
    assert marks.watermark_ms("okx", "BTC-USDT") == T + 5


def test_keys_are_independent_and_dead_letters_count_for_none() -> None:
    marks = Watermarks()
    marks.note([trade(T, "A"), trade(T + 1, "B"), DeadLetter("okx", T, "bad", "x")])
    marks.committed([trade(T, "A"), DeadLetter("okx", T, "bad", "x")])
    assert marks.watermark_ms("okx", "A") == T
    assert marks.watermark_ms("okx", "B") is None


def test_a_hold_keeps_the_watermark_until_released() -> None:
    marks = Watermarks()
    rows = [trade(T), ticker(T + 120_000)]
    marks.note(rows)
    marks.committed(rows)
    low = marks.hold("okx", "BTC-USDT", datetime.fromtimestamp((T + 1_000) / 1000, UTC))
    high = marks.hold("okx", "BTC-USDT", datetime.fromtimestamp((T + 60_000) / 1000, UTC))
    assert marks.watermark_ms("okx", "BTC-USDT") == T + 1_000  # the lowest hold wins
    marks.release(low)
    assert marks.watermark_ms("okx", "BTC-USDT") == T + 60_000
    marks.release(high)
    marks.release(high)  # twice: harmless
    assert marks.watermark_ms("okx", "BTC-USDT") == T + 120_000


def test_due_reports_only_changes() -> None:
    marks = Watermarks()
    marks.note([trade(T)])
    marks.committed([trade(T)])
    assert marks.due() == {("okx", "BTC-USDT"): T}
    marks.mark_written(marks.due())
    assert marks.due() == {}
    hold = marks.hold("okx", "BTC-USDT", datetime.fromtimestamp((T - 500) / 1000, UTC))
    assert marks.due() == {("okx", "BTC-USDT"): T - 500}  # a hold can move it back
    marks.mark_written(marks.due())
    marks.release(hold)
    assert marks.due() == {("okx", "BTC-USDT"): T}
