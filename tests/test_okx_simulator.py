"""The OKX simulator against a real websockets client on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ingest.errors import ConfigError, FrameError
from ingest.exchanges.base import ControlKind, FrameResult
from ingest.exchanges.okx import OkxAdapter
from ingest.model import DataType
from ingest.rows import MarketRow, TradeRow
from ingest.simulator import IDLE_CLOSE_CODE, OkxSimulator, SentTrade, SimulatorSettings
from ingest.simulator.generator import TradeGenerator
from ingest.simulator.replay import load_replay
from ingest.simulator.wire import MALFORMED_FRAMES
from tests.collector_support import simulator

OKX_DATA = Path(__file__).parent / "data" / "okx"
RECORDING = OKX_DATA / "ccxt_okx_ws_messages.extract.jsonl"
OKX = OkxAdapter()


def sub(channel: str, inst_id: str, op: str = "subscribe") -> str:
    return orjson.dumps({"op": op, "args": [{"channel": channel, "instId": inst_id}]}).decode()


async def recv(ws: ClientConnection, within: float = 5.0) -> str | bytes:
    async with asyncio.timeout(within):
        return await ws.recv()


async def recv_parsed(ws: ClientConnection) -> FrameResult:
    return OKX.parse(await recv(ws), store_raw_data=False)


async def trades_until_closed(ws: ClientConnection) -> tuple[list[TradeRow], bool]:
    """Trades still delivered before the connection ends, and whether it did end."""
    trades: list[TradeRow] = []
    try:
        while True:
            trades += (await recv_parsed(ws)).trades
    except ConnectionClosed:
        return trades, True


async def subscribe(ws: ClientConnection, channel: str, inst_id: str) -> None:
    await ws.send(sub(channel, inst_id))
    control = (await recv_parsed(ws)).control
    assert control is not None
    assert (control.kind, control.detail) == (ControlKind.SUBSCRIBED, f"{channel}:{inst_id}")


async def recv_trades(ws: ClientConnection, count: int) -> list[TradeRow]:
    trades: list[TradeRow] = []
    while len(trades) < count:
        trades.extend((await recv_parsed(ws)).trades)
    return trades


def as_sent(trades: list[TradeRow]) -> list[SentTrade]:
    return [SentTrade(t.symbol, t.trade_id, t.price, t.size, t.side, t.ts_ms) for t in trades]


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- protocol -----------------------------------------------------------------------------


async def test_generated_trades_equal_the_record_value_for_value() -> None:
    settings = {"symbols": ("BTC-USDT", "ETH-USDT"), "total": 60, "trades_per_message": 3}
    async with simulator(**settings) as sim, connect(sim.url) as ws:
        args = [{"channel": "trades", "instId": "BTC-USDT"}, {"channel": "trades", "instId": "ETH-USDT"}]
        await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
        received: list[TradeRow] = []
        acks: list[str] = []
        while len(received) < 60:  # data of the first may arrive before the second ack
            result = await recv_parsed(ws)
            received += result.trades
            if result.control is not None:
                acks.append(result.control.detail)
        with pytest.raises(TimeoutError):
            await recv(ws, within=0.2)  # the total is reached: nothing more
    assert acks == ["trades:BTC-USDT", "trades:ETH-USDT"]
    assert as_sent(received) == sim.sent_trades
    for symbol in ("BTC-USDT", "ETH-USDT"):
        ids = [int(t.trade_id) for t in received if t.symbol == symbol]
        assert ids == list(range(1, 31))
    assert sim.counters["trades"] == 60
    assert sim.counters["messages"] == 20


async def test_nothing_is_sent_before_a_subscription() -> None:
    async with simulator(total=10) as sim, connect(sim.url) as ws:
        with pytest.raises(TimeoutError):
            await recv(ws, within=0.2)
        assert sim.sent_trades == []
        assert sim.counters["trades"] == 0


async def test_ping_pong_and_ignored_pings() -> None:
    async with simulator(total=0) as sim, connect(sim.url) as ws:
        await ws.send("ping")
        control = (await recv_parsed(ws)).control
        assert control is not None
        assert control.kind is ControlKind.PONG
        sim.ignore_pings = True
        await ws.send("ping")
        with pytest.raises(TimeoutError):
            await recv(ws, within=0.3)
        assert sim.counters["pings"] == 2


@pytest.mark.parametrize(
    ("path", "channel", "inst_id", "code"),
    [
        ("public", "candle1m", "BTC-USDT", "60018"),
        ("business", "trades", "BTC-USDT", "64001"),
        ("public", "no-such-channel", "BTC-USDT", "60018"),
        ("public", "trades", "NOPE-USDT", "60018"),
    ],
)
async def test_refused_subscriptions(path: str, channel: str, inst_id: str, code: str) -> None:
    async with simulator(total=0) as sim, connect(sim.urls[path]) as ws:
        await ws.send(sub(channel, inst_id))
        control = (await recv_parsed(ws)).control
        assert control is not None
        assert control.kind is ControlKind.ERROR
        assert control.detail.startswith(f"{code}: ")
        assert f"channel:{channel},instId:{inst_id}" in control.detail


async def test_candles_are_served_on_business() -> None:
    async with simulator(total=0, replay=RECORDING) as sim, connect(sim.business_url) as ws:
        await subscribe(ws, "candle1m", "BTC-USDT-SWAP")
        frames = [await recv(ws), await recv(ws)]
    recorded = [
        orjson.loads(line)["raw"]
        for line in RECORDING.read_text().splitlines()
        if '\\"candle1m\\",\\"instId\\":\\"BTC-USDT-SWAP\\"},\\"data' in line
    ]
    assert len(recorded) == 2
    assert frames == recorded


async def test_invalid_request_is_answered_with_error() -> None:
    async with simulator(total=0) as sim, connect(sim.url) as ws:
        await ws.send('{"op":"login"}')
        control = (await recv_parsed(ws)).control
        assert control is not None
        assert control.kind is ControlKind.ERROR
        assert control.detail.startswith("60012: Invalid request")


async def test_unknown_path_is_refused() -> None:
    async with simulator(total=0) as sim:
        with pytest.raises(InvalidStatus) as info:
            async with connect(sim.base_url + "/ws/v5/nosuch"):
                pass
        assert info.value.response.status_code == 404


# -- faults -------------------------------------------------------------------------------


async def test_idle_connection_is_closed_with_4004() -> None:
    async with simulator(total=0, idle_timeout=0.3) as sim:
        async with connect(sim.url) as ws:
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == IDLE_CLOSE_CODE
            assert 0.25 <= time.monotonic() - started < 3
        assert sim.counters["idle_closes"] == 1


async def test_pings_keep_a_connection_alive() -> None:
    async with simulator(total=0, idle_timeout=0.3) as sim, connect(sim.url) as ws:
        for _ in range(6):
            await ws.send("ping")
            assert await recv(ws) == "pong"
            await asyncio.sleep(0.1)
        assert sim.counters["idle_closes"] == 0


async def test_notice_64008_then_close() -> None:
    async with simulator(total=0) as sim, connect(sim.url) as ws:
        await asyncio.gather(sim.notice_and_close(delay=0.05), _expect_notice(ws))
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1012


async def _expect_notice(ws: ClientConnection) -> None:
    control = (await recv_parsed(ws)).control
    assert control is not None
    assert control.kind is ControlKind.RECONNECT_SOON


async def test_malformed_injection() -> None:
    async with simulator(total=0) as sim, connect(sim.url) as ws:
        assert await sim.inject() == len(MALFORMED_FRAMES)
        reasons = []
        for _ in MALFORMED_FRAMES:
            try:
                result = OKX.parse(await recv(ws), store_raw_data=False)
            except FrameError as exc:
                reasons.append(exc.reason)
            else:  # a bad trade is refused alone
                assert result.trades == []
                reasons += [why for _, why in result.rejected]
    assert reasons == [
        "invalid JSON",
        "unknown channel 'nosuch'",
        "trades: field 'px' must be a positive plain decimal string (at most 20.20 digits), got 'abc'",
        "trades: missing field 'px'",
    ]


async def test_graceful_disconnect_then_resubscribe_continues_the_stream() -> None:
    async with simulator(total=300, rate=3000.0) as sim:
        received: list[TradeRow] = []
        async with connect(sim.url) as ws:
            await subscribe(ws, "trades", "BTC-USDT")
            received += await recv_trades(ws, 50)
            await sim.disconnect_all(abrupt=False)
            tail, closed = await trades_until_closed(ws)  # frames flushed before the close arrive
            assert closed
            received += tail
        await wait_for(lambda: sim.open_connections == 0)
        assert received[-1].trade_id != "300"  # the stream was cut mid-way
        async with connect(sim.url) as ws:
            await subscribe(ws, "trades", "BTC-USDT")
            received += await recv_trades(ws, 300 - len(received))
    assert [int(t.trade_id) for t in received] == list(range(1, 301))
    assert as_sent(received) == sim.sent_trades
    assert sim.counters["forced_disconnects"] == 1


async def test_disconnect_then_refuse_handshakes_for_a_while() -> None:
    async with simulator(total=0) as sim:
        async with connect(sim.url):
            await wait_for(lambda: sim.open_connections == 1)
            assert await sim.disconnect_all(refuse_for=0.5) == 1
        refused_at = time.monotonic()
        with pytest.raises(InvalidStatus) as info:
            async with connect(sim.business_url):
                pass
        assert info.value.response.status_code == 503
        assert sim.counters["refused_connections"] == 1
        await asyncio.sleep(max(0.0, refused_at + 0.6 - time.monotonic()))
        async with connect(sim.url) as ws:  # the outage is over
            await ws.ping()


async def test_abrupt_disconnect_loses_only_buffered_frames_and_never_repeats() -> None:
    async with simulator(total=400, rate=4000.0) as sim:
        received: list[TradeRow] = []
        async with connect(sim.url) as ws:
            await subscribe(ws, "trades", "BTC-USDT")
            received += await recv_trades(ws, 40)
            await sim.disconnect_all(abrupt=True)
            tail, closed = await trades_until_closed(ws)  # frames flushed before the close arrive
            assert closed
            received += tail
        cut = len(received)
        async with connect(sim.url) as ws:
            await subscribe(ws, "trades", "BTC-USDT")
            while not received or received[-1].trade_id != "400":
                received += (await recv_parsed(ws)).trades
    ids = [int(t.trade_id) for t in received]
    assert ids == sorted(set(ids))  # increasing, no duplicates
    assert ids[cut] > ids[cut - 1]  # continued, did not restart at 1
    sent = {t.trade_id: t for t in sim.sent_trades}
    assert all(sent[t.trade_id] == s for t, s in zip(received, as_sent(received), strict=True))


async def test_resend_overlap_after_resubscribe() -> None:
    async with simulator(total=200, rate=2000.0, resend_on_resubscribe=5, trades_per_message=2) as sim:
        received: list[TradeRow] = []
        async with connect(sim.url) as ws:
            await subscribe(ws, "trades", "BTC-USDT")
            received += await recv_trades(ws, 20)
            await sim.disconnect_all(abrupt=False)
            tail, closed = await trades_until_closed(ws)  # frames flushed before the close arrive
            assert closed
            received += tail
        await wait_for(lambda: sim.open_connections == 0)
        before = len(received)
        async with connect(sim.url) as ws:
            await subscribe(ws, "trades", "BTC-USDT")
            while received[-1].trade_id != "200":
                received += (await recv_parsed(ws)).trades
    # 5 trades rounded up to 3 whole messages of 2 trades: the last 6 are sent again
    assert [t.trade_id for t in received[before : before + 6]] == [
        t.trade_id for t in received[before - 6 : before]
    ]
    assert as_sent(received) == sim.sent_trades
    assert len(received) == 206
    assert sim.counters["resent_frames"] == 3


async def test_rate_is_respected() -> None:
    async with simulator(total=300, rate=1000.0) as sim, connect(sim.url) as ws:
        await subscribe(ws, "trades", "BTC-USDT")
        started = time.monotonic()
        await recv_trades(ws, 300)
        elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 5


async def test_stop_closes_clients() -> None:
    sim = OkxSimulator(SimulatorSettings(total=0))
    await sim.start()
    async with connect(sim.url) as ws:
        await sim.stop()
        with pytest.raises(ConnectionClosed):
            await recv(ws)


# -- replay -------------------------------------------------------------------------------


async def test_replay_sends_recorded_frames_byte_for_byte() -> None:
    lines = [orjson.loads(line) for line in RECORDING.read_text().splitlines()]
    tickers = [r["raw"] for r in lines if '"channel":"tickers","instId":"BTC-USDT"},"data"' in r["raw"]]
    trades = [r["raw"] for r in lines if '"channel":"trades","instId":"BTC-USDT-SWAP"},"data"' in r["raw"]]
    assert (len(tickers), len(trades)) == (4, 2)
    async with simulator(total=0, replay=RECORDING) as sim, connect(sim.url) as ws:
        await subscribe(ws, "tickers", "BTC-USDT")
        assert [await recv(ws) for _ in tickers] == tickers
        await subscribe(ws, "trades", "BTC-USDT-SWAP")
        got = [await recv(ws) for _ in trades]
    assert got == trades
    assert [t.trade_id for t in sim.sent_trades] == ["2832749635", "2832749645"]
    assert sim.sent_trades[1] == SentTrade(
        "BTC-USDT-SWAP", "2832749645", "63913.4", "34.95", "sell", 1786540436090
    )


async def test_replay_of_a_single_frame_file() -> None:
    frame = (OKX_DATA / "books5_spot.json").read_text().strip()
    async with simulator(total=0, replay=OKX_DATA / "books5_spot.json") as sim, connect(sim.url) as ws:
        await subscribe(ws, "books5", "BTC-USDT")
        assert await recv(ws) == frame


async def test_endless_stream_built_in_chunks_matches_the_record() -> None:
    # tiny chunks and batches: many chunk boundaries (ts refreshes) and trimmed frames
    async with simulator(chunk_trades=7, batch_frames=4, trades_per_message=2) as sim, connect(sim.url) as ws:
        await subscribe(ws, "trades", "BTC-USDT")
        received = await recv_trades(ws, 120)
    assert [int(t.trade_id) for t in received] == list(range(1, 121))
    assert as_sent(received) == sim.sent_trades[:120]
    stamps = [t.ts_ms for t in received]
    assert stamps == sorted(stamps)
    assert all(t.side in ("buy", "sell") for t in received)


async def test_busy_port_is_a_clear_error() -> None:
    async with simulator(total=0) as sim:
        other = OkxSimulator(SimulatorSettings(port=sim.port, total=0))
        with pytest.raises(
            ConfigError, match=rf"simulator cannot listen on 127.0.0.1:{sim.port}: .*another port"
        ):
            await other.start()
        await other.stop()


def _unframe(frame: bytes) -> bytes:
    """Payload of one unmasked text frame, checking the header (RFC 6455 5.2)."""
    assert frame[0] == 0x81  # FIN + text
    length = frame[1]
    assert length & 0x80 == 0  # server frames are not masked
    if length == 126:
        length, offset = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, offset = int.from_bytes(frame[2:10], "big"), 10
    else:
        offset = 2
    assert len(frame) == offset + length
    return frame[offset:]


@pytest.mark.parametrize("per_message", [1, 3, 7])
def test_generated_frames_are_valid_and_match_trades_in(per_message: int) -> None:
    # instIds of growing length move the payload across header sizes and through a
    # length whose low byte is 0x25 ('%'); ids cross 9->10, 99->100 and 999->1000 inside
    # chunks (13 trades) so messages are split and rejoined across those boundaries
    for extra in (0, 5, 46, 47, 48, 90):  # 46..48 give 1-trade payloads of 0x125 bytes
        inst_id = "BTC-USDT" + ("-" + "X" * extra if extra else "")
        gen = TradeGenerator(inst_id, trades_per_message=per_message, chunk_trades=13, limit=1005)
        while gen.extend():
            pass
        ids: list[int] = []
        for index, frame in enumerate(gen.frames):
            data = orjson.loads(_unframe(frame))["data"]
            wire_trades = [
                SentTrade(d["instId"], d["tradeId"], d["px"], d["sz"], d["side"], int(d["ts"])) for d in data
            ]
            assert wire_trades == gen.trades_in(index, index + 1)
            ids += [int(d["tradeId"]) for d in data]
            if index < len(gen.frames) - 1:
                assert len(data) == per_message  # only the last message may be short
        assert ids == list(range(1, 1006))


def test_bad_replay_files_are_clear_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(ConfigError, match=r"cannot read replay file .*missing.jsonl"):
        load_replay(missing)
    broken = tmp_path / "broken.jsonl"
    good = (OKX_DATA / "trades_spot.json").read_text().strip()
    broken.write_text(good + "\n" + good.replace('"px":"64040.2",', "") + "\n")
    with pytest.raises(ConfigError, match=r"broken.jsonl line 2: trade without field 'px'"):
        load_replay(broken)
    (tmp_path / "notjson.jsonl").write_text("pong\n")
    with pytest.raises(ConfigError, match=r"notjson.jsonl line 1: "):
        load_replay(tmp_path / "notjson.jsonl")


# -- generated books5 and tickers ----------------------------------------------------------


async def subscribe_keeping(ws: ClientConnection, *pairs: tuple[str, str]) -> list[MarketRow]:
    """Subscribe to (channel, instId) pairs; the market rows that arrived before the last ack."""
    args = [{"channel": c, "instId": i} for c, i in pairs]
    await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
    rows: list[MarketRow] = []
    acks: list[str] = []
    while len(acks) < len(pairs):
        result = await recv_parsed(ws)
        rows += result.market
        if result.control is not None:
            assert result.control.kind is ControlKind.SUBSCRIBED
            acks.append(result.control.detail)
    assert acks == [f"{c}:{i}" for c, i in pairs]
    return rows


async def recv_market(
    ws: ClientConnection, data_type: DataType, count: int, first: Sequence[MarketRow] = ()
) -> list[dict[str, Any]]:
    """The data objects of the first `count` rows of `data_type` (other rows are skipped),
    starting with the rows in `first`."""
    out = [orjson.loads(r.data_json) for r in first if r.data_type is data_type]
    while len(out) < count:
        result = await recv_parsed(ws)
        out += [orjson.loads(r.data_json) for r in result.market if r.data_type is data_type]
    return out[:count]


async def no_market_within(ws: ClientConnection, seconds: float) -> list[MarketRow]:
    """Market rows that arrive within `seconds` (the test expects none)."""
    rows: list[MarketRow] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                rows += OKX.parse(await ws.recv(), store_raw_data=False).market
    return rows


async def test_books5_pushes_are_five_level_snapshots_with_a_seq_chain() -> None:
    settings = {"rate": 2000.0, "books_per_second": 50.0, "tickers_per_second": 0.0}
    async with simulator(**settings) as sim, connect(sim.url) as ws:
        early = await subscribe_keeping(ws, ("trades", "BTC-USDT"), ("books5", "BTC-USDT"))
        books = await recv_market(ws, DataType.ORDERBOOK, 8, early)
    traded_prices = {t.price for t in sim.sent_trades}
    prev = -1
    for book in books:
        asks = [(Decimal(px), level) for px, *level in book["asks"]]
        bids = [(Decimal(px), level) for px, *level in book["bids"]]
        assert len(asks) == len(bids) == 5
        assert [p for p, _ in asks] == sorted({p for p, _ in asks})  # strictly ascending
        assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
        assert bids[0][0] < asks[0][0]
        assert all(Decimal(sz) > 0 and rest == ["0"] and int(n) >= 1 for _, (sz, *rest, n) in asks + bids)
        assert book["bids"][0][0] in traded_prices  # the book sits at a generated trade price
        assert (book["instId"], book["checksum"], book["prevSeqId"]) == ("BTC-USDT", 0, prev)
        assert book["seqId"] > prev
        prev = book["seqId"]
    sent = [orjson.loads(q.payload)["data"][0] for q in sim.sent_quotes]
    assert sent[: len(books)] == books


async def test_tickers_follow_the_trades_with_bid_below_ask() -> None:
    settings = {"rate": 2000.0, "books_per_second": 0.0, "tickers_per_second": 40.0}
    async with simulator(**settings) as sim, connect(sim.url) as ws:
        early = await subscribe_keeping(ws, ("trades", "BTC-USDT"), ("tickers", "BTC-USDT"))
        tickers = await recv_market(ws, DataType.TICKER, 5, early)
    traded = {(t.price, t.size) for t in sim.sent_trades}
    last_ts = 0
    for ticker in tickers:
        assert ticker["instId"] == "BTC-USDT"
        assert ticker["instType"] == "SPOT"
        assert Decimal(ticker["bidPx"]) < Decimal(ticker["askPx"])
        assert ticker["bidPx"] == ticker["last"]
        assert (ticker["last"], ticker["lastSz"]) in traded
        low, high = Decimal(ticker["low24h"]), Decimal(ticker["high24h"])
        assert low <= Decimal(ticker["last"]) <= high
        assert low <= Decimal(ticker["open24h"]) <= high
        assert Decimal(ticker["vol24h"]) > 0
        assert Decimal(ticker["volCcy24h"]) > 0
        assert all(Decimal(ticker[f]) > 0 for f in ("askSz", "bidSz", "sodUtc0", "sodUtc8"))
        assert int(ticker["ts"]) >= last_ts
        last_ts = int(ticker["ts"])
    assert [orjson.loads(q.payload)["data"][0] for q in sim.sent_quotes][:5] == tickers


async def test_quotes_go_only_to_their_subscribers_and_stop_on_unsubscribe() -> None:
    settings = {"symbols": ("BTC-USDT", "ETH-USDT"), "books_per_second": 50.0, "tickers_per_second": 50.0}
    async with simulator(**settings) as sim, connect(sim.url) as a, connect(sim.url) as b:
        await subscribe(a, "books5", "BTC-USDT")
        await subscribe(b, "tickers", "ETH-USDT")
        a_rows = await recv_market(a, DataType.ORDERBOOK, 3)
        b_rows = await recv_market(b, DataType.TICKER, 3)
        assert {r["instId"] for r in a_rows + b_rows} == {"BTC-USDT", "ETH-USDT"}
        async with connect(sim.url) as c:  # subscribed to nothing
            assert await no_market_within(c, 0.3) == []
        await a.send(sub("books5", "BTC-USDT", op="unsubscribe"))
        while (await recv_parsed(a)).control is None:  # pushes may precede the ack
            pass
        assert await no_market_within(a, 0.3) == []
        other = [r for r in await no_market_within(b, 0.1) if r.data_type is not DataType.TICKER]
        assert other == []
    sent = {(q.channel, q.inst_id) for q in sim.sent_quotes}
    assert sent == {("books5", "BTC-USDT"), ("tickers", "ETH-USDT")}


async def test_rate_zero_sends_no_quotes() -> None:
    settings = {"books_per_second": 0.0, "tickers_per_second": 0.0}
    async with simulator(**settings) as sim, connect(sim.url) as ws:
        assert await subscribe_keeping(ws, ("books5", "BTC-USDT"), ("tickers", "BTC-USDT")) == []
        assert await no_market_within(ws, 0.3) == []
    assert sim.sent_quotes == []


async def test_quote_rates_are_roughly_respected_and_stop_with_the_connection() -> None:
    settings = {"books_per_second": 20.0, "tickers_per_second": 5.0, "record": False}
    async with simulator(**settings) as sim:
        async with connect(sim.url) as ws:
            rows = await subscribe_keeping(ws, ("books5", "BTC-USDT"), ("tickers", "BTC-USDT"))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    while True:
                        rows += (await recv_parsed(ws)).market
        await wait_for(lambda: sim.open_connections == 0)
        books = sum(r.data_type is DataType.ORDERBOOK for r in rows)
        tickers = sum(r.data_type is DataType.TICKER for r in rows)
        assert 8 <= books <= 40  # 20/s for ~1 s, generous for a loaded machine
        assert 2 <= tickers <= 10  # 5/s
        assert sim.sent_quotes == []  # record=False keeps nothing
        sent = sim.counters["books5"] + sim.counters["tickers"]
        await asyncio.sleep(0.2)
        assert sim.counters["books5"] + sim.counters["tickers"] == sent  # the feed stopped
        assert [t for t in asyncio.all_tasks() if t.get_name().startswith("okx-simulator-quotes")] == []


async def test_stop_cancels_quote_feeds() -> None:
    sim = OkxSimulator(SimulatorSettings(books_per_second=50.0))
    await sim.start()
    async with connect(sim.url) as ws:
        await subscribe(ws, "books5", "BTC-USDT")
        await recv_market(ws, DataType.ORDERBOOK, 1)
        await sim.stop()
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("okx-simulator-quotes")] == []


async def test_negative_quote_rate_is_a_clear_error() -> None:
    sim = OkxSimulator(SimulatorSettings(books_per_second=-1.0))
    with pytest.raises(ConfigError, match="books_per_second and tickers_per_second must be >= 0"):
        await sim.start()
