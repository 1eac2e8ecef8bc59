"""frame_route: the symbol a frame is about, found without parsing it (shared connections).

On real recorded traffic, every frame that parses into rows routes to the key of the rows'
symbol; answers, pongs and notices route to no symbol, or to the one they name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.exchanges.binance.adapter import BinanceAdapter
from ingest.exchanges.okx.adapter import OkxAdapter
from tests.test_binance_adapter import recorded_frames

DATA = Path(__file__).parent / "data"


def okx_recorded_frames() -> list[bytes]:
    frames = [
        json.loads(line)["raw"].encode()
        for line in (DATA / "okx" / "ccxt_okx_ws_messages.extract.jsonl").read_text().splitlines()
        if line
    ]
    frames += [p.read_bytes().strip() for p in sorted((DATA / "okx").glob("*.json"))]
    return frames


def test_every_recorded_okx_frame_with_rows_routes_to_its_symbol() -> None:
    okx = OkxAdapter()
    routed = 0
    for frame in okx_recorded_frames():
        parsed = okx.parse_batch([frame], False)
        symbols = {r.symbol for r in parsed.rows}
        if symbols:
            (symbol,) = symbols
            assert okx.frame_route(frame) == okx.route_key(symbol), frame[:120]
            routed += 1
    assert routed >= 20


def test_every_recorded_binance_frame_with_rows_routes_to_its_symbol() -> None:
    binance = BinanceAdapter()
    routed = 0
    for text in recorded_frames():
        frame = text.encode()
        parsed = binance.parse_batch([frame], False)
        for row in parsed.rows:
            assert binance.frame_route(frame) == binance.route_key(row.symbol), frame[:120]
            routed += 1
    assert routed >= 80


@pytest.mark.parametrize(
    ("frame", "route"),
    [
        (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[]}', b"BTC-USDT"),
        (b'{"event":"subscribe","arg":{"channel":"tickers","instId":"ETH-USDT"},"connId":"1"}', b"ETH-USDT"),
        # Valid JSON in another layout: found by parsing.
        (b'{ "arg" : { "instId" : "SOL-USDT", "channel" : "trades" }, "data" : [] }', b"SOL-USDT"),
        # An error names the instrument in its text only.
        ((DATA / "okx" / "error_60018.handmade.json").read_bytes().strip(), b"BTC-USDT"),
        (b'{"event":"error","code":"60012","msg":"Invalid request: {\\"op\\":1}","connId":"a"}', None),
        (b"pong", None),
        ((DATA / "okx" / "notice_64008.handmade.json").read_bytes().strip(), None),
        (b"not json", None),
    ],
)
def test_okx_frames_route_to_the_instrument_they_name(frame: bytes, route: bytes | None) -> None:
    assert OkxAdapter().frame_route(frame) == route


@pytest.mark.parametrize(
    ("frame", "route"),
    [
        (b'{"stream":"btcusdt@trade","data":{}}', b"btcusdt"),
        (b'{ "data": {}, "stream": "ethusdt@depth5@100ms" }', b"ethusdt"),
        (b'{"result":null,"id":7}', None),
        (b'{"code":2,"msg":"Invalid request: invalid stream","id":7}', None),
        ((DATA / "binance" / "server_shutdown.handmade.json").read_bytes().strip(), None),
        (b"[1,2]", None),
    ],
)
def test_binance_frames_route_to_the_stream_symbol(frame: bytes, route: bytes | None) -> None:
    assert BinanceAdapter().frame_route(frame) == route


def test_route_keys_match_what_the_config_may_write() -> None:
    binance = BinanceAdapter()
    assert binance.route_key("BTC-USDT") == binance.route_key("btcusdt") == b"btcusdt"
    assert OkxAdapter().route_key("BTC-USDT-SWAP") == b"BTC-USDT-SWAP"
