"""OkxAdapter.parse on recorded OKX v5 frames: exact values, unknown fields, malformed frames."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.errors import FrameError
from ingest.exchanges.base import ControlKind
from ingest.exchanges.okx import OkxAdapter
from ingest.model import DataType
from ingest.rows import TradeRow
from tests.okx_reference import parse_one_by_one

OKX_DATA = Path(__file__).parent / "data" / "okx"  # see tests/data/README.md


def frame_text(name: str) -> str:
    """The recorded frame, exactly as stored (trailing newline removed)."""
    return (OKX_DATA / name).read_text(encoding="utf-8").rstrip("\n")


def frame_obj(name: str) -> dict[str, Any]:
    """The recorded frame, parsed, for building variants."""
    obj: dict[str, Any] = orjson.loads(frame_text(name))
    return obj


def dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


@pytest.fixture
def okx() -> OkxAdapter:
    return OkxAdapter()


# -- data channels ------------------------------------------------------------------------


def test_spot_trade_without_raw_data_keeps_no_raw_object(okx: OkxAdapter) -> None:
    result = okx.parse(frame_text("trades_spot.json"), store_raw_data=False)
    assert result.market == []
    assert result.trades == [
        TradeRow(
            "okx",
            "BTC-USDT",
            "1040968613",
            "64040.2",
            "0.00240857",
            "buy",
            1786538760218,
            "",
            "2",
            "1040968613",
        )
    ]


def test_spot_trade_exact_values(okx: OkxAdapter) -> None:
    result = okx.parse(frame_text("trades_spot.json"), store_raw_data=True)
    assert result.control is None
    assert len(result.market) == 1
    assert result.trades == [
        TradeRow(
            exchange="okx",
            symbol="BTC-USDT",
            trade_id="1040968613",
            price="64040.2",
            size="0.00240857",
            side="buy",
            ts_ms=1786538760218,
            raw_json=result.trades[0].raw_json,
            fill_count="2",
            trade_seq="1040968613",
        )
    ]
    assert orjson.loads(result.trades[0].raw_json) == {
        "instId": "BTC-USDT",
        "tradeId": "1040968613",
        "px": "64040.2",
        "sz": "0.00240857",
        "side": "buy",
        "ts": "1786538760218",
        "count": "2",
        "source": "0",
        "seqId": 79706765242,
    }


def test_swap_trade_with_raw_market_row(okx: OkxAdapter) -> None:
    result = okx.parse(frame_text("trades_swap.json").encode(), store_raw_data=True)
    (trade,) = result.trades
    assert (trade.symbol, trade.trade_id, trade.price, trade.size, trade.side, trade.ts_ms) == (
        "BTC-USDT-SWAP",
        "2832749645",
        "63913.4",
        "34.95",
        "sell",
        1786540436090,
    )
    (raw,) = result.market
    assert (raw.exchange, raw.symbol, raw.data_type, raw.ts_ms) == (
        "okx",
        "BTC-USDT-SWAP",
        DataType.TRADE,
        1786540436090,
    )
    assert orjson.loads(raw.data_json) == frame_obj("trades_swap.json")["data"][0]


def test_many_trades_in_one_message_keep_order(okx: OkxAdapter) -> None:
    frame = frame_obj("trades_spot.json")
    first = frame["data"][0]
    frame["data"] = [dict(first, tradeId=str(100 + i), px=f"6400{i}.5") for i in range(10)]
    result = okx.parse(dumps(frame), store_raw_data=True)
    assert [(t.trade_id, t.price) for t in result.trades] == [(str(100 + i), f"6400{i}.5") for i in range(10)]
    assert [orjson.loads(m.data_json)["tradeId"] for m in result.market] == [str(100 + i) for i in range(10)]


def test_spot_ticker(okx: OkxAdapter) -> None:
    result = okx.parse(frame_text("tickers_spot.json"), store_raw_data=True)
    assert result.trades == []
    (row,) = result.market
    assert (row.exchange, row.symbol, row.data_type, row.ts_ms) == (
        "okx",
        "BTC-USDT",
        DataType.TICKER,
        1786538789464,
    )
    data = orjson.loads(row.data_json)
    assert data == frame_obj("tickers_spot.json")["data"][0]
    assert (data["last"], data["bidPx"], data["askPx"], data["vol24h"]) == (
        "64028.6",
        "64028.6",
        "64028.7",
        "5874.19398956",
    )


def test_swap_ticker(okx: OkxAdapter) -> None:
    (row,) = okx.parse(frame_text("tickers_swap.json"), store_raw_data=False).market
    assert (row.symbol, row.ts_ms, orjson.loads(row.data_json)["last"]) == (
        "BTC-USDT-SWAP",
        1786540471710,
        "63921",
    )


def test_books5_snapshot(okx: OkxAdapter) -> None:
    (row,) = okx.parse(frame_text("books5_spot.json"), store_raw_data=False).market
    assert (row.symbol, row.data_type, row.ts_ms) == ("BTC-USDT", DataType.ORDERBOOK, 1786538744703)
    data = orjson.loads(row.data_json)
    assert data["asks"][0] == ["64073.1", "1.07909367", "0", "8"]
    assert data["bids"][4] == ["64071.9", "0.19905687", "0", "1"]
    assert data["seqId"] == 79706756139
    assert data == frame_obj("books5_spot.json")["data"][0]


def test_books5_swap_snapshot(okx: OkxAdapter) -> None:
    (row,) = okx.parse(frame_text("books5_swap.json"), store_raw_data=False).market
    data = orjson.loads(row.data_json)
    assert (row.symbol, row.ts_ms, data["bids"][1], len(data["asks"])) == (
        "BTC-USDT-SWAP",
        1786541241106,
        ["63920.7", "0.34", "0", "2"],
        5,
    )


def test_closed_candle_becomes_row_stamped_at_bucket_start(okx: OkxAdapter) -> None:
    (row,) = okx.parse(frame_text("candle1m_spot_closed.derived.json"), store_raw_data=False).market
    assert (row.symbol, row.data_type, row.ts_ms) == ("BTC-USDT", DataType.CANDLE, 1786538760000)
    assert orjson.loads(row.data_json) == {
        "interval": "1m",
        "start_ms": 1786538760000,
        "open": "64040.2",
        "high": "64040.2",
        "low": "64025.7",
        "close": "64038.2",
        "volume": "2.25101046",
        "volume_ccy": "144148.787477696",
        "volume_ccy_quote": "144148.787477696",
    }


def test_other_candle_interval_is_named_in_the_row(okx: OkxAdapter) -> None:
    frame = frame_obj("candle1m_spot_closed.derived.json")
    frame["arg"]["channel"] = "candle6Hutc"
    (row,) = okx.parse(dumps(frame), store_raw_data=False).market
    assert orjson.loads(row.data_json)["interval"] == "6Hutc"


@pytest.mark.parametrize("name", ["candle1m_spot_unconfirmed.json", "candle1m_swap_before_ack.json"])
def test_open_candles_are_ignored(okx: OkxAdapter, name: str) -> None:
    result = okx.parse(frame_text(name), store_raw_data=True)
    assert (result.trades, result.market, result.control) == ([], [], None)


# -- control frames -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "detail"),
    [
        ("subscribe_ack_trades.json", ControlKind.SUBSCRIBED, "trades:BTC-USDT"),
        ("subscribe_ack_candle1m.json", ControlKind.SUBSCRIBED, "candle1m:BTC-USDT-SWAP"),
        (
            "error_60018.handmade.json",
            ControlKind.ERROR,
            "60018: Wrong URL or channel:candle1m,instId:BTC-USDT doesn't exist. "
            "Please use the correct URL, channel and parameters referring to API document.",
        ),
        (
            "notice_64008.handmade.json",
            ControlKind.RECONNECT_SOON,
            "notice 64008: The connection will soon be closed for a service upgrade. Please reconnect.",
        ),
        ("pong.handmade.txt", ControlKind.PONG, "pong"),
    ],
)
def test_control_frames(okx: OkxAdapter, name: str, kind: ControlKind, detail: str) -> None:
    for frame in (frame_text(name), frame_text(name).encode()):
        result = okx.parse(frame, store_raw_data=True)
        assert (result.trades, result.market) == ([], [])
        assert result.control is not None
        assert (result.control.kind, result.control.detail) == (kind, detail)


def test_other_notice_is_info(okx: OkxAdapter) -> None:
    result = okx.parse('{"event":"notice","code":"12345","msg":"hello"}', store_raw_data=True)
    assert result.control is not None
    assert (result.control.kind, result.control.detail) == (ControlKind.INFO, "notice 12345: hello")


def test_unsubscribe_and_unknown_events_are_info(okx: OkxAdapter) -> None:
    unsub = okx.parse('{"event":"unsubscribe","arg":{"channel":"trades","instId":"X-Y"}}', True).control
    other = okx.parse('{"event":"brand-new","connId":"1"}', True).control
    assert unsub is not None
    assert other is not None
    assert (unsub.kind, unsub.detail) == (ControlKind.INFO, "unsubscribed trades:X-Y")
    assert (other.kind, other.detail) == (ControlKind.INFO, "unhandled event 'brand-new'")


# -- unknown fields -----------------------------------------------------------------------

DATA_FIXTURES = [
    "trades_spot.json",
    "trades_swap.json",
    "tickers_spot.json",
    "books5_spot.json",
    "candle1m_spot_closed.derived.json",
]


def _typed(result: Any) -> list[tuple[Any, ...]]:
    """Rows without their verbatim JSON copy (which keeps every field by design)."""
    trades = [(t.exchange, t.symbol, t.trade_id, t.price, t.size, t.side, t.ts_ms) for t in result.trades]
    market = [(m.exchange, m.symbol, m.data_type, m.ts_ms) for m in result.market]
    return [*trades, *market]


@pytest.mark.parametrize("name", DATA_FIXTURES)
def test_unknown_fields_are_ignored(okx: OkxAdapter, name: str) -> None:
    plain = okx.parse(frame_text(name), store_raw_data=True)
    frame = frame_obj(name)
    frame["newTopLevel"] = {"x": [1, 2]}
    frame["arg"]["uid"] = "77"
    for item in frame["data"]:
        if isinstance(item, dict):
            item["brandNewField"] = "1.5"
        else:
            item.append("extra-candle-column")
    extended = okx.parse(dumps(frame), store_raw_data=True)
    assert _typed(extended) == _typed(plain)
    assert _typed(plain)  # the fixture produced rows at all
    if name.startswith("candle"):
        assert extended.market[0].data_json == plain.market[0].data_json


# -- malformed frames ---------------------------------------------------------------------


def _trade(**changes: Any) -> str:
    frame = frame_obj("trades_spot.json")
    for key, value in changes.items():
        if value is _DROP:
            del frame["data"][0][key]
        else:
            frame["data"][0][key] = value
    return dumps(frame)


_DROP = object()


def _edit(name: str, change: Callable[[dict[str, Any]], None]) -> str:
    frame = copy.deepcopy(frame_obj(name))
    change(frame)
    return dumps(frame)


NOT_DECIMAL = "must be a positive plain decimal string (at most 20.20 digits), got"
NOT_NUMBER = "must be a non-negative plain decimal string (at most 20.20 digits), got"
NOT_MS = "must be milliseconds since the epoch as a string, from 2010-01-01 to 2100-01-01, got"

MALFORMED: list[tuple[str, str | bytes, str]] = [
    ("bad json", '{"arg":{"channel":"trades"', "invalid JSON"),
    ("bad utf8", b'{"event":"\xff"}', "invalid JSON"),
    ("not an object", "[1, 2]", "frame is a JSON list, expected an object"),
    ("neither", '{"code":"0"}', "frame has neither 'data' nor 'event'"),
    ("event type", '{"event":7}', "field 'event' is not a string"),
    ("no arg", '{"data":[]}', "data frame without an 'arg' object"),
    ("no channel", '{"arg":{"instId":"BTC-USDT"},"data":[]}', "data frame without a string 'arg.channel'"),
    (
        "unknown channel",
        _edit("trades_spot.json", lambda f: f["arg"].update(channel="trades-some")),
        "unknown channel 'trades-some'",
    ),
    (
        "data not list",
        _edit("trades_spot.json", lambda f: f.update(data={"a": 1})),
        "trades: 'data' is not a list",
    ),
    ("missing px", _trade(px=_DROP), "trades: missing field 'px'"),
    ("missing tradeId", _trade(tradeId=_DROP), "trades: missing field 'tradeId'"),
    ("px not numeric", _trade(px="abc"), f"trades: field 'px' {NOT_DECIMAL} 'abc'"),
    ("px NaN", _trade(px="NaN"), f"trades: field 'px' {NOT_DECIMAL} 'NaN'"),
    ("px infinity", _trade(px="Infinity"), f"trades: field 'px' {NOT_DECIMAL} 'Infinity'"),
    ("px negative", _trade(px="-1"), f"trades: field 'px' {NOT_DECIMAL} '-1'"),
    ("sz blank", _trade(sz=" 1"), f"trades: field 'sz' {NOT_DECIMAL} ' 1'"),
    ("px too long", _trade(px="1" * 41), f"trades: field 'px' {NOT_DECIMAL} '{'1' * 36}..."),
    ("px 21 integer digits", _trade(px="1" * 21), f"trades: field 'px' {NOT_DECIMAL} '{'1' * 21}'"),
    ("px 21 fraction digits", _trade(px="0." + "1" * 21), f"trades: field 'px' {NOT_DECIMAL} '0.{'1' * 21}'"),
    ("px huge exponent", _trade(px="1e1000"), f"trades: field 'px' {NOT_DECIMAL} '1e1000'"),
    ("px 1e309", _trade(px="1e309"), f"trades: field 'px' {NOT_DECIMAL} '1e309'"),
    ("px 1e999", _trade(px="1e999"), f"trades: field 'px' {NOT_DECIMAL} '1e999'"),
    ("px small exponent", _trade(px="1e-8"), f"trades: field 'px' {NOT_DECIMAL} '1e-8'"),
    ("px zero", _trade(px="0"), f"trades: field 'px' {NOT_DECIMAL} '0'"),
    ("px zero decimals", _trade(px="0.000"), f"trades: field 'px' {NOT_DECIMAL} '0.000'"),
    ("sz zero", _trade(sz="0"), f"trades: field 'sz' {NOT_DECIMAL} '0'"),
    ("px only a point", _trade(px="."), f"trades: field 'px' {NOT_DECIMAL} '.'"),
    ("px zero with a point", _trade(px="0."), f"trades: field 'px' {NOT_DECIMAL} '0.'"),
    ("px two points", _trade(px="1.2.3"), f"trades: field 'px' {NOT_DECIMAL} '1.2.3'"),
    ("ts too long", _trade(ts="1" * 15), f"trades: field 'ts' {NOT_MS} '{'1' * 15}'"),
    ("ts in seconds", _trade(ts="1786538760"), f"trades: field 'ts' {NOT_MS} '1786538760'"),
    ("ts in microseconds", _trade(ts="1786538760218000"), f"trades: field 'ts' {NOT_MS} '1786538760218000'"),
    ("ts before 2010", _trade(ts="1262303999999"), f"trades: field 'ts' {NOT_MS} '1262303999999'"),
    ("ts from 2100", _trade(ts="4102444800000"), f"trades: field 'ts' {NOT_MS} '4102444800000'"),
    ("ts zero padded", _trade(ts="0001786538760"), f"trades: field 'ts' {NOT_MS} '0001786538760'"),
    ("px float", _trade(px=64040.2), "trades: field 'px' is not a string but float 64040.2"),
    ("side", _trade(side="BUY"), "trades: field 'side' must be 'buy' or 'sell', got 'BUY'"),
    ("ts letters", _trade(ts="17865x"), f"trades: field 'ts' {NOT_MS} '17865x'"),
    ("ts int", _trade(ts=1786538760218), "trades: field 'ts' is not a string but int 1786538760218"),
    ("ts unicode digits", _trade(ts="١٢٣"), f"trades: field 'ts' {NOT_MS} '١٢٣'"),
    (
        "empty tradeId",
        _trade(tradeId=""),
        "trades: field 'tradeId' must be a string of 1 to 100 characters, got ''",
    ),
    (
        "long tradeId",
        _trade(tradeId="7" * 101),
        f"trades: field 'tradeId' must be a string of 1 to 100 characters, got '{'7' * 36}...",
    ),
    (
        "long instId",
        _trade(instId="B" * 51),
        f"trades: field 'instId' must be a string of 1 to 50 characters, got '{'B' * 36}...",
    ),
    (
        "NUL in an ignored field",
        _trade(note="a\x00b"),
        r"frame contains \u0000, which no PostgreSQL text or jsonb value can hold",
    ),
    (
        "trade not object",
        _edit("trades_spot.json", lambda f: f.update(data=[["1", "2"]])),
        "trades: expected a JSON object, got list",
    ),
    (
        "book price",
        _edit("books5_spot.json", lambda f: f["data"][0]["asks"][2].__setitem__(0, "x")),
        f"books5: asks[2] price {NOT_DECIMAL} 'x'",
    ),
    (
        "book level",
        _edit("books5_spot.json", lambda f: f["data"][0]["bids"].__setitem__(0, ["1"])),
        "books5: bids[0] must be a [price, size, ...] list",
    ),
    ("book ts", _edit("books5_spot.json", lambda f: f["data"][0].pop("ts")), "books5: missing field 'ts'"),
    (
        "ticker last",
        _edit("tickers_spot.json", lambda f: f["data"][0].update(last="")),
        f"tickers: field 'last' {NOT_DECIMAL} ''",
    ),
    (
        "ticker bid",
        _edit("tickers_spot.json", lambda f: f["data"][0].update(bidPx="n/a")),
        "tickers: field 'bidPx' must be a plain decimal string or empty, got 'n/a'",
    ),
    (
        "candle short",
        _edit("candle1m_spot_closed.derived.json", lambda f: f["data"][0].pop()),
        "candle1m: expected a list of 9 values per candle",
    ),
    (
        "candle confirm",
        _edit("candle1m_spot_closed.derived.json", lambda f: f["data"][0].__setitem__(8, "2")),
        "candle1m: confirm must be '0' or '1', got '2'",
    ),
    (
        "candle close",
        _edit("candle1m_spot_closed.derived.json", lambda f: f["data"][0].__setitem__(4, "1,5")),
        f"candle1m: close {NOT_DECIMAL} '1,5'",
    ),
    (
        "data empty",
        _edit("trades_spot.json", lambda f: f.update(data=[])),
        "trades: 'data' is empty",
    ),
    (
        "book size negative",
        _edit("books5_spot.json", lambda f: f["data"][0]["asks"][1].__setitem__(1, "-1")),
        f"books5: asks[1] size {NOT_NUMBER} '-1'",
    ),
    (
        "candle volume exponent",
        _edit("candle1m_spot_closed.derived.json", lambda f: f["data"][0].__setitem__(5, "1e5")),
        f"candle1m: volume {NOT_NUMBER} '1e5'",
    ),
    (
        "candle ts in seconds",
        _edit("candle1m_spot_closed.derived.json", lambda f: f["data"][0].__setitem__(0, "1786538760")),
        f"candle1m: ts {NOT_MS} '1786538760'",
    ),
    (
        "candle no instId",
        _edit("candle1m_spot_closed.derived.json", lambda f: f["arg"].pop("instId")),
        "candle1m: arg.instId is not a string but NoneType None",
    ),
]


# Problems of the frame itself: the whole frame is refused (FrameError). Every other entry
# of MALFORMED is one bad item of a frame, refused alone.
WHOLE_FRAME = {
    "NUL in an ignored field", "bad json", "bad utf8", "not an object", "neither", "event type",
    "no arg", "no channel", "unknown channel", "data not list", "data empty", "candle no instId",
}  # fmt: skip


@pytest.mark.parametrize(("frame", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_frames_and_items_are_refused_with_their_reason(
    okx: OkxAdapter, frame: str | bytes, reason: str, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.id in WHOLE_FRAME:
        with pytest.raises(FrameError) as info:
            okx.parse(frame, store_raw_data=True)
        assert info.value.reason == reason
        return
    result = okx.parse(frame, store_raw_data=True)
    assert (result.trades, result.market, result.control) == ([], [], None)
    # The frame had one item: refused alone, it comes back as the whole frame's content.
    assert [(orjson.loads(raw), why) for raw, why in result.rejected] == [(orjson.loads(frame), reason)]


def test_every_whole_frame_id_names_an_entry() -> None:
    assert {m[0] for m in MALFORMED} >= WHOLE_FRAME


def test_accepted_number_spellings(okx: OkxAdapter) -> None:
    spellings = ("1", "64040", "10", "0.10", "100.0", "0.5", "0.00000001", "000.5", "64040.", ".5")
    for px in (*spellings, "9" * 20 + "." + "9" * 20):
        (trade,) = okx.parse(_trade(px=px), store_raw_data=False).trades
        assert trade.price == px


def test_accepted_timestamps_span_2010_to_2100(okx: OkxAdapter) -> None:
    for ts in ("1262304000000", "4102444799999"):
        (trade,) = okx.parse(_trade(ts=ts), store_raw_data=False).trades
        assert trade.ts_ms == int(ts)


def test_zero_is_a_book_size_and_a_volume_but_not_a_price(okx: OkxAdapter) -> None:
    book = okx.parse(_edit("books5_spot.json", lambda f: f["data"][0]["asks"][0].__setitem__(1, "0")), True)
    assert len(book.market) == 1
    candle = _edit("candle1m_spot_closed.derived.json", lambda f: f["data"][0].__setitem__(5, "0"))
    assert orjson.loads(okx.parse(candle, False).market[0].data_json)["volume"] == "0"
    zero_price = okx.parse(
        _edit("books5_spot.json", lambda f: f["data"][0]["bids"][1].__setitem__(0, "0")), True
    )
    assert zero_price.market == []
    assert [why for _, why in zero_price.rejected] == [f"books5: bids[1] price {NOT_DECIMAL} '0'"]


def test_one_bad_trade_is_refused_alone_and_the_others_are_kept(okx: OkxAdapter) -> None:
    frame = orjson.loads(_ten_trades(1))
    frame["data"][3]["px"] = "1e309"
    frame["data"][7]["ts"] = "1786538760"  # seconds, not milliseconds
    result = okx.parse(dumps(frame), store_raw_data=True)
    assert [t.trade_id for t in result.trades] == ["1", "2", "3", "5", "6", "7", "9", "10"]
    ids = [t.trade_id for t in result.trades]
    assert [orjson.loads(m.data_json)["tradeId"] for m in result.market] == ids
    assert [(orjson.loads(raw), why) for raw, why in result.rejected] == [
        ({"arg": frame["arg"], "data": [frame["data"][3]]}, f"trades: field 'px' {NOT_DECIMAL} '1e309'"),
        ({"arg": frame["arg"], "data": [frame["data"][7]]}, f"trades: field 'ts' {NOT_MS} '1786538760'"),
    ]
    batch = okx.parse_batch([dumps(frame)], store_raw_data=True)
    assert [r.trade_id for r in batch.rows if isinstance(r, TradeRow)] == [t.trade_id for t in result.trades]
    assert batch.rejected == result.rejected


def test_non_ascii_digits_are_not_numbers(okx: OkxAdapter) -> None:
    # Python's \d takes other scripts' digits; PostgreSQL's numeric refuses them, so one
    # such price would make a whole COPY batch fail.
    for px in ("١٢٣", "1.٥", "١e5"):
        result = okx.parse(_trade(px=px), store_raw_data=False)
        assert result.trades == []
        assert [why for _, why in result.rejected] == [f"trades: field 'px' {NOT_DECIMAL} {px!r}"]


# -- parse_batch: the collector's hot path agrees with parse ------------------------------

CONTROL_FIXTURES = [
    "subscribe_ack_trades.json",
    "error_60018.handmade.json",
    "notice_64008.handmade.json",
    "pong.handmade.txt",
    "candle1m_spot_unconfirmed.json",
]


def _ten_trades(first_id: int) -> str:
    frame = frame_obj("trades_spot.json")
    item = frame["data"][0]
    frame["data"] = [{**item, "tradeId": str(first_id + i), "sz": f"0.{i + 1}"} for i in range(10)]
    return dumps(frame)


@pytest.mark.parametrize("store", [False, True])
def test_parse_batch_equals_parse_frame_by_frame(okx: OkxAdapter, store: bool) -> None:
    good: list[str | bytes] = [frame_text(n) for n in DATA_FIXTURES + CONTROL_FIXTURES]
    good += [frame_text("trades_swap.json").encode(), _ten_trades(500)]
    # A bad trade in the middle of a frame: refused alone, the trades around it are kept.
    half_bad = orjson.loads(_ten_trades(900))
    half_bad["data"][6]["px"] = "1,5"
    bad: list[str | bytes] = [m[1] for m in MALFORMED] + [dumps(half_bad)]
    frames = [frame for pair in zip(good * 6, bad, strict=False) for frame in pair]
    frames += good + bad
    batch = okx.parse_batch(frames, store)
    rows, controls, rejected = parse_one_by_one(okx, frames, store)
    assert batch.rows == rows
    assert batch.controls == controls
    assert batch.rejected == rejected
    assert len(batch.rejected) == 2 * len(bad)
    assert batch.rejected_frames == 2 * len(WHOLE_FRAME)
    assert len(rows) > 60  # the corpus does produce rows


def test_parse_batch_keeps_the_good_trades_of_a_frame_with_a_bad_one(okx: OkxAdapter) -> None:
    frame = orjson.loads(_ten_trades(1))
    frame["data"][9]["side"] = "short"
    batch = okx.parse_batch([_ten_trades(100), dumps(frame), _ten_trades(200)], True)
    ids = [r.trade_id for r in batch.rows if isinstance(r, TradeRow)]
    assert ids == [str(i) for i in range(100, 110)] + [str(i) for i in range(1, 10)] + [
        str(i) for i in range(200, 210)
    ]
    assert [(orjson.loads(raw)["data"], reason) for raw, reason in batch.rejected] == [
        ([frame["data"][9]], "trades: field 'side' must be 'buy' or 'sell', got 'short'")
    ]
