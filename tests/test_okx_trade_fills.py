"""OKX trades carry the fills they aggregate (`count`) and their own order (tradeId).

One push of the `trades` channel is one taker order at one price: `count` says how many
fills it aggregates, and candles count fills, not pushes. tradeId is a decimal number that
increases per instrument, so it orders trades sharing one timestamp.
"""

from __future__ import annotations

import copy

import pytest

from ingest.exchanges.okx import OkxAdapter
from tests.test_okx_parse import dumps, frame_obj, frame_text


def test_recorded_swap_trade_keeps_its_ten_fills_and_trade_id_order() -> None:
    (trade,) = OkxAdapter().parse(frame_text("trades_swap.json"), store_raw_data=False).trades
    assert (trade.symbol, trade.size, trade.fill_count, trade.trade_seq) == (
        "BTC-USDT-SWAP",
        "34.95",
        "10",
        "2832749645",
    )


def test_trade_without_count_is_one_fill_and_an_odd_trade_id_has_no_order() -> None:
    frame = frame_obj("trades_spot.json")
    item = frame["data"][0]
    del item["count"]
    later = copy.deepcopy(item) | {"tradeId": "abc-1"}
    frame["data"].append(later)
    first, second = OkxAdapter().parse(dumps(frame), store_raw_data=True).trades
    assert (first.fill_count, first.trade_seq) == ("1", "1040968613")
    assert (second.fill_count, second.trade_seq) == ("1", "0")


@pytest.mark.parametrize("count", ["0", "00", "-1", "1.5", "", "1e3", "1234567890", 2, "２"])
def test_a_count_that_is_not_a_positive_integer_string_is_refused(count: object) -> None:
    frame = frame_obj("trades_spot.json")
    frame["data"][0]["count"] = count
    # Refused alone, like any bad trade (docs/collector.md, "Bad input").
    result = OkxAdapter().parse(dumps(frame), store_raw_data=False)
    assert result.trades == []
    ((_, reason),) = result.rejected
    assert reason.startswith("trades: field 'count' must be a positive integer string")
