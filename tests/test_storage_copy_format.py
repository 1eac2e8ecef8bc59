"""COPY text formatting: the fast path and the escaping path agree with a plain reference."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest.model import DataType
from ingest.rows import DeadLetter, MarketRow, TradeRow
from ingest.storage.copy_format import dead_letters_copy, market_copy, trades_copy, ts_text


def reference_field(value: str | None) -> str:
    """COPY text format for one field, written the obvious (slow) way."""
    if value is None:
        return "\\N"
    out = []
    for ch in value:
        out.append({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(ch, ch))
    return "".join(out)


def reference_line(fields: list[str | None]) -> str:
    return "\t".join(map(reference_field, fields)) + "\n"


def reference_ts(ms: int) -> str:
    stamp = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+00"


def reference_trades(rows: list[TradeRow]) -> bytes:
    return "".join(
        reference_line(
            [
                r.exchange,
                r.symbol,
                r.trade_id,
                r.price,
                r.size,
                r.side,
                reference_ts(r.ts_ms),
                r.fill_count,
                r.trade_seq,
                r.raw_json or None,
            ]
        )
        for r in rows
    ).encode()


ALPHABET = ["a", "Z", "0", ".", "-", "\t", "\n", "\r", "\\", "N", "é", "中", "🚀", '"', " "]


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 8)))


@pytest.mark.parametrize("seed", range(20))
def test_trades_match_the_reference_for_random_text(seed: int) -> None:
    rng = random.Random(seed)
    plain = rng.random() < 0.5  # half the runs only use characters needing no escape
    pick = (
        (lambda: "".join(rng.choice("abc123.-") for _ in range(5))) if plain else (lambda: random_text(rng))
    )
    rows = [
        TradeRow(
            pick(),
            pick(),
            pick(),
            pick(),
            pick(),
            pick(),
            rng.randint(0, 2**41),
            rng.choice(["", pick(), '{"a": "\\\\"}', "\\N"]),
            pick(),
            pick(),
        )
        for _ in range(50)
    ]
    assert trades_copy(rows) == reference_trades(rows)


def test_plain_trades_take_the_fast_path_and_nulls_stay_nulls() -> None:
    rows = [
        TradeRow("okx", "BTC-USDT", "1", "1.5", "2", "buy", 5, '{"px":"1.5"}', "10", "1"),
        TradeRow("okx", "BTC-USDT", "2", "1.5", "2", "sell", 6, ""),
    ]
    assert trades_copy(rows) == (
        b'okx\tBTC-USDT\t1\t1.5\t2\tbuy\t1970-01-01 00:00:00.005+00\t10\t1\t{"px":"1.5"}\n'
        b"okx\tBTC-USDT\t2\t1.5\t2\tsell\t1970-01-01 00:00:00.006+00\t1\t0\t\\N\n"
    )


def test_a_raw_object_spelled_like_null_is_escaped() -> None:
    rows = [
        TradeRow("okx", "S", "1", "1", "1", "buy", 5, ""),
        TradeRow("okx", "S", "2", "1", "1", "buy", 5, "\\N"),
    ]
    assert trades_copy(rows).splitlines() == [
        b"okx\tS\t1\t1\t1\tbuy\t1970-01-01 00:00:00.005+00\t1\t0\t\\N",
        b"okx\tS\t2\t1\t1\tbuy\t1970-01-01 00:00:00.005+00\t1\t0\t\\\\N",
    ]


def test_market_and_dead_letters_escape_text() -> None:
    market = [MarketRow("o\tk", "S", DataType.TICKER, 7, '{"a":"\\\\"}')]
    assert market_copy(market) == b'o\\tk\tS\tticker\t1970-01-01 00:00:00.007+00\t{"a":"\\\\\\\\"}\t\\N\n'
    dead = [DeadLetter("okx", 9, "bad\nframe", "x\\y\rz")]
    assert dead_letters_copy(dead) == b"okx\t1970-01-01 00:00:00.009+00\tbad\\nframe\tx\\\\y\\rz\n"


def test_a_raw_trade_copy_carries_its_trade_id_and_other_rows_null() -> None:
    rows = [
        MarketRow("okx", "S", DataType.TRADE, 5, '{"tradeId":"42"}', "42"),
        MarketRow("okx", "S", DataType.TICKER, 5, '{"last":"1"}'),
    ]
    assert market_copy(rows).splitlines() == [
        b'okx\tS\ttrade\t1970-01-01 00:00:00.005+00\t{"tradeId":"42"}\t42',
        b'okx\tS\tticker\t1970-01-01 00:00:00.005+00\t{"last":"1"}\t\\N',
    ]
    # A trade id spelled like the NULL marker stays a trade id.
    odd = [MarketRow("okx", "S", DataType.TRADE, 5, "{}", "\\N"), rows[1]]
    assert market_copy(odd).splitlines()[0].endswith(b"\t\\\\N")


def test_backslashes_alone_are_escaped() -> None:
    # No tab or newline anywhere: only the backslash check can send this batch to escaping.
    rows = [
        TradeRow("okx", "A\\B", "1", "1", "1", "buy", 5, '{"p":"a\\\\"}'),
        TradeRow("okx", "AB", "2", "1", "1", "buy", 5, ""),
    ]
    assert trades_copy(rows) == reference_trades(rows)
    assert b"A\\\\B" in trades_copy(rows)


@pytest.mark.parametrize(
    "ms", [0, 999, 1000, -1, -1001, 1_700_000_000_123, 253_402_300_799_999, 951_782_400_000]
)
def test_timestamps_are_exact_utc_text(ms: int) -> None:
    assert ts_text(ms) == reference_ts(ms)


def test_timestamps_python_cannot_represent_become_text_the_server_refuses() -> None:
    assert ts_text(10**17).startswith("out-of-range")
