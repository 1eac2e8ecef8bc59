"""BinanceAdapter on recorded and hand-made Binance spot frames: exact values, controls,
malformed frames, parse_batch == parse, subscriptions (data: tests/data/binance/README.md)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.errors import ConfigError, FrameError
from ingest.exchanges.base import Control, ControlKind, Keepalive
from ingest.exchanges.binance import BinanceAdapter, subscribe_frames, wire_symbol
from ingest.model import DataType
from ingest.rows import MarketRow, TradeRow

DATA = Path(__file__).parent / "data" / "binance"
NOW_MS = 1_700_000_000_123  # the injected clock: rows of payloads without a time get it


def frame_text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8").rstrip("\n")


def frame_obj(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(frame_text(name))
    return obj


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def recorded_frames() -> list[str]:
    """The received frames of BINANCE.ws.1.0, in order (connection lines skipped)."""
    frames = []
    for line in (DATA / "BINANCE.ws.1.0").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("wss://"):
            continue
        frames.append(line.split(": ", 1)[1])
    return frames


def recorded(stream_type: str) -> list[str]:
    """The recorded frames of one stream type ("aggTrade", "bookTicker", "kline_1m", ...)."""
    return [f for f in recorded_frames() if json.loads(f)["stream"].split("@", 1)[1] == stream_type]


@pytest.fixture
def binance() -> BinanceAdapter:
    return BinanceAdapter(clock=lambda: NOW_MS)


def parse_one_by_one(
    adapter: BinanceAdapter, frames: Sequence[str | bytes], store: bool
) -> tuple[list[Any], list[Control], list[tuple[str | bytes, str]]]:
    """(rows, controls, rejected) as parse_batch should return them, from parse() per frame."""
    rows: list[Any] = []
    controls: list[Control] = []
    rejected: list[tuple[str | bytes, str]] = []
    for frame in frames:
        try:
            result = adapter.parse(frame, store)
        except FrameError as exc:
            rejected.append((frame, exc.reason))
            continue
        rows += result.trades + result.market  # a trade's market copy follows it
        rejected += result.rejected
        if result.control is not None:
            controls.append(result.control)
    return rows, controls, rejected


def test_adapter_identity() -> None:
    assert BinanceAdapter.name == "binance"
    assert BinanceAdapter.ping_text == ""
    assert BinanceAdapter.keepalive is Keepalive.PROTOCOL_PING


# -- recorded traffic ---------------------------------------------------------------------


def test_recording_has_the_stream_types_it_is_said_to_have() -> None:
    for stream_type in ("aggTrade", "bookTicker", "kline_1m", "depth@100ms"):
        assert recorded(stream_type), stream_type


@pytest.mark.parametrize("store", [False, True])
def test_recorded_agg_trades_exact_values(binance: BinanceAdapter, store: bool) -> None:
    for frame in recorded("aggTrade"):
        data = json.loads(frame)["data"]
        result = binance.parse(frame, store)
        side = "sell" if data["m"] is True else "buy"
        raw = json.loads(result.trades[0].raw_json) if store else None
        expected = TradeRow(
            "binance",
            data["s"],
            str(data["a"]),
            data["p"],
            data["q"],
            side,
            data["T"],
            result.trades[0].raw_json if store else "",
            str(data["l"] - data["f"] + 1),
            str(data["l"]),  # the last fill's id: the row covers fills f..l
        )
        assert result.trades == [expected]
        assert result.control is None
        if store:
            assert raw == data
            assert result.market == [
                MarketRow(
                    "binance", data["s"], DataType.TRADE, data["T"], expected.raw_json, expected.trade_id
                )
            ]
        else:
            assert result.market == []


def test_recorded_agg_trade_spelled_out(binance: BinanceAdapter) -> None:
    # The first aggTrade of the recording, read by eye.
    trade = binance.parse(recorded("aggTrade")[0], False).trades[0]
    assert trade == TradeRow(
        "binance",
        "NKNUSDT",
        "15683430",
        "0.35280000",
        "58.00000000",
        "buy",
        1633998523963,
        "",
        "1",
        "19862790",  # its one fill, f = l
    )


def test_recorded_book_tickers_exact_values(binance: BinanceAdapter) -> None:
    for frame in recorded("bookTicker"):
        data = json.loads(frame)["data"]
        result = binance.parse(frame, store_raw_data=False)
        assert result.trades == []
        assert len(result.market) == 1
        row = result.market[0]
        assert (row.exchange, row.symbol, row.data_type, row.ts_ms) == (
            "binance",
            data["s"],
            DataType.ORDERBOOK,
            NOW_MS,  # bookTicker has no time: the injected clock stamps it
        )
        assert json.loads(row.data_json) == data


def test_recorded_open_klines_are_ignored(binance: BinanceAdapter) -> None:
    for frame in recorded("kline_1m"):
        assert json.loads(frame)["data"]["k"]["x"] is False
        result = binance.parse(frame, store_raw_data=True)
        assert (result.trades, result.market, result.control, result.rejected) == ([], [], None, [])


def test_recorded_diff_depth_is_refused_as_unsupported(binance: BinanceAdapter) -> None:
    for frame in recorded("depth@100ms"):
        stream = json.loads(frame)["stream"]
        with pytest.raises(FrameError) as info:
            binance.parse(frame, store_raw_data=False)
        assert info.value.reason == (
            f"diff-depth stream {stream!r} is not supported (it needs local book state); "
            "subscribe to depth5, depth10 or depth20 instead"
        )


@pytest.mark.parametrize("store", [False, True])
def test_parse_batch_equals_parse_on_the_recording(binance: BinanceAdapter, store: bool) -> None:
    frames: list[str | bytes] = list(recorded_frames())
    frames += [f.encode() for f in recorded_frames()[:40]]
    batch = binance.parse_batch(frames, store)
    rows, controls, rejected = parse_one_by_one(binance, frames, store)
    assert batch.rows == rows
    assert batch.controls == controls
    assert batch.rejected == rejected
    assert batch.rejected_frames == len(rejected)
    # rows of every recorded data stream type came out
    assert {type(r) for r in rows} == {TradeRow, MarketRow}
    assert {r.data_type for r in rows if type(r) is MarketRow} == (
        {DataType.ORDERBOOK, DataType.TRADE} if store else {DataType.ORDERBOOK}
    )


# -- hand-made frames ---------------------------------------------------------------------


def test_trade(binance: BinanceAdapter) -> None:
    result = binance.parse(frame_text("trade.handmade.json"), store_raw_data=True)
    data = frame_obj("trade.handmade.json")["data"]
    [trade] = result.trades
    assert trade == TradeRow(
        "binance", "BNBBTC", "12345", "0.001", "100", "sell", 1672515782136, trade.raw_json, "1", "12345"
    )
    assert json.loads(trade.raw_json) == data
    assert result.market == [
        MarketRow("binance", "BNBBTC", DataType.TRADE, 1672515782136, trade.raw_json, trade.trade_id)
    ]


def test_trade_without_raw_data(binance: BinanceAdapter) -> None:
    result = binance.parse(frame_text("trade.handmade.json"), store_raw_data=False)
    assert [t.raw_json for t in result.trades] == [""]
    assert result.market == []


def test_microsecond_times_become_milliseconds(binance: BinanceAdapter) -> None:
    [trade] = binance.parse(frame_text("trade_microseconds.handmade.json"), False).trades
    assert (trade.trade_id, trade.side, trade.ts_ms) == ("12346", "buy", 1672515782136)
    us = binance.parse(frame_text("kline_1m_closed_microseconds.handmade.json"), False).market
    ms = binance.parse(frame_text("kline_1m_closed.handmade.json"), False).market
    assert us == ms
    assert us[0].ts_ms == 1672515780000


def test_agg_trade_counts_its_fills(binance: BinanceAdapter) -> None:
    frame = orjson.loads(recorded("aggTrade")[0])
    frame["data"].update(a=77, f=100, l=105, m=True)
    [trade] = binance.parse(dumps(frame), False).trades
    assert (trade.trade_id, trade.fill_count, trade.trade_seq, trade.side) == ("77", "6", "105", "sell")


def test_partial_depth_takes_its_symbol_from_the_stream_and_the_clock(binance: BinanceAdapter) -> None:
    result = binance.parse(frame_text("depth5_100ms.handmade.json"), store_raw_data=False)
    [row] = result.market
    assert (row.exchange, row.symbol, row.data_type, row.ts_ms) == (
        "binance",
        "BNBBTC",
        DataType.ORDERBOOK,
        NOW_MS,
    )
    assert json.loads(row.data_json) == frame_obj("depth5_100ms.handmade.json")["data"]


@pytest.mark.parametrize("stream", ["bnbbtc@depth5", "bnbbtc@depth10@1000ms", "bnbbtc@depth20@100ms"])
def test_every_partial_depth_spelling_is_parsed(binance: BinanceAdapter, stream: str) -> None:
    frame = frame_obj("depth5_100ms.handmade.json")
    frame["stream"] = stream
    assert [r.symbol for r in binance.parse(dumps(frame), False).market] == ["BNBBTC"]


def test_ticker_is_stamped_with_its_event_time(binance: BinanceAdapter) -> None:
    [row] = binance.parse(frame_text("ticker.handmade.json"), store_raw_data=False).market
    assert (row.exchange, row.symbol, row.data_type, row.ts_ms) == (
        "binance",
        "BNBBTC",
        DataType.TICKER,
        1672515782136,
    )
    assert json.loads(row.data_json) == frame_obj("ticker.handmade.json")["data"]


def test_closed_kline_becomes_a_candle_stamped_at_bucket_start(binance: BinanceAdapter) -> None:
    result = binance.parse(frame_text("kline_1m_closed.handmade.json"), store_raw_data=False)
    [row] = result.market
    assert (row.symbol, row.data_type, row.ts_ms) == ("BNBBTC", DataType.CANDLE, 1672515780000)
    assert json.loads(row.data_json) == {
        "interval": "1m",
        "start_ms": 1672515780000,
        "open": "0.0010",
        "high": "0.0025",
        "low": "0.0015",
        "close": "0.0020",
        "volume": "1000",
        "volume_ccy_quote": "1.0000",
        "trade_count": 100,
    }


@pytest.mark.parametrize(
    ("name", "kind", "detail"),
    [
        ("subscribe_result.handmade.json", ControlKind.SUBSCRIBED, "request id 1"),
        (
            "subscribe_error.handmade.json",
            ControlKind.ERROR,
            "2: Invalid request: request ID must be an unsigned integer (request id 1)",
        ),
        (
            "subscribe_error_object.handmade.json",
            ControlKind.ERROR,
            "2: Invalid request: invalid stream name (request id 1)",
        ),
        (
            "server_shutdown.handmade.json",
            ControlKind.RECONNECT_SOON,
            "serverShutdown announced at E=1770123456789",
        ),
    ],
)
def test_control_frames(binance: BinanceAdapter, name: str, kind: ControlKind, detail: str) -> None:
    result = binance.parse(frame_text(name), store_raw_data=True)
    assert result.control is not None
    assert (result.control.kind, result.control.detail) == (kind, detail)
    # An answer carries its request's id (a shared connection routes it by the id).
    assert result.control.request_id == ("1" if "request id 1" in detail else None)
    assert (result.trades, result.market) == ([], [])


def test_raw_stream_shutdown_and_query_answers(binance: BinanceAdapter) -> None:
    shutdown = binance.parse('{"e":"serverShutdown","E":1770123456789}', False).control
    assert shutdown == Control(ControlKind.RECONNECT_SOON, "serverShutdown announced at E=1770123456789")
    listing = binance.parse('{"result":["btcusdt@trade"],"id":3}', False).control
    assert listing == Control(ControlKind.INFO, "request id 3 answered ['btcusdt@trade']", request_id="3")


DATA_FIXTURES = [
    "trade.handmade.json",
    "depth5_100ms.handmade.json",
    "ticker.handmade.json",
    "kline_1m_closed.handmade.json",
]


def _typed(result: Any) -> list[tuple[Any, ...]]:
    """Rows without their verbatim JSON copy (which keeps every field by design)."""
    trades = [t[:7] + t[8:] for t in result.trades]
    market = [m[:4] for m in result.market]
    return [*trades, *market]


@pytest.mark.parametrize("name", [*DATA_FIXTURES, "aggTrade", "bookTicker"])
def test_unknown_fields_are_ignored(binance: BinanceAdapter, name: str) -> None:
    text = frame_text(name) if name.endswith(".json") else recorded(name)[0]
    plain = binance.parse(text, store_raw_data=True)
    frame = json.loads(text)
    frame["newTopLevel"] = {"x": [1, 2]}
    frame["data"]["zz"] = "1.5"
    if "k" in frame["data"]:
        frame["data"]["k"]["zz"] = [None]
    extended = binance.parse(dumps(frame), store_raw_data=True)
    assert _typed(extended) == _typed(plain)
    assert _typed(plain)
    if name.startswith("kline"):
        assert extended.market[0].data_json == plain.market[0].data_json


# -- malformed frames ---------------------------------------------------------------------

_DROP = object()


def _edit(name: str, change: Callable[[dict[str, Any]], None]) -> str:
    frame = copy.deepcopy(frame_obj(name))
    change(frame)
    return dumps(frame)


def _trade(**changes: Any) -> str:
    def change(frame: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is _DROP:
                del frame["data"][key]
            else:
                frame["data"][key] = value

    return _edit("trade.handmade.json", change)


def _kline(**changes: Any) -> str:
    return _edit("kline_1m_closed.handmade.json", lambda f: f["data"]["k"].update(changes))


POSITIVE = "must be a positive plain decimal string (at most 20.20 digits), got"
NUMBER = "must be a non-negative plain decimal string (at most 20.20 digits), got"
TIME = (
    "must be an integer time in milliseconds (or microseconds) since the epoch, "
    "from 2010-01-01 to 2100-01-01, got"
)

MALFORMED: list[tuple[str, str | bytes, str]] = [
    ("bad json", '{"stream":"bnbbtc@trade","data":{', "invalid JSON"),
    ("bad utf8", b'{"stream":"\xff"}', "invalid JSON"),
    ("not an object", "[1, 2]", "frame is a JSON list, expected an object"),
    (
        "nothing known",
        '{"hello":1}',
        "frame has neither 'stream' and 'data' nor 'result', 'code' or 'error' with 'id'",
    ),
    (
        "raw stream event",
        dumps(frame_obj("trade.handmade.json")["data"]),
        "event 'trade' outside a combined stream; connect to /stream, whose frames are "
        '{"stream": ..., "data": ...}',
    ),
    ("stream not str", '{"stream":5,"data":{}}', "field 'stream' is not a string"),
    ("no data", '{"stream":"bnbbtc@trade"}', "stream 'bnbbtc@trade': missing field 'data'"),
    (
        "unknown stream",
        _edit("trade.handmade.json", lambda f: f.update(stream="bnbbtc@trades")),
        "unknown stream 'bnbbtc@trades'",
    ),
    (
        "no stream type",
        _edit("trade.handmade.json", lambda f: f.update(stream="bnbbtc")),
        "unknown stream 'bnbbtc'",
    ),
    (
        "no symbol",
        _edit("trade.handmade.json", lambda f: f.update(stream="@trade")),
        "stream '@trade': the symbol before '@' must have 1 to 50 characters",
    ),
    ("data not object", '{"stream":"bnbbtc@trade","data":[1]}', "trade: expected a JSON object, got list"),
    ("missing p", _trade(p=_DROP), "trade: missing field 'p'"),
    ("negative price", _trade(p="-0.001"), f"trade: field 'p' {POSITIVE} '-0.001'"),
    ("zero size", _trade(q="0.000"), f"trade: field 'q' {POSITIVE} '0.000'"),
    ("price as number", _trade(p=0.001), f"trade: field 'p' {POSITIVE} float 0.001"),
    ("exponent", _trade(p="1e3"), f"trade: field 'p' {POSITIVE} '1e3'"),
    ("id as string", _trade(t="12345"), "trade: field 't' must be a non-negative integer, got '12345'"),
    ("negative id", _trade(t=-1), "trade: field 't' must be a non-negative integer, got int -1"),
    ("m not bool", _trade(m="true"), "trade: field 'm' must be true or false, got 'true'"),
    ("missing m", _trade(m=_DROP), "trade: missing field 'm'"),
    ("seconds", _trade(T=1672515782), f"trade: field 'T' {TIME} int 1672515782"),
    ("nanoseconds", _trade(T=1672515782136000000), f"trade: field 'T' {TIME} int 1672515782136000000"),
    ("time as bool", _trade(T=True), f"trade: field 'T' {TIME} bool True"),
    ("time as string", _trade(T="1672515782136"), f"trade: field 'T' {TIME} '1672515782136'"),
    (
        "long symbol",
        _trade(s="X" * 51),
        "trade: field 's' must be a string of 1 to 50 characters, got '" + "X" * 36 + "...",
    ),
    (
        "agg ids reversed",
        _edit(
            "trade.handmade.json",
            lambda f: f.update(stream="bnbbtc@aggTrade", data={**f["data"], "a": 1, "f": 9, "l": 8}),
        ),
        "aggTrade: last trade id 'l' 8 is not from first trade id 'f' 9 on",
    ),
    (
        "agg missing f",
        _edit(
            "trade.handmade.json", lambda f: f.update(stream="bnbbtc@aggTrade", data={**f["data"], "a": 1})
        ),
        "aggTrade: missing field 'f'",
    ),
    (
        "depth level not list",
        _edit("depth5_100ms.handmade.json", lambda f: f["data"].update(bids=[{"p": "1"}])),
        "depth: bids[0] must be a [price, size] list",
    ),
    (
        "depth zero price",
        _edit("depth5_100ms.handmade.json", lambda f: f["data"].update(asks=[["0", "1"]])),
        f"depth: asks[0] price {POSITIVE} '0'",
    ),
    (
        "depth negative size",
        _edit("depth5_100ms.handmade.json", lambda f: f["data"].update(asks=[["1", "-1"]])),
        f"depth: asks[0] size {NUMBER} '-1'",
    ),
    (
        "depth bids missing",
        _edit("depth5_100ms.handmade.json", lambda f: f["data"].pop("bids")),
        "depth: missing field 'bids'",
    ),
    (
        "depth no update id",
        _edit("depth5_100ms.handmade.json", lambda f: f["data"].pop("lastUpdateId")),
        "depth: missing field 'lastUpdateId'",
    ),
    (
        "book ticker bad bid",
        _edit(
            "ticker.handmade.json",
            lambda f: f.update(
                stream="bnbbtc@bookTicker",
                data={"u": 1, "s": "BNBBTC", "b": "x", "B": "1", "a": "1", "A": "1"},
            ),
        ),
        f"bookTicker: field 'b' {NUMBER} 'x'",
    ),
    (
        "ticker zero last",
        _edit("ticker.handmade.json", lambda f: f["data"].update(c="0")),
        f"ticker: field 'c' {POSITIVE} '0'",
    ),
    ("ticker no E", _edit("ticker.handmade.json", lambda f: f["data"].pop("E")), "ticker: missing field 'E'"),
    (
        "kline not object",
        _edit("kline_1m_closed.handmade.json", lambda f: f["data"].update(k=[])),
        "kline: field 'k': expected a JSON object, got list",
    ),
    ("kline interval", _kline(i="2m"), "kline: k: field 'i' must be a kline interval such as '1m', got '2m'"),
    ("kline x not bool", _kline(x=1), "kline: k: field 'x' must be true or false, got int 1"),
    ("kline negative volume", _kline(v="-5"), f"kline: k: field 'v' {NUMBER} '-5'"),
    ("kline zero open", _kline(o="0"), f"kline: k: field 'o' {POSITIVE} '0'"),
    ("open kline bad close", _kline(x=False, c=""), f"kline: k: field 'c' {POSITIVE} ''"),
    (
        "nul in str",
        frame_text("trade.handmade.json").replace('"M":true', '"M":true,"z":"a\\u0000"'),
        r"frame contains \u0000, which no PostgreSQL text or jsonb value can hold",
    ),
    (
        "nul in bytes",
        frame_text("trade.handmade.json").replace('"BNBBTC"', '"BNB\\u0000BTC"').encode(),
        r"frame contains \u0000, which no PostgreSQL text or jsonb value can hold",
    ),
]


@pytest.mark.parametrize(("label", "frame", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_frames_are_refused_with_their_reason(
    binance: BinanceAdapter, label: str, frame: str | bytes, reason: str
) -> None:
    with pytest.raises(FrameError) as info:
        binance.parse(frame, store_raw_data=True)
    assert info.value.reason == reason
    batch = binance.parse_batch([frame], store_raw_data=True)
    assert (batch.rows, batch.controls, batch.rejected, batch.rejected_frames) == (
        [],
        [],
        [(frame, reason)],
        1,
    )


def test_escapes_other_than_nul_are_kept(binance: BinanceAdapter) -> None:
    frame = frame_text("trade.handmade.json").replace('"M":true', '"M":true,"z":"a\\u00e9\\n"')
    [trade] = binance.parse(frame, store_raw_data=True).trades
    assert json.loads(trade.raw_json)["z"] == "a\u00e9\n"
    assert binance.parse_batch([frame], True).rows[0] == trade


@pytest.mark.parametrize("store", [False, True])
def test_parse_batch_equals_parse_with_malformed_frames_between(binance: BinanceAdapter, store: bool) -> None:
    good: list[str | bytes] = [frame_text(n) for n in DATA_FIXTURES]
    good += [frame_text(n) for n in ("subscribe_result.handmade.json", "server_shutdown.handmade.json")]
    good += [*recorded_frames()[:30], frame_text("trade_microseconds.handmade.json").encode()]
    bad: list[str | bytes] = [m[1] for m in MALFORMED]
    frames = [frame for pair in zip(good * 2, bad, strict=False) for frame in pair] + good + bad
    batch = binance.parse_batch(frames, store)
    rows, controls, rejected = parse_one_by_one(binance, frames, store)
    assert batch.rows == rows
    assert batch.controls == controls
    assert batch.rejected == rejected
    assert batch.rejected_frames == len(rejected)
    assert [r for r, _ in rejected if r in bad]  # the malformed frames were refused, not skipped


# -- subscriptions ------------------------------------------------------------------------

URLS = {"public": "wss://stream.binance.com:9443"}
ALL = [DataType.TRADE, DataType.ORDERBOOK, DataType.TICKER, DataType.CANDLE]


def _params(sub_message: str) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(sub_message)
    return msg


def test_default_subscription(binance: BinanceAdapter) -> None:
    [sub] = binance.subscriptions("BTC-USDT", ALL, {}, URLS)
    assert sub.url == "wss://stream.binance.com:9443/stream"
    assert sub.carries_trades is True
    [message] = [_params(m) for m in sub.messages]
    # Request ids come from one counter per process (unique across connections): any
    # positive int, whatever other tests took before.
    request_id = message.pop("id")
    assert isinstance(request_id, int)
    assert request_id >= 1
    assert message == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@trade", "btcusdt@depth20@100ms", "btcusdt@ticker", "btcusdt@kline_1m"],
    }


@pytest.mark.parametrize("symbol", ["BTCUSDT", "btcusdt", "BTC-USDT", "BTC/USDT", "btc_usdt", " BTCUSDT "])
def test_symbol_spellings(symbol: str) -> None:
    assert wire_symbol(symbol) == "btcusdt"


@pytest.mark.parametrize("symbol", ["", "BTC USDT", "BTC.USDT", "BTC-USDT-SWAP!", "BTCÜSDT", "-"])
def test_bad_symbol_names_the_pair_and_the_fix(binance: BinanceAdapter, symbol: str) -> None:
    with pytest.raises(ConfigError) as info:
        binance.subscriptions(symbol, [DataType.TRADE], {}, URLS)
    assert str(info.value) == (
        f"binance trading_pairs symbol {symbol!r} is not a Binance spot symbol; write it as base and "
        "quote asset, e.g. BTCUSDT (BTC-USDT, BTC/USDT and lowercase are accepted too)"
    )


@pytest.mark.parametrize(
    ("channels", "streams"),
    [
        ({"trades": "aggTrade"}, ["ethbtc@aggTrade"]),
        ({"orderbook": "bookTicker"}, ["ethbtc@bookTicker"]),
        ({"orderbook": "depth5"}, ["ethbtc@depth5"]),
        ({"orderbook": "depth10@1000ms"}, ["ethbtc@depth10"]),
        ({"orderbook": "depth20@100ms"}, ["ethbtc@depth20@100ms"]),
        ({"candle": "kline_1M"}, ["ethbtc@kline_1M"]),
        ({"candle": "kline_1s"}, ["ethbtc@kline_1s"]),
    ],
)
def test_channel_values(binance: BinanceAdapter, channels: dict[str, str], streams: list[str]) -> None:
    data_type = {"trades": DataType.TRADE, "orderbook": DataType.ORDERBOOK, "candle": DataType.CANDLE}[
        next(iter(channels))
    ]
    [sub] = binance.subscriptions("ETHBTC", [data_type], channels, URLS)
    assert _params(sub.messages[0])["params"] == streams
    assert sub.carries_trades is (data_type is DataType.TRADE)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("trades", "trades", "use one of: aggTrade, trade"),
        (
            "orderbook",
            "depth",
            "use depth5, depth10 or depth20 (optionally with @100ms or @1000ms) or bookTicker",
        ),
        (
            "orderbook",
            "depth5@250ms",
            "use depth5, depth10 or depth20 (optionally with @100ms or @1000ms) or bookTicker",
        ),
        ("ticker", "miniTicker", "use one of: ticker"),
        (
            "candle",
            "kline_1H",
            "use kline_<interval> with an interval of "
            "1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w, 1M",
        ),
    ],
)
def test_bad_channel_value_names_key_and_allowed_values(
    binance: BinanceAdapter, key: str, value: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        binance.subscriptions("BTCUSDT", ALL, {key: value}, URLS)
    assert str(info.value) == f"binance stream {value!r} for channels.{key} is not supported; {allowed}"


def test_unknown_channels_key(binance: BinanceAdapter) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown binance channels key\(s\) book; valid keys: candle, orderbook"
    ):
        binance.subscriptions("BTCUSDT", ALL, {"book": "depth5"}, URLS)


def test_balance_is_not_public_data(binance: BinanceAdapter) -> None:
    with pytest.raises(
        ConfigError, match="data type 'balance' is not supported for binance public collection"
    ):
        binance.subscriptions("BTCUSDT", [DataType.BALANCE], {}, URLS)


def test_missing_public_url(binance: BinanceAdapter) -> None:
    with pytest.raises(ConfigError, match="binance needs the 'public' websocket URL"):
        binance.subscriptions("BTCUSDT", [DataType.TRADE], {}, {})


def test_url_keeps_its_query_and_drops_a_trailing_slash(binance: BinanceAdapter) -> None:
    urls = {"public": "wss://data-stream.binance.vision/?timeUnit=MICROSECOND"}
    [sub] = binance.subscriptions("BTCUSDT", [DataType.TICKER], {}, urls)
    assert sub.url == "wss://data-stream.binance.vision/stream?timeUnit=MICROSECOND"
    assert sub.carries_trades is False


def test_duplicate_data_types_subscribe_once(binance: BinanceAdapter) -> None:
    [sub] = binance.subscriptions("BTCUSDT", [DataType.TRADE, DataType.TRADE], {}, URLS)
    assert _params(sub.messages[0])["params"] == ["btcusdt@trade"]


def test_subscribe_frames_split_with_increasing_ids() -> None:
    names = [f"s{i}@trade" for i in range(7)]
    frames = subscribe_frames(names, max_streams=3, first_id=5)
    assert [_params(f) for f in frames] == [
        {"method": "SUBSCRIBE", "params": names[0:3], "id": 5},
        {"method": "SUBSCRIBE", "params": names[3:6], "id": 6},
        {"method": "SUBSCRIBE", "params": names[6:7], "id": 7},
    ]
    assert subscribe_frames([]) == ()
    assert len(subscribe_frames(names * 200)) == 2  # 1,400 streams, at most 1,024 a frame
    with pytest.raises(ValueError, match="max_streams must be at least 1"):
        subscribe_frames(names, max_streams=0)


def test_subscriptions_parse_back(binance: BinanceAdapter) -> None:
    # Every stream the adapter subscribes to has a handler: a frame of it is not "unknown".
    channel_sets = [{}, {"trades": "aggTrade", "orderbook": "bookTicker", "candle": "kline_1w"}]
    channel_sets += [{"orderbook": f"depth{n}{s}"} for n in (5, 10, 20) for s in ("", "@100ms", "@1000ms")]
    for channels in channel_sets:
        [sub] = binance.subscriptions("BTCUSDT", ALL, channels, URLS)
        for stream in _params(sub.messages[0])["params"]:
            with pytest.raises(FrameError) as info:
                binance.parse(dumps({"stream": stream, "data": {}}), False)
            assert "unknown stream" not in info.value.reason
            assert "missing field" in info.value.reason


_ODD_VALUES: list[Any] = [None, "", "x", "-1", "0", -1, 0, 1.5, True, [], {}, 2**64, 1672515782136]


def _field_variants() -> list[str]:
    """Every data field of every fixture replaced by each odd value, or dropped."""
    sources = [frame_text(n) for n in DATA_FIXTURES] + [recorded("aggTrade")[0], recorded("bookTicker")[0]]
    variants = []
    for text in sources:
        frame = json.loads(text)
        targets = [frame["data"]] + ([frame["data"]["k"]] if "k" in frame["data"] else [])
        for target in targets:
            for key in list(target):
                original = target[key]
                for value in _ODD_VALUES:
                    target[key] = value
                    variants.append(dumps(frame))
                del target[key]
                variants.append(dumps(frame))
                target[key] = original
    return variants


@pytest.mark.parametrize("store", [False, True])
def test_parse_batch_equals_parse_on_every_field_variant(binance: BinanceAdapter, store: bool) -> None:
    frames: list[str | bytes] = list(_field_variants())
    batch = binance.parse_batch(frames, store)
    rows, controls, rejected = parse_one_by_one(binance, frames, store)
    assert batch.rows == rows
    assert batch.controls == controls
    assert batch.rejected == rejected
    assert batch.rejected_frames == len(rejected)
    assert rows  # unknown-to-us fields (E, M, ...) do not matter: some variants still parse
    assert rejected
